-- The whole domain of Clearance. Column types are kept portable (TEXT, BIGINT,
-- INTEGER, BOOLEAN, TIMESTAMP) so one diesel schema serves PostgreSQL and
-- SQLite; identifiers are UUID strings, timestamps are UTC, JSON is TEXT.

CREATE TABLE providers (
    id TEXT PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    website TEXT,
    contacts TEXT NOT NULL DEFAULT '[]',
    notes TEXT,
    suspended_at TIMESTAMP,
    suspended_reason TEXT,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE models (
    id TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL REFERENCES providers (id),
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    model_version TEXT,
    modality TEXT,
    hosting TEXT,
    description TEXT,
    suspended_at TIMESTAMP,
    suspended_reason TEXT,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (provider_id, slug)
);

CREATE TABLE reviews (
    id TEXT PRIMARY KEY,
    provider_id TEXT NOT NULL REFERENCES providers (id),
    model_id TEXT REFERENCES models (id),
    kind TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    workflow_version BIGINT NOT NULL,
    workflow_digest TEXT NOT NULL,
    state TEXT NOT NULL,
    tier TEXT NOT NULL,
    tier_reason TEXT,
    started_by TEXT NOT NULL,
    previous_review_id TEXT REFERENCES reviews (id),
    conditions TEXT,
    decided_at TIMESTAMP,
    valid_until TIMESTAMP,
    version BIGINT NOT NULL DEFAULT 1,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX reviews_state_idx ON reviews (state, created_at);
CREATE INDEX reviews_subject_idx ON reviews (provider_id, model_id, created_at);
CREATE INDEX reviews_valid_until_idx ON reviews (valid_until);

CREATE TABLE review_stages (
    id TEXT PRIMARY KEY,
    review_id TEXT NOT NULL REFERENCES reviews (id),
    stage_key TEXT NOT NULL,
    state TEXT NOT NULL,
    assignee TEXT,
    due_at TIMESTAMP,
    escalation_level INTEGER NOT NULL DEFAULT 0,
    opened_at TIMESTAMP,
    submitted_at TIMESTAMP,
    submitted_by TEXT,
    closed_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (review_id, stage_key)
);
CREATE INDEX review_stages_due_idx ON review_stages (state, due_at);
CREATE INDEX review_stages_assignee_idx ON review_stages (assignee, state);

CREATE TABLE answers (
    id TEXT PRIMARY KEY,
    stage_id TEXT NOT NULL REFERENCES review_stages (id),
    question_id TEXT NOT NULL,
    value TEXT NOT NULL,
    answered_by TEXT NOT NULL,
    carried_forward BOOLEAN NOT NULL DEFAULT FALSE,
    previous_value TEXT,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (stage_id, question_id)
);

CREATE TABLE decisions (
    id TEXT PRIMARY KEY,
    stage_id TEXT NOT NULL REFERENCES review_stages (id),
    decision TEXT NOT NULL,
    actor_sub TEXT NOT NULL,
    actor_email TEXT,
    comment TEXT,
    conditions TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX decisions_stage_idx ON decisions (stage_id, created_at);

CREATE TABLE findings (
    id TEXT PRIMARY KEY,
    review_id TEXT NOT NULL REFERENCES reviews (id),
    stage_key TEXT,
    severity TEXT NOT NULL,
    text TEXT NOT NULL,
    owner TEXT,
    remediation_due TIMESTAMP,
    state TEXT NOT NULL,
    resolution TEXT,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX findings_review_idx ON findings (review_id, created_at);

CREATE TABLE respondent_tokens (
    id TEXT PRIMARY KEY,
    stage_id TEXT NOT NULL REFERENCES review_stages (id),
    email TEXT NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    revoked_at TIMESTAMP,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX respondent_tokens_stage_idx ON respondent_tokens (stage_id);

-- Append-only, hash-chained. `seq` is assigned by the writer that holds the
-- chain head (audit_head), so the chain has neither gaps nor forks.
CREATE TABLE audit_events (
    seq BIGINT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    occurred_at TIMESTAMP NOT NULL,
    actor TEXT NOT NULL,
    actor_roles TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    review_id TEXT,
    request_id TEXT,
    before_data TEXT,
    after_data TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_events_subject_idx ON audit_events (subject, seq);
CREATE INDEX audit_events_actor_idx ON audit_events (actor, seq);
CREATE INDEX audit_events_action_idx ON audit_events (action, seq);
CREATE INDEX audit_events_time_idx ON audit_events (occurred_at);
CREATE INDEX audit_events_review_idx ON audit_events (review_id, seq);

-- One row: the head of the audit chain, and the lock every write transaction takes first.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE outbox_messages (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    dedup_key TEXT UNIQUE,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
CREATE INDEX outbox_messages_due_idx ON outbox_messages (state, next_attempt_at);

CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    events TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- One row: bumped in every transaction that changes a published status.
CREATE TABLE status_version (
    id INTEGER PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO status_version (id, version) VALUES (1, 0);
