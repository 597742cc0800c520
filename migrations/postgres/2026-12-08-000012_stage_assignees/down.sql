DROP INDEX review_stages_decide_assignee_idx;
UPDATE review_stages SET answer_assignee = decide_assignee WHERE state = 'in_review';
ALTER TABLE review_stages DROP COLUMN decide_assignee;
ALTER TABLE review_stages RENAME COLUMN answer_assignee TO assignee;
