-- What the review engine keeps beyond the first schema: submission rounds
-- (approvals count within one), who answered each stage, which risk rule
-- opened a finding, the starter's email, and the workflow definitions that
-- reviews pinned (so editing a file never changes a running review).

ALTER TABLE review_stages ADD COLUMN round INTEGER NOT NULL DEFAULT 0;
ALTER TABLE review_stages ADD COLUMN answerers TEXT NOT NULL DEFAULT '[]';
ALTER TABLE decisions ADD COLUMN round INTEGER NOT NULL DEFAULT 0;
ALTER TABLE findings ADD COLUMN source TEXT;
ALTER TABLE reviews ADD COLUMN started_by_email TEXT;

CREATE INDEX findings_source_idx ON findings (review_id, source);
CREATE INDEX decisions_review_stage_idx ON decisions (stage_id, round);

CREATE TABLE workflow_definitions (
    digest TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    source TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
