-- Who resolved or accepted a finding (a person's sub), and when.
ALTER TABLE findings ADD COLUMN resolved_by TEXT;
