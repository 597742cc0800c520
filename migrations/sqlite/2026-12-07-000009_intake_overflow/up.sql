-- Intake past the bound: asks of one asker (the token's `sub`) about more
-- new names in a day than CLEARANCE_INTAKE_PER_ASKER, counted here per day
-- (its start, UTC) instead of as requests.

CREATE TABLE intake_overflow (
    sub TEXT NOT NULL,
    day TIMESTAMP NOT NULL,
    names BIGINT NOT NULL,
    asked BIGINT NOT NULL,
    last_seen TIMESTAMP NOT NULL,
    PRIMARY KEY (sub, day)
);
