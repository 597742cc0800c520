DROP TABLE workflow_definitions;
DROP INDEX decisions_review_stage_idx;
DROP INDEX findings_source_idx;
ALTER TABLE reviews DROP COLUMN started_by_email;
ALTER TABLE findings DROP COLUMN source;
ALTER TABLE decisions DROP COLUMN round;
ALTER TABLE review_stages DROP COLUMN answerers;
ALTER TABLE review_stages DROP COLUMN round;
