-- The status version at which each model's published clearance last
-- changed: the `version` integrators read, the same on every instance and
-- across restarts. Models already published start at the current version,
-- so no version they have shown goes down.
ALTER TABLE models ADD COLUMN status_version BIGINT NOT NULL DEFAULT 0;
UPDATE models SET status_version = (SELECT version FROM status_version WHERE id = 1);
