-- Capacity history: one row per scope, resource, tier and time bucket.
--
-- `raw` rows are the samples taken after each platform sync; older ones are folded into `hour`
-- rows, and old `hour` rows into `day` rows (see capacity::history for the retention). A folded
-- row's values are the average of the rows it replaced, `n` how many raw samples that average
-- stands for, so folding twice still weighs every raw sample once.
CREATE TABLE capacity_samples (
    scope_kind  TEXT NOT NULL,            -- site | host | pool | system
    scope       TEXT NOT NULL,            -- its name (a pool is `platform/pool`)
    resource    TEXT NOT NULL,            -- cpu | memory | storage | vms
    tier        TEXT NOT NULL,            -- raw | hour | day
    at          INTEGER NOT NULL,         -- unix seconds; the bucket's start for hour and day
    capacity    REAL,                     -- NULL where the scope has no capacity (a system)
    provisioned REAL,                     -- allocated to VMs (storage: the VMs' disk sizes)
    used        REAL NOT NULL,            -- the value forecasts follow (see capacity::sample)
    n           INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (scope_kind, scope, resource, tier, at)
) WITHOUT ROWID;
CREATE INDEX capacity_samples_tier_at ON capacity_samples (tier, at);
