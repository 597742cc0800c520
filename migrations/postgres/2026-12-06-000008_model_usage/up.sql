-- Usage: the answers integrators got about each catalogued model, per hour
-- (its start, UTC), asker (the token's `sub`) and use case ('' when none was
-- given): how many allowed its use and how many denied it. Written by each
-- instance from its tallies; old hours are deleted after the retention.

CREATE TABLE model_usage (
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    hour TIMESTAMP NOT NULL,
    sub TEXT NOT NULL,
    use_case TEXT NOT NULL,
    allowed BIGINT NOT NULL,
    denied BIGINT NOT NULL,
    PRIMARY KEY (provider, model, hour, sub, use_case)
);

CREATE INDEX model_usage_by_hour ON model_usage (hour);
