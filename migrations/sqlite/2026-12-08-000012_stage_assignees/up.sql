-- A stage has someone assigned to answer it and someone assigned to decide
-- it, separately. The one `assignee` was whoever the stage waited on: a
-- stage in review waited on its decider, any other on its answerer.

ALTER TABLE review_stages RENAME COLUMN assignee TO answer_assignee;
ALTER TABLE review_stages ADD COLUMN decide_assignee TEXT;

UPDATE review_stages SET decide_assignee = answer_assignee, answer_assignee = NULL
WHERE state = 'in_review';

CREATE INDEX review_stages_decide_assignee_idx ON review_stages (decide_assignee, state);
