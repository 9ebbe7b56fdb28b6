-- Foundation schema: hosts, agents' reports, certificates, tokens, users, tasks, audit.
-- Times are unix milliseconds (INTEGER) so that both SQLite and PostgreSQL compare them alike.

CREATE TABLE hosts (
    name            TEXT PRIMARY KEY,
    site            TEXT,
    kind            TEXT NOT NULL,              -- hypervisor | vm | server
    managed         INTEGER NOT NULL,           -- 1 when the inventory declares it
    enrolled_at     INTEGER,
    last_seen       INTEGER,                    -- last message of any kind from its agent
    last_seq        INTEGER NOT NULL DEFAULT 0, -- highest report sequence stored
    reports_stored  INTEGER NOT NULL DEFAULT 0, -- distinct sequence numbers stored
    problems        TEXT NOT NULL DEFAULT '[]', -- JSON array from the latest heartbeat
    outbox_backlog  INTEGER NOT NULL DEFAULT 0,
    outbox_dropped  INTEGER NOT NULL DEFAULT 0,
    outbox_compacted INTEGER NOT NULL DEFAULT 0,
    agent_version   TEXT,
    facts           TEXT,                       -- JSON of the latest fact snapshot
    facts_at        INTEGER
);

CREATE TABLE reports (
    host        TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    payload     BLOB,
    PRIMARY KEY (host, seq)
);

CREATE TABLE certs (
    serial     TEXT PRIMARY KEY,
    host       TEXT NOT NULL,
    issued_at  INTEGER NOT NULL,
    not_after  INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX certs_host ON certs (host);

CREATE TABLE users (
    name       TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    kind        TEXT NOT NULL,           -- bootstrap | user
    role        TEXT NOT NULL,
    user_name   TEXT,                    -- owner of a user token; creator of a bootstrap token
    host        TEXT,                    -- host a bootstrap token is bound to, if any
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    used_at     INTEGER,
    used_by     TEXT
);

CREATE TABLE tasks (
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    args         TEXT NOT NULL,          -- JSON
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    deadline     INTEGER NOT NULL,
    state        TEXT NOT NULL,          -- pending | delivered | exited | failed | timed-out | expired | interrupted | unsupported
    delivered_at INTEGER,
    started_at   INTEGER,
    finished_at  INTEGER,
    exit_code    INTEGER,
    stdout       BLOB,
    stderr       BLOB,
    stdout_truncated INTEGER NOT NULL DEFAULT 0,
    stderr_truncated INTEGER NOT NULL DEFAULT 0,
    error        TEXT
);
CREATE INDEX tasks_host_state ON tasks (host, state);

CREATE TABLE audit (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
);
