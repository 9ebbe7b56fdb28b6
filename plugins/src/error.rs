//! Errors every driver returns. Each names the endpoint (never the credentials) and the call,
//! so an operator reading one line knows what failed and where.

/// What went wrong talking to a platform.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    /// The configuration cannot work (bad URL, unreadable CA file, missing credentials).
    #[error("{0}")]
    Config(String),
    /// No connection: refused, DNS, TLS handshake (including an untrusted certificate).
    #[error("cannot reach {endpoint}: {detail}")]
    Unreachable { endpoint: String, detail: String },
    /// The platform took longer than the driver's timeout to answer.
    #[error("{endpoint} did not answer {call} within {secs} s")]
    Timeout { endpoint: String, call: String, secs: u64 },
    /// The platform refused the credentials.
    #[error("{endpoint} refused the credentials for user {user:?}: {detail}")]
    Auth { endpoint: String, user: String, detail: String },
    /// The answer could not be understood (bad XML or JSON, a missing field).
    #[error("{endpoint} sent a malformed answer to {call}: {detail}")]
    Malformed { endpoint: String, call: String, detail: String },
    /// The object asked for does not exist on the platform.
    #[error("{endpoint} has no {what} {id:?}")]
    NotFound { endpoint: String, what: String, id: String },
    /// The platform understood and refused (a SOAP fault, an HTTP 4xx/5xx with a message).
    #[error("{endpoint}: {call} failed: {message}")]
    Refused { endpoint: String, call: String, message: String },
    /// An operation did not finish in time; it may still finish on the platform.
    #[error("{endpoint}: {operation} still running after {secs} s")]
    OperationTimeout { endpoint: String, operation: String, secs: u64 },
    /// The driver does not offer this action on this platform.
    #[error("{what} is not supported by the {kind} driver")]
    Unsupported { kind: &'static str, what: String },
}

impl PlatformError {
    /// True when the platform could not be asked at all (down, slow, unreadable): the caller
    /// marks it down and keeps what it last knew.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            PlatformError::Unreachable { .. } | PlatformError::Timeout { .. } | PlatformError::Malformed { .. }
        )
    }
}
