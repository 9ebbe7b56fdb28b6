//! The embedded store: one SQLite file in WAL mode with `synchronous = FULL`, so a report the
//! controller has acknowledged survives a crash of the controller or of the machine.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Row, SqlitePool};

use super::*;

/// [`Store`] on SQLite.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) pool: SqlitePool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

// Column lists are compile-time constants (no input reaches the SQL text), hence AssertSqlSafe.
const HOST_COLUMNS: &str = "name, site, kind, managed, enrolled_at, last_seen, last_seq, reports_stored, problems, \
     outbox_backlog, outbox_dropped, outbox_compacted, agent_version, facts, facts_at, proxied_by";
const TASK_COLUMNS: &str = "id, host, kind, args, created_by, created_at, deadline, state, delivered_at, started_at, \
     finished_at, exit_code, stdout, stderr, stdout_truncated, stderr_truncated, error";

pub(super) fn json_col(row: &SqliteRow, column: &'static str) -> Result<Option<serde_json::Value>, StoreError> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| serde_json::from_str(&t).map_err(|source| StoreError::Corrupt { column, source })).transpose()
}

/// Starts a write transaction that takes SQLite's write lock at once (`BEGIN IMMEDIATE`). A
/// deferred transaction that reads first fails with "database is locked", without waiting,
/// when another writer commits between its read and its first write; taking the lock up
/// front makes it wait (up to the busy timeout) instead.
pub(super) async fn write_tx(pool: &SqlitePool) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// Marks a host seen at `now` (never moving its last sighting back).
async fn touch(conn: &mut sqlx::SqliteConnection, host: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE hosts SET last_seen = MAX(COALESCE(last_seen, 0), ?) WHERE name = ?")
        .bind(now)
        .bind(host)
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets a host's problems and outbox counters from a heartbeat.
async fn set_heartbeat_status(
    conn: &mut sqlx::SqliteConnection,
    host: &str,
    hb: &HeartbeatStatus,
) -> Result<(), StoreError> {
    let problems =
        serde_json::to_string(&hb.problems).map_err(|source| StoreError::Corrupt { column: "problems", source })?;
    sqlx::query(
        "UPDATE hosts SET problems = ?, outbox_backlog = ?, outbox_dropped = ?, outbox_compacted = ? WHERE name = ?",
    )
    .bind(problems)
    .bind(hb.backlog)
    .bind(hb.dropped)
    .bind(hb.compacted)
    .bind(host)
    .execute(conn)
    .await?;
    Ok(())
}

fn host_from_row(row: &SqliteRow) -> Result<HostRecord, StoreError> {
    let problems = match json_col(row, "problems")? {
        Some(v) => serde_json::from_value(v).map_err(|source| StoreError::Corrupt { column: "problems", source })?,
        None => Vec::new(),
    };
    Ok(HostRecord {
        name: row.try_get("name")?,
        site: row.try_get("site")?,
        kind: row.try_get("kind")?,
        managed: row.try_get::<i64, _>("managed")? != 0,
        enrolled_at: row.try_get("enrolled_at")?,
        last_seen: row.try_get("last_seen")?,
        last_seq: row.try_get("last_seq")?,
        reports_stored: row.try_get("reports_stored")?,
        problems,
        outbox_backlog: row.try_get("outbox_backlog")?,
        outbox_dropped: row.try_get("outbox_dropped")?,
        outbox_compacted: row.try_get("outbox_compacted")?,
        agent_version: row.try_get("agent_version")?,
        facts: json_col(row, "facts")?,
        facts_at: row.try_get("facts_at")?,
        proxied_by: row.try_get("proxied_by")?,
    })
}

fn task_from_row(row: &SqliteRow) -> Result<TaskRecord, StoreError> {
    Ok(TaskRecord {
        id: row.try_get("id")?,
        host: row.try_get("host")?,
        kind: row.try_get("kind")?,
        args: json_col(row, "args")?.unwrap_or(serde_json::Value::Null),
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        deadline: row.try_get("deadline")?,
        state: row.try_get("state")?,
        delivered_at: row.try_get("delivered_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        exit_code: row.try_get("exit_code")?,
        stdout: row.try_get::<Option<Vec<u8>>, _>("stdout")?.unwrap_or_default(),
        stderr: row.try_get::<Option<Vec<u8>>, _>("stderr")?.unwrap_or_default(),
        stdout_truncated: row.try_get::<i64, _>("stdout_truncated")? != 0,
        stderr_truncated: row.try_get::<i64, _>("stderr_truncated")? != 0,
        error: row.try_get("error")?,
    })
}

fn token_from_row(row: &SqliteRow) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        id: row.try_get("id")?,
        secret_hash: row.try_get("secret_hash")?,
        kind: row.try_get("kind")?,
        role: row.try_get("role")?,
        user_name: row.try_get("user_name")?,
        host: row.try_get("host")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        used_at: row.try_get("used_at")?,
    })
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        Self::with_options(opts).await
    }

    /// A private in-memory database, for tests.
    pub async fn in_memory() -> Result<SqliteStore, StoreError> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:")?;
        // One connection: every connection to ":memory:" is a different database.
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(opts).await?;
        MIGRATOR.run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    async fn with_options(opts: SqliteConnectOptions) -> Result<SqliteStore, StoreError> {
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await?;
        MIGRATOR.run(&pool).await?;
        Ok(SqliteStore { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn upsert_inventory_hosts(&self, seeds: &[HostSeed]) -> Result<(), StoreError> {
        let mut tx = write_tx(&self.pool).await?;
        for s in seeds {
            sqlx::query(
                "INSERT INTO hosts (name, site, kind, managed) VALUES (?, ?, ?, 1)
                 ON CONFLICT (name) DO UPDATE SET site = excluded.site, kind = excluded.kind, managed = 1",
            )
            .bind(&s.name)
            .bind(&s.site)
            .bind(&s.kind)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_hosts(&self) -> Result<Vec<HostRecord>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!("SELECT {HOST_COLUMNS} FROM hosts ORDER BY name")))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(host_from_row).collect()
    }

    async fn get_host(&self, name: &str) -> Result<Option<HostRecord>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {HOST_COLUMNS} FROM hosts WHERE name = ?")))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(host_from_row).transpose()
    }

    async fn insert_token(&self, t: &TokenRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tokens (id, secret_hash, kind, role, user_name, host, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&t.id)
        .bind(&t.secret_hash)
        .bind(&t.kind)
        .bind(&t.role)
        .bind(&t.user_name)
        .bind(&t.host)
        .bind(t.created_at)
        .bind(t.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_token(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, secret_hash, kind, role, user_name, host, created_at, expires_at, used_at FROM tokens WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn mark_token_used(&self, id: &str, now: i64, by: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE tokens SET used_at = ?, used_by = ? WHERE id = ? AND used_at IS NULL")
            .bind(now)
            .bind(by)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn ensure_user(&self, name: &str, role: &str, now: i64) -> Result<(), StoreError> {
        let mut tx = write_tx(&self.pool).await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT role FROM users WHERE name = ?").bind(name).fetch_optional(&mut *tx).await?;
        match existing {
            Some(r) if r == role => {}
            Some(r) => {
                return Err(StoreError::RoleMismatch {
                    user: name.to_string(),
                    existing: r,
                    requested: role.to_string(),
                });
            }
            None => {
                sqlx::query("INSERT INTO users (name, role, created_at) VALUES (?, ?, ?)")
                    .bind(name)
                    .bind(role)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn record_enrollment(&self, e: &Enrollment) -> Result<(), StoreError> {
        let mut tx = write_tx(&self.pool).await?;
        sqlx::query(
            "INSERT INTO hosts (name, kind, managed, enrolled_at) VALUES (?, 'server', 0, ?)
             ON CONFLICT (name) DO UPDATE SET enrolled_at = excluded.enrolled_at",
        )
        .bind(&e.host)
        .bind(e.issued_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO certs (serial, host, issued_at, not_after) VALUES (?, ?, ?, ?)")
            .bind(&e.serial)
            .bind(&e.host)
            .bind(e.issued_at)
            .bind(e.not_after)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_renewed_cert(&self, old_serial: &str, c: &CertRecord, issued_at: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO certs (serial, host, issued_at, not_after)
             SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM certs WHERE serial = ? AND host = ? AND revoked_at IS NULL)",
        )
        .bind(&c.serial)
        .bind(&c.host)
        .bind(issued_at)
        .bind(c.not_after)
        .bind(old_serial)
        .bind(&c.host)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn has_live_cert(&self, host: &str, now: i64) -> Result<bool, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM certs WHERE host = ? AND revoked_at IS NULL AND not_after > ?")
                .bind(host)
                .bind(now)
                .fetch_one(&self.pool)
                .await?;
        Ok(n > 0)
    }

    async fn user_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?)
    }

    async fn get_cert(&self, serial: &str) -> Result<Option<CertRecord>, StoreError> {
        let row = sqlx::query("SELECT serial, host, not_after, revoked_at FROM certs WHERE serial = ?")
            .bind(serial)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => Some(CertRecord {
                serial: r.try_get("serial")?,
                host: r.try_get("host")?,
                not_after: r.try_get("not_after")?,
                revoked_at: r.try_get("revoked_at")?,
            }),
            None => None,
        })
    }

    async fn revoke_host(&self, host: &str, now: i64) -> Result<u64, StoreError> {
        let r = sqlx::query("UPDATE certs SET revoked_at = ? WHERE host = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(host)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    async fn store_report(&self, r: &NewReport) -> Result<bool, StoreError> {
        let mut tx = write_tx(&self.pool).await?;
        let inserted = sqlx::query(
            "INSERT INTO reports (host, seq, kind, created_at, received_at, payload) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (host, seq) DO NOTHING",
        )
        .bind(&r.host)
        .bind(r.seq)
        .bind(r.kind)
        .bind(r.created_at)
        .bind(r.received_at)
        .bind(&r.payload)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if inserted {
            sqlx::query(
                "UPDATE hosts SET reports_stored = reports_stored + 1, last_seq = MAX(last_seq, ?), last_seen = ?
                 WHERE name = ?",
            )
            .bind(r.seq)
            .bind(r.received_at)
            .bind(&r.host)
            .execute(&mut *tx)
            .await?;
            match &r.effect {
                ReportEffect::Heartbeat(hb) => set_heartbeat_status(&mut tx, &r.host, hb).await?,
                ReportEffect::Facts { json, agent_version } => {
                    // Only a later report replaces the snapshot: by sequence number, not by
                    // the agent's clock, which may have been set back.
                    sqlx::query(
                        "UPDATE hosts SET facts = ?, facts_at = ?, facts_seq = ?, agent_version = ?
                         WHERE name = ? AND (facts_seq IS NULL OR facts_seq <= ?)",
                    )
                    .bind(json.to_string())
                    .bind(r.created_at)
                    .bind(r.seq)
                    .bind(agent_version)
                    .bind(&r.host)
                    .bind(r.seq)
                    .execute(&mut *tx)
                    .await?;
                }
                ReportEffect::TaskResult(o) => {
                    sqlx::query(
                        "UPDATE tasks SET state = ?, exit_code = ?, stdout = ?, stderr = ?, stdout_truncated = ?,
                         stderr_truncated = ?, error = ?, started_at = ?, finished_at = ?
                         WHERE id = ? AND host = ? AND state IN ('pending', 'delivered')",
                    )
                    .bind(&o.state)
                    .bind(o.exit_code)
                    .bind(&o.stdout)
                    .bind(&o.stderr)
                    .bind(o.stdout_truncated as i64)
                    .bind(o.stderr_truncated as i64)
                    .bind(&o.error)
                    .bind(o.started_at)
                    .bind(o.finished_at)
                    .bind(&o.task_id)
                    .bind(&r.host)
                    .execute(&mut *tx)
                    .await?;
                }
                ReportEffect::Event { .. } | ReportEffect::None => {}
            }
        }
        tx.commit().await?;
        Ok(inserted)
    }

    async fn list_event_reports(&self, host: &str, limit: i64) -> Result<Vec<EventReport>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, created_at, received_at, payload FROM reports WHERE host = ? AND kind = 'event'
             ORDER BY seq DESC LIMIT ?",
        )
        .bind(host)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EventReport {
                    seq: r.try_get("seq")?,
                    created_at: r.try_get("created_at")?,
                    received_at: r.try_get("received_at")?,
                    payload: r.try_get::<Option<Vec<u8>>, _>("payload")?.unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn record_unsequenced_heartbeat(&self, host: &str, now: i64, hb: &HeartbeatStatus) -> Result<(), StoreError> {
        let mut tx = write_tx(&self.pool).await?;
        touch(&mut tx, host, now).await?;
        set_heartbeat_status(&mut tx, host, hb).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn touch_host(&self, host: &str, now: i64) -> Result<(), StoreError> {
        touch(&mut *self.pool.acquire().await?, host, now).await
    }

    async fn insert_task(&self, t: &TaskRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tasks (id, host, kind, args, created_by, created_at, deadline, state)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&t.id)
        .bind(&t.host)
        .bind(&t.kind)
        .bind(t.args.to_string())
        .bind(&t.created_by)
        .bind(t.created_at)
        .bind(t.deadline)
        .bind(&t.state)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_task(&self, id: &str) -> Result<Option<TaskRecord>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn open_tasks(&self, host: &str, now: i64) -> Result<Vec<TaskRecord>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {TASK_COLUMNS} FROM tasks WHERE host = ? AND state IN ('pending', 'delivered') AND deadline > ?
             ORDER BY created_at, id"
        )))
        .bind(host)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(task_from_row).collect()
    }

    async fn mark_task_delivered(&self, id: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE tasks SET state = 'delivered', delivered_at = ? WHERE id = ? AND state = 'pending'")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn expire_tasks(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(
            "UPDATE tasks SET state = 'expired', error = 'deadline passed before the agent reported a result'
             WHERE state IN ('pending', 'delivered') AND deadline <= ? RETURNING id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids)
    }

    async fn append_audit(
        &self,
        at: i64,
        actor: &str,
        action: &str,
        target: Option<&str>,
        detail: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)")
            .bind(at)
            .bind(actor)
            .bind(action)
            .bind(target)
            .bind(detail.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn list_audit(&self, limit: i64) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query("SELECT id, at, actor, action, target, detail FROM audit ORDER BY id DESC LIMIT ?")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    action: r.try_get("action")?,
                    target: r.try_get("target")?,
                    detail: json_col(r, "detail")?.unwrap_or(serde_json::Value::Null),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heartbeat(host: &str, seq: i64) -> NewReport {
        NewReport {
            host: host.into(),
            seq,
            kind: "heartbeat",
            created_at: seq,
            received_at: 1000 + seq,
            payload: vec![],
            effect: ReportEffect::Heartbeat(HeartbeatStatus::default()),
        }
    }

    #[tokio::test]
    async fn replayed_reports_are_stored_once() {
        let s = SqliteStore::in_memory().await.expect("store");
        s.upsert_inventory_hosts(&[HostSeed { name: "h".into(), site: "dc".into(), kind: "vm".into() }])
            .await
            .expect("seed");
        for seq in [1, 2, 2, 3, 1, 3] {
            s.store_report(&heartbeat("h", seq)).await.expect("store");
        }
        let h = s.get_host("h").await.expect("get").expect("host");
        assert_eq!((h.reports_stored, h.last_seq), (3, 3));
    }

    #[tokio::test]
    async fn a_later_snapshot_replaces_the_facts_even_when_its_clock_was_set_back() {
        let s = SqliteStore::in_memory().await.expect("store");
        s.upsert_inventory_hosts(&[HostSeed { name: "h".into(), site: "dc".into(), kind: "vm".into() }])
            .await
            .expect("seed");
        let facts = |seq: i64, created_at: i64, name: &str| NewReport {
            host: "h".into(),
            seq,
            kind: "facts",
            created_at,
            received_at: 5000,
            payload: vec![],
            effect: ReportEffect::Facts { json: serde_json::json!({"hostname": name}), agent_version: "1".into() },
        };
        s.store_report(&facts(1, 4000, "before")).await.expect("store");
        // Five minutes behind: stamped earlier, yet the newer report.
        s.store_report(&facts(2, 3700, "after")).await.expect("store");
        let h = s.get_host("h").await.expect("get").expect("host");
        assert_eq!(h.facts.as_ref().map(|f| f["hostname"].clone()), Some(serde_json::json!("after")));
        assert_eq!(h.facts_at, Some(3700));
    }

    #[tokio::test]
    async fn a_renewal_racing_a_revocation_gets_no_certificate() {
        let s = SqliteStore::in_memory().await.expect("store");
        s.record_enrollment(&Enrollment { host: "h".into(), serial: "old".into(), issued_at: 0, not_after: 100 })
            .await
            .expect("enroll");
        assert!(s.has_live_cert("h", 50).await.expect("live"));
        assert!(!s.has_live_cert("h", 150).await.expect("expired"), "an expired certificate is not live");
        let renewed = CertRecord { serial: "new".into(), host: "h".into(), not_after: 200, revoked_at: None };
        s.revoke_host("h", 10).await.expect("revoke");
        assert!(!s.add_renewed_cert("old", &renewed, 11).await.expect("renew"));
        assert!(s.get_cert("new").await.expect("get").is_none());
        assert!(!s.has_live_cert("h", 50).await.expect("live"));
    }

    #[tokio::test]
    async fn a_token_is_used_once() {
        let s = SqliteStore::in_memory().await.expect("store");
        let t = TokenRecord {
            id: "t1".into(),
            secret_hash: "x".into(),
            kind: "bootstrap".into(),
            role: "agent".into(),
            user_name: None,
            host: None,
            created_at: 0,
            expires_at: None,
            used_at: None,
        };
        s.insert_token(&t).await.expect("insert");
        assert!(s.mark_token_used("t1", 5, "a").await.expect("use"));
        assert!(!s.mark_token_used("t1", 6, "b").await.expect("reuse"));
        assert_eq!(s.get_token("t1").await.expect("get").and_then(|t| t.used_at), Some(5));
    }

    #[tokio::test]
    async fn a_task_result_completes_only_a_task_of_its_own_host() {
        let s = SqliteStore::in_memory().await.expect("store");
        s.upsert_inventory_hosts(&[
            HostSeed { name: "a".into(), site: "dc".into(), kind: "vm".into() },
            HostSeed { name: "b".into(), site: "dc".into(), kind: "vm".into() },
        ])
        .await
        .expect("seed");
        let task = TaskRecord::pending("task-1", "a", "command", serde_json::json!({}), "op", 1, 100);
        s.insert_task(&task).await.expect("task");
        let outcome = TaskOutcome {
            task_id: "task-1".into(),
            state: "exited".into(),
            exit_code: Some(0),
            stdout: b"forged".to_vec(),
            stderr: vec![],
            stdout_truncated: false,
            stderr_truncated: false,
            error: None,
            started_at: Some(2),
            finished_at: Some(3),
        };
        let mut r = heartbeat("b", 1);
        r.kind = "task_result";
        r.effect = ReportEffect::TaskResult(outcome.clone());
        s.store_report(&r).await.expect("store");
        assert_eq!(s.get_task("task-1").await.expect("get").map(|t| t.state), Some("pending".into()));
        r.host = "a".into();
        s.store_report(&r).await.expect("store");
        assert_eq!(s.get_task("task-1").await.expect("get").map(|t| t.state), Some("exited".into()));
        assert!(s.open_tasks("a", 5).await.expect("open").is_empty());
    }
}
