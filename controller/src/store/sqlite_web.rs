//! [`WebStore`] on SQLite.

use async_trait::async_trait;
use sqlx::Row;

use super::sqlite::write_tx;
use super::web::*;
use super::{SqliteStore, StoreError};

#[async_trait]
impl WebStore for SqliteStore {
    async fn add_password_user(
        &self,
        name: &str,
        role: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<PasswordAdded, StoreError> {
        let mut tx = write_tx(&self.pool).await?;
        let existing = sqlx::query("SELECT role, password_hash FROM users WHERE name = ?")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let outcome = match existing {
            None => {
                sqlx::query("INSERT INTO users (name, role, created_at, password_hash) VALUES (?, ?, ?, ?)")
                    .bind(name)
                    .bind(role)
                    .bind(now)
                    .bind(password_hash)
                    .execute(&mut *tx)
                    .await?;
                PasswordAdded::Created
            }
            Some(row) => {
                let r: String = row.try_get("role")?;
                let hash: Option<String> = row.try_get("password_hash")?;
                if r != role {
                    return Err(StoreError::RoleMismatch {
                        user: name.to_string(),
                        existing: r,
                        requested: role.to_string(),
                    });
                }
                if hash.is_some() {
                    return Ok(PasswordAdded::AlreadyHasPassword);
                }
                sqlx::query("UPDATE users SET password_hash = ? WHERE name = ?")
                    .bind(password_hash)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                PasswordAdded::PasswordSet
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn list_users(&self, now: i64) -> Result<Vec<UserRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.name, u.role, u.created_at, u.password_hash IS NOT NULL AS has_password,
                    CASE WHEN f.locked_until > ? THEN f.locked_until END AS locked_until
             FROM users u LEFT JOIN signin_failures f ON f.name = u.name ORDER BY u.name",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UserRecord {
                    name: r.try_get("name")?,
                    role: r.try_get("role")?,
                    created_at: r.try_get("created_at")?,
                    has_password: r.try_get::<i64, _>("has_password")? != 0,
                    locked_until: r.try_get("locked_until")?,
                })
            })
            .collect()
    }

    async fn user_password(&self, name: &str) -> Result<Option<(String, Option<String>)>, StoreError> {
        let row = sqlx::query("SELECT role, password_hash FROM users WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((r.try_get("role")?, r.try_get("password_hash")?))).transpose()
    }

    async fn signin_locked_until(&self, name: &str, now: i64) -> Result<Option<i64>, StoreError> {
        let until: Option<Option<i64>> =
            sqlx::query_scalar("SELECT locked_until FROM signin_failures WHERE name = ? AND locked_until > ?")
                .bind(name)
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
        Ok(until.flatten())
    }

    async fn record_signin_failure(&self, name: &str, now: i64, rule: LockoutRule) -> Result<Option<i64>, StoreError> {
        let mut tx = write_tx(&self.pool).await?;
        // Rows of names that are neither locked nor recently failed are forgotten, so names
        // typed once by a scanner do not pile up.
        sqlx::query(
            "DELETE FROM signin_failures WHERE last_failure <= ? AND (locked_until IS NULL OR locked_until <= ?)",
        )
        .bind(now - rule.lock_ms)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let prior: Option<i64> = sqlx::query_scalar(
            "SELECT failures FROM signin_failures WHERE name = ? AND (locked_until IS NULL OR locked_until <= ?)",
        )
        .bind(name)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let failures = prior.unwrap_or(0) + 1;
        let locked_until = (failures >= rule.max_failures).then_some(now + rule.lock_ms);
        // A lock starts the count afresh: after it ends, the name gets `max_failures` tries again.
        sqlx::query(
            "INSERT INTO signin_failures (name, failures, last_failure, locked_until) VALUES (?, ?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET failures = excluded.failures, last_failure = excluded.last_failure,
                 locked_until = COALESCE(excluded.locked_until,
                     CASE WHEN signin_failures.locked_until > excluded.last_failure THEN signin_failures.locked_until END)",
        )
        .bind(name)
        .bind(if locked_until.is_some() { 0 } else { failures })
        .bind(now)
        .bind(locked_until)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(locked_until)
    }

    async fn clear_signin_failures(&self, name: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM signin_failures WHERE name = ?").bind(name).execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_web_session(&self, s: &WebSession) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO web_sessions (id_hash, user_name, csrf, created_at, last_seen) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&s.id_hash)
        .bind(&s.user)
        .bind(&s.csrf)
        .bind(s.created_at)
        .bind(s.last_seen)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn touch_web_session(
        &self,
        id_hash: &str,
        idle_since: i64,
        now: i64,
    ) -> Result<Option<WebSession>, StoreError> {
        let mut tx = write_tx(&self.pool).await?;
        let row = sqlx::query(
            "SELECT s.id_hash, s.user_name, u.role, s.csrf, s.created_at, s.last_seen
             FROM web_sessions s JOIN users u ON u.name = s.user_name
             WHERE s.id_hash = ? AND s.last_seen > ?",
        )
        .bind(id_hash)
        .bind(idle_since)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(r) = row else { return Ok(None) };
        sqlx::query("UPDATE web_sessions SET last_seen = MAX(last_seen, ?) WHERE id_hash = ?")
            .bind(now)
            .bind(id_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(WebSession {
            id_hash: r.try_get("id_hash")?,
            user: r.try_get("user_name")?,
            role: r.try_get("role")?,
            csrf: r.try_get("csrf")?,
            created_at: r.try_get("created_at")?,
            last_seen: r.try_get("last_seen")?,
        }))
    }

    async fn delete_web_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM web_sessions WHERE id_hash = ?").bind(id_hash).execute(&self.pool).await?;
        Ok(())
    }

    async fn delete_idle_web_sessions(&self, idle_since: i64) -> Result<u64, StoreError> {
        let r =
            sqlx::query("DELETE FROM web_sessions WHERE last_seen <= ?").bind(idle_since).execute(&self.pool).await?;
        Ok(r.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    const RULE: LockoutRule = LockoutRule { max_failures: 3, lock_ms: 1000 };

    #[tokio::test]
    async fn failures_lock_a_name_then_it_gets_fresh_tries_and_stale_failures_are_forgotten() {
        let s = SqliteStore::in_memory().await.expect("store");
        assert_eq!(s.record_signin_failure("x", 0, RULE).await.expect("fail"), None);
        assert_eq!(s.record_signin_failure("x", 10, RULE).await.expect("fail"), None);
        assert_eq!(s.record_signin_failure("x", 20, RULE).await.expect("fail"), Some(1020));
        assert_eq!(s.signin_locked_until("x", 500).await.expect("read"), Some(1020));
        assert_eq!(s.signin_locked_until("x", 1020).await.expect("read"), None, "the lock ends");
        // After the lock, a full set of tries again.
        assert_eq!(s.record_signin_failure("x", 1100, RULE).await.expect("fail"), None);
        assert_eq!(s.record_signin_failure("x", 1110, RULE).await.expect("fail"), None);
        // Failures older than the lock time are forgotten: this is the first of a new run.
        assert_eq!(s.record_signin_failure("x", 5000, RULE).await.expect("fail"), None);
        assert_eq!(s.record_signin_failure("x", 5001, RULE).await.expect("fail"), None);
        // A good sign-in clears the count.
        s.clear_signin_failures("x").await.expect("clear");
        assert_eq!(s.record_signin_failure("x", 5002, RULE).await.expect("fail"), None);
        assert_eq!(s.record_signin_failure("x", 5003, RULE).await.expect("fail"), None);
        assert_eq!(s.record_signin_failure("x", 5004, RULE).await.expect("fail"), Some(6004));
    }

    #[tokio::test]
    async fn passwords_are_set_once_and_sessions_expire_when_idle() {
        let s = SqliteStore::in_memory().await.expect("store");
        s.ensure_user("op", "operator", 0).await.expect("token user");
        assert_eq!(s.add_password_user("op", "operator", "h1", 1).await.expect("add"), PasswordAdded::PasswordSet);
        assert_eq!(
            s.add_password_user("op", "operator", "h2", 2).await.expect("add"),
            PasswordAdded::AlreadyHasPassword
        );
        assert_eq!(s.user_password("op").await.expect("read"), Some(("operator".into(), Some("h1".into()))));
        assert!(matches!(s.add_password_user("op", "admin", "h3", 3).await, Err(StoreError::RoleMismatch { .. })));
        assert_eq!(s.add_password_user("new", "planner", "h4", 4).await.expect("add"), PasswordAdded::Created);

        let session = WebSession {
            id_hash: "abc".into(),
            user: "op".into(),
            role: String::new(),
            csrf: "t".into(),
            created_at: 100,
            last_seen: 100,
        };
        s.insert_web_session(&session).await.expect("insert");
        let got = s.touch_web_session("abc", 50, 150).await.expect("touch").expect("live");
        assert_eq!((got.user.as_str(), got.role.as_str(), got.csrf.as_str()), ("op", "operator", "t"));
        // Seen at 150: live for a caller whose idle limit reaches back to 149 (and now seen at 160),
        // over for one whose limit reaches back to 160.
        assert!(s.touch_web_session("abc", 149, 160).await.expect("touch").is_some());
        assert!(s.touch_web_session("abc", 160, 170).await.expect("touch").is_none());
        assert_eq!(s.delete_idle_web_sessions(160).await.expect("prune"), 1);
        assert!(s.touch_web_session("abc", 0, 180).await.expect("touch").is_none());
    }
}
