-- Intake: who asked about a model nobody reviewed, aggregated per asker
-- and use case ('' when none was given), and what a vendor manager made of
-- the request (a review started from it, or dismissed with a reason).

CREATE TABLE intake_askers (
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    sub TEXT NOT NULL,
    use_case TEXT NOT NULL,
    asked BIGINT NOT NULL,
    first_seen TIMESTAMP NOT NULL,
    last_seen TIMESTAMP NOT NULL,
    PRIMARY KEY (provider, model, sub, use_case)
);

CREATE TABLE intake_outcomes (
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    review_id TEXT,
    decided_by TEXT NOT NULL,
    decided_at TIMESTAMP NOT NULL,
    PRIMARY KEY (provider, model)
);
