//! [`PlatformStore`] on SQLite.

use async_trait::async_trait;
use plugins::hypervisor::{HostInfo, StoragePool, VmInfo};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::platforms::*;
use super::sqlite::{json_col, write_tx};
use super::{SqliteStore, StoreError};

fn to_json<T: serde::Serialize>(column: &'static str, v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|source| StoreError::Corrupt { column, source })
}

fn from_json<T: serde::de::DeserializeOwned>(row: &SqliteRow, column: &'static str) -> Result<T, StoreError> {
    let text: String = row.try_get(column)?;
    serde_json::from_str(&text).map_err(|source| StoreError::Corrupt { column, source })
}

fn bytes(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn platform_from_row(row: &SqliteRow) -> Result<PlatformRecord, StoreError> {
    Ok(PlatformRecord {
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        site: row.try_get("site")?,
        endpoint: row.try_get("endpoint")?,
        up: row.try_get::<Option<i64>, _>("up")?.map(|v| v != 0),
        last_sync: row.try_get("last_sync")?,
        last_attempt: row.try_get("last_attempt")?,
        last_error: row.try_get("last_error")?,
        last_duration_ms: row.try_get("last_duration_ms")?,
        last_round_trips: row.try_get("last_round_trips")?,
    })
}

fn change_from_row(row: &SqliteRow) -> Result<VmChange, StoreError> {
    Ok(VmChange {
        platform: row.try_get("platform")?,
        vm_id: row.try_get("vm_id")?,
        name: row.try_get("name")?,
        at: row.try_get("at")?,
        change: row.try_get("change")?,
        before: json_col(row, "before")?,
        after: json_col(row, "after")?,
    })
}

impl SqliteStore {
    fn pool(&self) -> &sqlx::SqlitePool {
        &self.pool
    }
}

#[async_trait]
impl PlatformStore for SqliteStore {
    async fn upsert_platforms(&self, seeds: &[PlatformSeed]) -> Result<(), StoreError> {
        let mut tx = write_tx(self.pool()).await?;
        for p in seeds {
            sqlx::query(
                "INSERT INTO platforms (name, kind, site, endpoint) VALUES (?, ?, ?, ?)
                 ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, site = excluded.site,
                 endpoint = excluded.endpoint",
            )
            .bind(&p.name)
            .bind(&p.kind)
            .bind(&p.site)
            .bind(&p.endpoint)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_platforms(&self) -> Result<Vec<PlatformRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM platforms ORDER BY name").fetch_all(self.pool()).await?;
        rows.iter().map(platform_from_row).collect()
    }

    async fn record_sync_failure(
        &self,
        platform: &str,
        at: i64,
        duration_ms: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE platforms SET up = 0, last_attempt = ?, last_error = ?, last_duration_ms = ? WHERE name = ?",
        )
        .bind(at)
        .bind(error)
        .bind(duration_ms)
        .bind(platform)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn record_sync(&self, s: &SyncWrite) -> Result<(), StoreError> {
        let mut tx = write_tx(self.pool()).await?;
        sqlx::query(
            "UPDATE platforms SET up = 1, last_sync = ?, last_attempt = ?, last_error = NULL,
             last_duration_ms = ?, last_round_trips = ? WHERE name = ?",
        )
        .bind(s.at)
        .bind(s.at)
        .bind(s.duration_ms)
        .bind(s.round_trips)
        .bind(&s.platform)
        .execute(&mut *tx)
        .await?;

        sqlx::query("DELETE FROM platform_hosts WHERE platform = ?").bind(&s.platform).execute(&mut *tx).await?;
        for h in &s.hosts {
            sqlx::query("INSERT INTO platform_hosts (platform, host_id, name, info, seen_at) VALUES (?, ?, ?, ?, ?)")
                .bind(&s.platform)
                .bind(&h.id)
                .bind(&h.name)
                .bind(to_json("info", h)?)
                .bind(s.at)
                .execute(&mut *tx)
                .await?;
        }

        // VMs: upsert what is there (keeping first_seen), then delete what is not.
        sqlx::query("CREATE TEMP TABLE IF NOT EXISTS sync_seen (vm_id TEXT PRIMARY KEY)").execute(&mut *tx).await?;
        sqlx::query("DELETE FROM sync_seen").execute(&mut *tx).await?;
        for (vm, system) in &s.vms {
            let disk: u64 = vm.disks.iter().map(|d| d.capacity_bytes).sum();
            sqlx::query(
                "INSERT INTO vms (platform, vm_id, name, site, host, power_state, vcpus, memory_bytes, disk_bytes,
                                  guest_os, system, info, first_seen, last_seen)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (platform, vm_id) DO UPDATE SET name = excluded.name, site = excluded.site,
                   host = excluded.host, power_state = excluded.power_state, vcpus = excluded.vcpus,
                   memory_bytes = excluded.memory_bytes, disk_bytes = excluded.disk_bytes,
                   guest_os = excluded.guest_os, system = excluded.system, info = excluded.info,
                   last_seen = excluded.last_seen",
            )
            .bind(&s.platform)
            .bind(&vm.id)
            .bind(&vm.name)
            .bind(&s.site)
            .bind(&vm.host)
            .bind(vm.power_state.as_str())
            .bind(i64::from(vm.vcpus))
            .bind(bytes(vm.memory_bytes))
            .bind(bytes(disk))
            .bind(&vm.guest_os)
            .bind(system)
            .bind(to_json("info", vm)?)
            .bind(s.at)
            .bind(s.at)
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT OR IGNORE INTO sync_seen (vm_id) VALUES (?)").bind(&vm.id).execute(&mut *tx).await?;
        }
        sqlx::query("DELETE FROM vms WHERE platform = ? AND vm_id NOT IN (SELECT vm_id FROM sync_seen)")
            .bind(&s.platform)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM sync_seen").execute(&mut *tx).await?;

        for c in &s.changes {
            sqlx::query(
                "INSERT INTO vm_history (platform, vm_id, name, at, change, before, after) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&c.platform)
            .bind(&c.vm_id)
            .bind(&c.name)
            .bind(c.at)
            .bind(&c.change)
            .bind(c.before.as_ref().map(|v| v.to_string()))
            .bind(c.after.as_ref().map(|v| v.to_string()))
            .execute(&mut *tx)
            .await?;
        }

        sqlx::query("DELETE FROM storage WHERE platform = ?").bind(&s.platform).execute(&mut *tx).await?;
        for p in &s.storage {
            sqlx::query(
                "INSERT INTO storage (platform, pool_id, name, capacity_bytes, free_bytes, seen_at)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&s.platform)
            .bind(&p.id)
            .bind(&p.name)
            .bind(bytes(p.capacity_bytes))
            .bind(bytes(p.free_bytes))
            .bind(s.at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT OR REPLACE INTO storage_history (platform, pool_id, at, capacity_bytes, free_bytes)
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(&s.platform)
            .bind(&p.id)
            .bind(s.at)
            .bind(bytes(p.capacity_bytes))
            .bind(bytes(p.free_bytes))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_vms(&self) -> Result<Vec<VmRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT platform, vm_id, site, system, first_seen, last_seen, info FROM vms ORDER BY name, platform",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(VmRecord {
                    platform: row.try_get("platform")?,
                    vm_id: row.try_get("vm_id")?,
                    site: row.try_get("site")?,
                    system: row.try_get("system")?,
                    first_seen: row.try_get("first_seen")?,
                    last_seen: row.try_get("last_seen")?,
                    info: from_json::<VmInfo>(row, "info")?,
                })
            })
            .collect()
    }

    async fn list_platform_hosts(&self) -> Result<Vec<(String, HostInfo)>, StoreError> {
        let rows = sqlx::query("SELECT platform, info FROM platform_hosts ORDER BY platform, name")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|row| Ok((row.try_get("platform")?, from_json::<HostInfo>(row, "info")?))).collect()
    }

    async fn list_storage(&self) -> Result<Vec<StorageRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM storage ORDER BY platform, name").fetch_all(self.pool()).await?;
        rows.iter()
            .map(|row| {
                Ok(StorageRecord {
                    platform: row.try_get("platform")?,
                    seen_at: row.try_get("seen_at")?,
                    pool: StoragePool {
                        id: row.try_get("pool_id")?,
                        name: row.try_get("name")?,
                        capacity_bytes: u64::try_from(row.try_get::<i64, _>("capacity_bytes")?).unwrap_or(0),
                        free_bytes: u64::try_from(row.try_get::<i64, _>("free_bytes")?).unwrap_or(0),
                    },
                })
            })
            .collect()
    }

    async fn vm_changes(
        &self,
        platform: &str,
        at: Option<i64>,
        vm_id: Option<&str>,
    ) -> Result<Vec<VmChange>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM vm_history WHERE platform = ? AND (? IS NULL OR at = ?) AND (? IS NULL OR vm_id = ?)
             ORDER BY at, id",
        )
        .bind(platform)
        .bind(at)
        .bind(at)
        .bind(vm_id)
        .bind(vm_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(change_from_row).collect()
    }

    async fn record_proxied_hosts(
        &self,
        proxy: &str,
        now: i64,
        hosts: &[ProxiedHostStatus],
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = write_tx(self.pool()).await?;
        let mut updated = Vec::new();
        for h in hosts {
            let problems = to_json("problems", &h.problems)?;
            let facts = h.facts.as_ref().map(|f| f.to_string());
            let facts_at = h.facts.as_ref().map(|_| now);
            let done = sqlx::query(
                "UPDATE hosts SET proxied_by = ?, enrolled_at = COALESCE(enrolled_at, ?), problems = ?,
                   facts = COALESCE(?, facts), facts_at = COALESCE(?, facts_at),
                   last_seen = CASE WHEN ? THEN MAX(COALESCE(last_seen, 0), ?) ELSE last_seen END
                 WHERE name = ?",
            )
            .bind(proxy)
            .bind(now)
            .bind(problems)
            .bind(facts)
            .bind(facts_at)
            .bind(h.reachable)
            .bind(now)
            .bind(&h.name)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                updated.push(h.name.clone());
            }
        }
        tx.commit().await?;
        Ok(updated)
    }
}
