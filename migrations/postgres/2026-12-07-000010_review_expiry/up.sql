-- When an approval's lapse was recorded (`status.expired`): the re-review
-- sweep reads this column instead of searching the audit log, and sets it
-- once. Approvals recorded as expired before the column existed get the
-- time of their audit event.

ALTER TABLE reviews ADD COLUMN expired_at TIMESTAMP;

UPDATE reviews SET expired_at = (
    SELECT MIN(audit_events.occurred_at) FROM audit_events
    WHERE audit_events.review_id = reviews.id AND audit_events.action = 'status.expired'
);
