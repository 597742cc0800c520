-- A reviewer's comment on one question of a stage, shown beside it to
-- whoever answers.
CREATE TABLE question_comments (
    id TEXT PRIMARY KEY,
    stage_id TEXT NOT NULL REFERENCES review_stages (id),
    question_id TEXT NOT NULL,
    body TEXT NOT NULL,
    author TEXT NOT NULL,
    round INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX question_comments_stage_idx ON question_comments (stage_id, created_at);

-- The stage's answers when a reviewer requested changes (JSON), to show
-- what the next submission changed.
ALTER TABLE decisions ADD COLUMN answers_then TEXT;

-- The answer (JSON) that made a risk rule raise the finding.
ALTER TABLE findings ADD COLUMN raised_by_value TEXT;
