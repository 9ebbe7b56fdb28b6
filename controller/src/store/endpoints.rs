//! The endpoint-protection half of the store: the last good fleet roll-up per source (KSC)
//! and the latest attempt's error.
//!
//! Invariants every backend keeps:
//! - a recorded error never changes the stored roll-up or its `as_of` (no wiped data);
//! - a good roll-up replaces the previous one and clears the error, in one statement.

use async_trait::async_trait;
use serde::Serialize;

use super::StoreError;

/// What the store holds for one source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EndpointState {
    pub source: String,
    pub rollup: Option<serde_json::Value>,
    /// Unix ms of the good read `rollup` holds.
    pub as_of: Option<i64>,
    pub last_attempt: i64,
    /// `{kind, message}` of the latest read, if it failed.
    pub last_error: Option<serde_json::Value>,
    pub error_at: Option<i64>,
}

#[async_trait]
pub trait EndpointStore: Send + Sync {
    /// Stores a good roll-up read at `at` (unix ms) and clears the error.
    async fn put_endpoint_rollup(&self, source: &str, at: i64, rollup: &serde_json::Value) -> Result<(), StoreError>;
    /// Records a failed read at `at`; the roll-up stays as it was.
    async fn put_endpoint_error(&self, source: &str, at: i64, error: &serde_json::Value) -> Result<(), StoreError>;
    async fn endpoint_state(&self, source: &str) -> Result<Option<EndpointState>, StoreError>;
}
