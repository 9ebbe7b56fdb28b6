-- Security-level policies: which pack applies to which systems (by name or by level) and in
-- which mode, waivers, the current finding per (host, pack, control) and its history.

CREATE TABLE policy_assignments (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    pack        TEXT NOT NULL,
    scope       TEXT NOT NULL,            -- system | level
    target      TEXT NOT NULL,            -- the system's name, or the level (1–5)
    mode        TEXT NOT NULL,            -- audit | enforce
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (pack, scope, target)
);

CREATE TABLE policy_waivers (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    control     TEXT NOT NULL,
    scope       TEXT NOT NULL,            -- host | system
    target      TEXT NOT NULL,
    until       INTEGER NOT NULL,         -- stops applying by itself after this time
    reason      TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE findings (
    host         TEXT NOT NULL,
    pack         TEXT NOT NULL,
    control      TEXT NOT NULL,
    level        INTEGER NOT NULL,
    status       TEXT NOT NULL,           -- pass | fail | waived | error | not_applicable
    message      TEXT NOT NULL,
    evidence     TEXT NOT NULL,           -- JSON: the fact values the control judged
    facts_at     INTEGER,                 -- when those facts were collected
    since        INTEGER NOT NULL,        -- when it entered this status
    evaluated_at INTEGER NOT NULL,
    PRIMARY KEY (host, pack, control)
);

CREATE TABLE finding_history (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    host     TEXT NOT NULL,
    pack     TEXT NOT NULL,
    control  TEXT NOT NULL,
    at       INTEGER NOT NULL,
    status   TEXT NOT NULL,
    cause    TEXT NOT NULL                -- what led to it: `evaluation`, `remediation task <id>`
);
CREATE INDEX finding_history_key ON finding_history (host, pack, control, at);
