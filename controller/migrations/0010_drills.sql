-- Drills and failovers: a durable workflow per run. Every step's start and result is written
-- before the next step begins, so a controller killed at any instant resumes where it was.
CREATE TABLE drill_runs (
    id            TEXT PRIMARY KEY,
    plan          TEXT NOT NULL,
    plan_version  INTEGER NOT NULL,
    mode          TEXT NOT NULL,            -- test | planned | disaster | failback
    state         TEXT NOT NULL,            -- awaiting_approval | running | paused | aborting | succeeded | failed | aborted | refused | expired
    started_by    TEXT NOT NULL,
    approved_by   TEXT,
    created_at    INTEGER NOT NULL,         -- unix ms
    started_at    INTEGER,                  -- when steps began (after approval)
    finished_at   INTEGER,
    steps         TEXT NOT NULL,            -- JSON: the step specs, fixed when the run is created
    systems       TEXT NOT NULL,            -- JSON: the systems with their RTO/RPO targets
    notes         TEXT NOT NULL,            -- JSON: [{at, by, text}]
    error         TEXT
);
CREATE INDEX drill_runs_state ON drill_runs (state);

CREATE TABLE drill_steps (
    run          TEXT NOT NULL,
    key          TEXT NOT NULL,
    state        TEXT NOT NULL,             -- pending | running | waiting | succeeded | failed | skipped
    attempts     INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    not_before   INTEGER,                   -- a retry's backoff: not started again before this
    result       TEXT,                      -- JSON the step produced (instance id, address, …)
    error        TEXT,
    PRIMARY KEY (run, key)
);

CREATE TABLE drill_approvals (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    run           TEXT NOT NULL UNIQUE,
    plan          TEXT NOT NULL,
    mode          TEXT NOT NULL,
    requested_by  TEXT NOT NULL,
    requested_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    decided_by    TEXT,
    decided_at    INTEGER,
    decision      TEXT                      -- approved | refused | expired | withdrawn
);
