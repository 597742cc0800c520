-- The console's sessions (only the SHA-256 of the cookie's id is kept), the
-- sign-ins waiting for the identity provider to send the person back, and
-- the development sign-in links already used.

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    sub TEXT NOT NULL,
    email TEXT,
    name TEXT,
    roles TEXT NOT NULL DEFAULT '[]',
    csrf TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

CREATE TABLE sign_ins (
    state TEXT PRIMARY KEY,
    verifier TEXT NOT NULL,
    nonce TEXT NOT NULL,
    return_to TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE sign_in_links (
    jti TEXT PRIMARY KEY,
    used_at TIMESTAMP NOT NULL
);
