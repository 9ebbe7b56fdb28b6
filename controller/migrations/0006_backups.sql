-- Backups: each run an agent did for a plan (backup, check or restore), and each restore
-- point (snapshot) a backup run reported, with how far it has been verified.
CREATE TABLE backup_runs (
    id           TEXT PRIMARY KEY,        -- the task id that carried it
    kind         TEXT NOT NULL,           -- backup | check | restore
    system       TEXT NOT NULL,
    plan         TEXT NOT NULL,
    host         TEXT NOT NULL,           -- the agent that ran it
    repository   TEXT,                    -- check and restore: the one repository
    snapshot_id  TEXT,                    -- restore: the snapshot restored
    requested_by TEXT NOT NULL,           -- a user, or `scheduler`
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    status       TEXT NOT NULL,           -- running | ok | failed
    error        TEXT,
    result       TEXT                     -- JSON the agent reported (never a password)
);
CREATE INDEX backup_runs_plan ON backup_runs (system, plan, kind, started_at);

CREATE TABLE backup_snapshots (
    repository      TEXT NOT NULL,
    snapshot_id     TEXT NOT NULL,
    system          TEXT NOT NULL,
    plan            TEXT NOT NULL,
    run_id          TEXT NOT NULL,
    host            TEXT NOT NULL,
    time            INTEGER NOT NULL,     -- when the backup finished (unix ms)
    bytes_added     INTEGER,
    files           INTEGER,
    manifest_sha256 TEXT,
    manifest_files  INTEGER,
    -- ok: restic wrote it and nothing since showed its repository damaged; restored: a
    -- restore drill brought it back and every file matched; failed: a check or a restore of
    -- its repository failed after it was written.
    verified        TEXT NOT NULL DEFAULT 'ok',
    verified_at     INTEGER,
    PRIMARY KEY (repository, snapshot_id)
);
CREATE INDEX backup_snapshots_system ON backup_snapshots (system, time);
