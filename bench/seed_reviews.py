"""Seeds a Clearance SQLite database with many reviews and their stages for
the SLA sweep benchmark: most stages closed, the open ones due in the future
(nothing due, the sweep's common case).

usage: seed_reviews.py DATABASE_FILE REVIEWS
"""
import sqlite3
import sys
import uuid

path, count = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path)
now = "2026-11-01 10:00:00"
future = "2027-06-01 10:00:00"
past = "2026-10-01 10:00:00"
keys = ["intake", "security", "privacy", "responsible-ai", "final-approval"]
with db:
    provider = str(uuid.uuid4())
    db.execute(
        "INSERT INTO providers (id, slug, name, contacts, version, created_at, updated_at) VALUES (?, 'bench', 'Bench', '[]', 1, ?, ?)",
        (provider, now, now),
    )
    reviews, stages = [], []
    for i in range(count):
        rid = str(uuid.uuid4())
        open_review = i % 5 < 2
        reviews.append((rid, provider, "in_progress" if open_review else "approved", now, now))
        for n, key in enumerate(keys):
            state = ("awaiting_answers" if n < 3 else "blocked") if open_review else "approved"
            due = future if state == "awaiting_answers" else past
            stages.append((str(uuid.uuid4()), rid, key, state, due, now, now))
    db.executemany(
        "INSERT INTO reviews (id, provider_id, kind, workflow_id, workflow_version, workflow_digest, state, tier, started_by, version, created_at, updated_at)"
        " VALUES (?, ?, 'initial', 'model-provider', 1, 'seeded', ?, 'medium', 'seed', 1, ?, ?)",
        reviews,
    )
    db.executemany(
        "INSERT INTO review_stages (id, review_id, stage_key, state, due_at, escalation_level, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?)",
        stages,
    )
print(f"seeded {count} reviews, {len(stages)} stages")
