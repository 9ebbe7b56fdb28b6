-- Video-conference device checks: one row per device per check run, kept (state now, the last
-- known state with its age when a check cannot run, availability over a period).
CREATE TABLE vc_checks (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id   TEXT NOT NULL,            -- the vc_check task that carried it
    device   TEXT NOT NULL,
    site     TEXT NOT NULL,
    at       INTEGER NOT NULL,         -- unix ms the result arrived
    state    TEXT NOT NULL,            -- up | degraded | down | unknown
    go       INTEGER NOT NULL,
    reasons  TEXT NOT NULL,            -- JSON array of strings
    checks   TEXT NOT NULL             -- JSON array of {kind, ok, detail, ms, info, reason}
);
CREATE INDEX vc_checks_device ON vc_checks (device, at);
