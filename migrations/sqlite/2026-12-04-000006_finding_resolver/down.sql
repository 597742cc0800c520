ALTER TABLE findings DROP COLUMN resolved_by;
