//! The web console's half of the store: people's password hashes, sign-in failures and browser
//! sessions.
//!
//! Invariants every backend keeps:
//! - a session is found only by the hash of its id, and only while it was seen within the idle
//!   timeout the caller passes (an idle session is as good as gone, deleted or not);
//! - failures are counted per name typed, whether or not the user exists, so a lock-out tells
//!   nobody which names are real;
//! - a password is set once through [`WebStore::add_password_user`]; an existing password is
//!   never overwritten there.

use async_trait::async_trait;
use serde::Serialize;

use super::StoreError;

/// A person as `users list` shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRecord {
    pub name: String,
    pub role: String,
    pub created_at: i64,
    pub has_password: bool,
    /// Sign-ins refused until then (unix ms), if locked now.
    pub locked_until: Option<i64>,
}

/// What [`WebStore::add_password_user`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordAdded {
    /// A new user with the role and password.
    Created,
    /// The user existed (made with an API token) with that role and no password; it has one now.
    PasswordSet,
    /// The user already has a password; nothing changed.
    AlreadyHasPassword,
}

/// A browser session, found by its id's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub id_hash: String,
    pub user: String,
    /// The user's role now (read with the session, so a changed role applies at once).
    pub role: String,
    pub csrf: String,
    pub created_at: i64,
    pub last_seen: i64,
}

/// The lock-out rule: `max_failures` consecutive failures lock the name for `lock_ms`; failures
/// older than `lock_ms` are forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutRule {
    pub max_failures: i64,
    pub lock_ms: i64,
}

#[async_trait]
pub trait WebStore {
    /// Creates `name` with `role` and `password_hash`, or gives an existing password-less user
    /// of that role the password. A different role is [`StoreError::RoleMismatch`].
    async fn add_password_user(
        &self,
        name: &str,
        role: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<PasswordAdded, StoreError>;
    /// Every user, by name, with their lock state at `now`.
    async fn list_users(&self, now: i64) -> Result<Vec<UserRecord>, StoreError>;
    /// A user's role and password hash (None when there is no such user).
    async fn user_password(&self, name: &str) -> Result<Option<(String, Option<String>)>, StoreError>;

    /// Until when `name` is locked, if it is at `now`.
    async fn signin_locked_until(&self, name: &str, now: i64) -> Result<Option<i64>, StoreError>;
    /// Counts a failed sign-in for `name`; returns the lock's end when this failure locks it.
    async fn record_signin_failure(&self, name: &str, now: i64, rule: LockoutRule) -> Result<Option<i64>, StoreError>;
    /// Forgets `name`'s failures (after a good sign-in).
    async fn clear_signin_failures(&self, name: &str) -> Result<(), StoreError>;

    async fn insert_web_session(&self, s: &WebSession) -> Result<(), StoreError>;
    /// The session with this id hash if it was seen after `idle_since`; marks it seen at `now`.
    async fn touch_web_session(
        &self,
        id_hash: &str,
        idle_since: i64,
        now: i64,
    ) -> Result<Option<WebSession>, StoreError>;
    async fn delete_web_session(&self, id_hash: &str) -> Result<(), StoreError>;
    /// Deletes sessions not seen since `idle_since`; returns how many.
    async fn delete_idle_web_sessions(&self, idle_since: i64) -> Result<u64, StoreError>;
}
