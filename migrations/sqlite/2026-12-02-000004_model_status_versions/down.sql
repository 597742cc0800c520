ALTER TABLE models DROP COLUMN status_version;
