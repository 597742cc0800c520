"""Seeds a Clearance SQLite database with providers, models and decided
reviews, directly (the HTTP path would take hours for 10,000 models).

usage: seed.py DATABASE_FILE MODELS
"""
import json
import sqlite3
import sys
import uuid

path, count = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path)
now = "2026-11-01 10:00:00"
per_provider = 100
with db:
    for p in range(count // per_provider):
        pid = str(uuid.uuid4())
        db.execute(
            "INSERT INTO providers (id, slug, name, contacts, version, created_at, updated_at) VALUES (?, ?, ?, '[]', 1, ?, ?)",
            (pid, f"provider-{p}", f"Provider {p}", now, now),
        )
        for m in range(per_provider):
            mid = str(uuid.uuid4())
            db.execute(
                "INSERT INTO models (id, provider_id, slug, name, version, created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?)",
                (mid, pid, f"model-{m}", f"Model {m}", now, now),
            )
            conditional = m % 3 == 0
            state = "approved_with_conditions" if conditional else ("rejected" if m % 10 == 7 else "approved")
            conditions = json.dumps({"data_classes": ["public", "internal"], "regions": ["eu", "uk"]}) if conditional else None
            db.execute(
                "INSERT INTO reviews (id, provider_id, model_id, kind, workflow_id, workflow_version, workflow_digest, state, tier,"
                " started_by, conditions, decided_at, valid_until, version, created_at, updated_at)"
                " VALUES (?, ?, ?, 'initial', 'model-provider', 1, 'seeded', ?, 'medium', 'seed', ?, ?, '2027-11-01 10:00:00', 1, ?, ?)",
                (str(uuid.uuid4()), pid, mid, state, conditions, now, now, now),
            )
    db.execute("UPDATE status_version SET version = version + 1 WHERE id = 1")
    # Each model's clearance changed at that version, as the service records it.
    db.execute("UPDATE models SET status_version = (SELECT version FROM status_version WHERE id = 1)")
print(f"seeded {count} models")
