-- Platforms (vCenter, OpenStack, libvirt) and what their syncs found: hosts, VMs, storage, with
-- history. Times are unix milliseconds. A VM's identity is (platform, vm_id): the platform's
-- own stable id, so a VM that moves between hosts or is renamed stays one row.

CREATE TABLE platforms (
    name             TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,          -- vsphere | openstack | libvirt
    site             TEXT,
    endpoint         TEXT NOT NULL,
    up               INTEGER,                -- 1 after a good sync, 0 after a failed one, NULL before any
    last_sync        INTEGER,                -- end of the last good sync
    last_attempt     INTEGER,
    last_error       TEXT,
    last_duration_ms INTEGER,
    last_round_trips INTEGER
);

CREATE TABLE platform_hosts (
    platform     TEXT NOT NULL,
    host_id      TEXT NOT NULL,
    name         TEXT NOT NULL,
    info         TEXT NOT NULL,              -- JSON of the driver's HostInfo
    seen_at      INTEGER NOT NULL,
    PRIMARY KEY (platform, host_id)
);

CREATE TABLE vms (
    platform     TEXT NOT NULL,
    vm_id        TEXT NOT NULL,
    name         TEXT NOT NULL,
    site         TEXT,
    host         TEXT,
    power_state  TEXT NOT NULL,
    vcpus        INTEGER NOT NULL,
    memory_bytes INTEGER NOT NULL,
    disk_bytes   INTEGER NOT NULL,
    guest_os     TEXT,
    system       TEXT,                       -- the information system the inventory's rules map it to
    info         TEXT NOT NULL,              -- JSON of the driver's VmInfo (disks, networks, tags)
    first_seen   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    PRIMARY KEY (platform, vm_id)
);
CREATE INDEX vms_name ON vms (name);

-- One row per change a sync saw: appeared, gone, moved, resized, renamed, power.
CREATE TABLE vm_history (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    platform  TEXT NOT NULL,
    vm_id     TEXT NOT NULL,
    name      TEXT NOT NULL,
    at        INTEGER NOT NULL,
    change    TEXT NOT NULL,
    before    TEXT,                          -- JSON
    after     TEXT                           -- JSON
);
CREATE INDEX vm_history_vm ON vm_history (platform, vm_id, at);
CREATE INDEX vm_history_at ON vm_history (platform, at);

CREATE TABLE storage (
    platform       TEXT NOT NULL,
    pool_id        TEXT NOT NULL,
    name           TEXT NOT NULL,
    capacity_bytes INTEGER NOT NULL,
    free_bytes     INTEGER NOT NULL,
    seen_at        INTEGER NOT NULL,
    PRIMARY KEY (platform, pool_id)
);

-- Capacity over time: one row per pool per good sync.
CREATE TABLE storage_history (
    platform       TEXT NOT NULL,
    pool_id        TEXT NOT NULL,
    at             INTEGER NOT NULL,
    capacity_bytes INTEGER NOT NULL,
    free_bytes     INTEGER NOT NULL,
    PRIMARY KEY (platform, pool_id, at)
);

-- Hosts that cannot run an agent (ESXi) are reported by the proxy agent named here.
ALTER TABLE hosts ADD COLUMN proxied_by TEXT;
