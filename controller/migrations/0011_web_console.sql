-- Web console: people's passwords (Argon2id PHC strings), sign-in failures per name (known or
-- not, so a lock-out says nothing about who exists), and server-side browser sessions.
ALTER TABLE users ADD COLUMN password_hash TEXT;

CREATE TABLE signin_failures (
    name          TEXT PRIMARY KEY,        -- the name typed, whether or not such a user exists
    failures      INTEGER NOT NULL,        -- consecutive failures since the last success or lock
    last_failure  INTEGER NOT NULL,        -- unix ms
    locked_until  INTEGER                  -- unix ms; refused until then, even with the right password
);

CREATE TABLE web_sessions (
    id_hash    TEXT PRIMARY KEY,           -- SHA-256 of the cookie's random id; the id itself is never stored
    user_name  TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,              -- the session's CSRF token, sent back in every form
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL            -- idle expiry counts from here
);
CREATE INDEX web_sessions_last_seen ON web_sessions (last_seen);
