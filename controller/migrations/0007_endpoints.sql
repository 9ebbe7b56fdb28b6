-- Endpoint protection from Kaspersky Security Center: the last good fleet roll-up per source
-- and the outcome of the latest attempt. A failed attempt never replaces the roll-up; it only
-- records its error, so the last known data stays with its age.
CREATE TABLE endpoint_rollups (
    source        TEXT PRIMARY KEY,          -- `ksc`
    rollup        TEXT,                      -- JSON: totals, groups and one row per computer
    as_of         INTEGER,                   -- unix ms of the good read `rollup` holds
    last_attempt  INTEGER NOT NULL,          -- unix ms of the latest read, good or not
    last_error    TEXT,                      -- JSON {kind, message} of the latest read; NULL if it was good
    error_at      INTEGER
);
