-- Supplier notices that wait or were sent: each row is one invitation whose
-- stage opened. A contact emailed less than a day before (an invitation or
-- an opening notice) is not emailed at once; the row waits (`sent_at` NULL)
-- until the SLA sweep announces every stage that opened in one message.
CREATE TABLE supplier_notices (
    invitation_id TEXT PRIMARY KEY REFERENCES respondent_tokens (id),
    review_id TEXT NOT NULL REFERENCES reviews (id),
    email TEXT NOT NULL,
    stage_key TEXT NOT NULL,
    opened_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
CREATE INDEX supplier_notices_contact_idx ON supplier_notices (review_id, email);
CREATE INDEX supplier_notices_waiting_idx ON supplier_notices (sent_at);

-- Who was told of a suspension (the subject as the audit log names it):
-- the same people are told when it is resumed.
CREATE TABLE suspension_notices (
    subject TEXT NOT NULL,
    email TEXT NOT NULL,
    -- `staff` (vendor managers or admins) or `integrator`.
    audience TEXT NOT NULL,
    -- The integrator's identity, for an integrator.
    sub TEXT,
    told_at TIMESTAMP NOT NULL,
    PRIMARY KEY (subject, email)
);
