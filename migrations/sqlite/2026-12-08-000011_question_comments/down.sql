ALTER TABLE findings DROP COLUMN raised_by_value;
ALTER TABLE decisions DROP COLUMN answers_then;
DROP TABLE question_comments;
