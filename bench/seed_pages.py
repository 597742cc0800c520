"""Seeds a Clearance SQLite database for the console's page benchmark:
100 providers with 100 models each (10,000 models), and 2,000 reviews of
them on the shipped workflow (pinned, as the service pins it): 1,200
approved (some with conditions, expiring over the next year), 800 in
progress with their stages spread over every state, intake answered.

usage: seed_pages.py DATABASE_FILE WORKFLOW_FILE
"""
import datetime
import hashlib
import json
import sqlite3
import sys
import uuid

path, workflow_file = sys.argv[1], sys.argv[2]
source = open(workflow_file, encoding="utf-8").read()
digest = hashlib.sha256(source.encode("utf-8")).hexdigest()
db = sqlite3.connect(path)
start = datetime.datetime(2026, 11, 1, 10, 0, 0)
fmt = "%Y-%m-%d %H:%M:%S"
now = start.strftime(fmt)
keys = ["intake", "security", "privacy", "responsible-ai", "final-approval"]
reviewers = ["sam", "sid", "pia", "rae", "apo"]

with db:
    db.execute(
        "INSERT INTO workflow_definitions (digest, workflow_id, version, source, created_at) VALUES (?, 'model-provider', 1, ?, ?)",
        (digest, source, now),
    )
    models = []
    for p in range(100):
        pid = str(uuid.uuid4())
        db.execute(
            "INSERT INTO providers (id, slug, name, contacts, version, created_at, updated_at) VALUES (?, ?, ?, '[]', 1, ?, ?)",
            (pid, f"provider-{p}", f"Provider {p}", now, now),
        )
        for m in range(100):
            mid = str(uuid.uuid4())
            models.append((pid, mid))
            db.execute(
                "INSERT INTO models (id, provider_id, slug, name, version, created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?)",
                (mid, pid, f"model-{m}", f"Model {m}", now, now),
            )
    reviews, stages, answers, decisions = [], [], [], []
    for i in range(2000):
        pid, mid = models[i * 5]
        rid = str(uuid.uuid4())
        created = (start - datetime.timedelta(days=i % 300)).strftime(fmt)
        if i < 1200:
            decided = (start - datetime.timedelta(days=i % 365)).strftime(fmt)
            until = (start + datetime.timedelta(days=(i * 7) % 400)).strftime(fmt)
            conditional = i % 3 == 0
            conditions = json.dumps({"regions": ["eu"]}) if conditional else None
            state = "approved_with_conditions" if conditional else "approved"
            reviews.append((rid, pid, mid, state, "medium", conditions, decided, until, created))
            stage_states = ["approved", "approved", "approved", "skipped", "skipped"]
        else:
            reviews.append((rid, pid, mid, "in_progress", "medium", None, None, None, created))
            phase = i % 4
            stage_states = [
                ["awaiting_answers", "blocked", "blocked", "blocked", "blocked"],
                ["approved", "awaiting_answers", "in_review", "skipped", "skipped"],
                ["approved", "in_review", "awaiting_answers", "skipped", "skipped"],
                ["approved", "in_review", "in_review", "skipped", "skipped"],
            ][phase]
        for n, (key, state) in enumerate(zip(keys, stage_states)):
            sid = str(uuid.uuid4())
            due = (start + datetime.timedelta(days=(i % 20) - 5)).strftime(fmt)
            open_stage = state in ("awaiting_answers", "in_review")
            stages.append((sid, rid, key, state, due if open_stage else None, 1 if state == "in_review" else 0, created, created))
            if key == "intake" and state != "awaiting_answers":
                for q, value in [("use_case", "Drafting support replies"), ("business_owner", "Head of Support"),
                                 ("user_population", "internal_staff"), ("affects_people", False), ("annex_iii", False)]:
                    answers.append((str(uuid.uuid4()), sid, q, json.dumps(value), "victor", created))
                decisions.append((str(uuid.uuid4()), sid, "approve", "vera", created, 0))
            if state == "approved" and key != "intake":
                decisions.append((str(uuid.uuid4()), sid, "approve", reviewers[n], created, 1))
    db.executemany(
        "INSERT INTO reviews (id, provider_id, model_id, kind, workflow_id, workflow_version, workflow_digest, state, tier,"
        " started_by, conditions, decided_at, valid_until, version, created_at, updated_at)"
        f" VALUES (?, ?, ?, 'initial', 'model-provider', 1, '{digest}', ?, ?, 'victor', ?, ?, ?, 1, ?, ?)",
        [r + (now,) for r in reviews],
    )
    db.executemany(
        "INSERT INTO review_stages (id, review_id, stage_key, state, due_at, escalation_level, round, answerers, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, 0, ?, '[\"victor\"]', ?, ?)",
        stages,
    )
    db.executemany(
        "INSERT INTO answers (id, stage_id, question_id, value, answered_by, carried_forward, updated_at) VALUES (?, ?, ?, ?, ?, 0, ?)",
        answers,
    )
    db.executemany(
        "INSERT INTO decisions (id, stage_id, decision, actor_sub, created_at, round) VALUES (?, ?, ?, ?, ?, ?)",
        decisions,
    )
    db.execute("UPDATE status_version SET version = version + 1 WHERE id = 1")
    db.execute("UPDATE models SET status_version = (SELECT version FROM status_version WHERE id = 1)")
print(f"seeded 10000 models, {len(reviews)} reviews, {len(stages)} stages")
