-- Who gets told: every person who has signed in (their address and roles,
-- as their last token said), and the shared mailboxes an admin set per role.

CREATE TABLE people (
    sub TEXT PRIMARY KEY,
    email TEXT,
    roles TEXT NOT NULL DEFAULT '[]',
    last_seen_at TIMESTAMP NOT NULL
);
CREATE INDEX people_last_seen_idx ON people (last_seen_at);

CREATE TABLE role_mailboxes (
    role TEXT PRIMARY KEY,
    emails TEXT NOT NULL DEFAULT '[]',
    updated_by TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
