//! The wire protocol between the Mangrove controller and its agents: the `.proto` files under
//! `proto/` and the prost/tonic code generated from them at build time (with protox, so no
//! system `protoc` is needed).
//!
//! It also holds the TLS configuration both ends use (`tls`), since the transport's security
//! is part of the protocol.
//!
//! This crate holds types and configuration only. It never decides anything: what a report means is the
//! controller's business, what a task does is the agent's.

/// `mangrove.agent.v1`: enrollment, the agent stream, certificate renewal.
pub mod agent {
    #[allow(clippy::all, clippy::pedantic)] // generated code
    pub mod v1 {
        tonic::include_proto!("mangrove.agent.v1");
    }
}

pub use agent::v1;

pub mod tls;
pub mod token;

/// The protocol major version this build speaks. A peer with another major is refused.
pub const PROTOCOL_MAJOR: u32 = 1;
/// Minor version: additions that older peers may ignore.
pub const PROTOCOL_MINOR: u32 = 0;

/// The security collectors an agent knows, by the names `FactsRequest.security_collectors`
/// carries and its facts' `security` object is keyed by. The policy packs may name only these.
pub const SECURITY_COLLECTORS: &[&str] = &[
    "sshd",
    "login_defs",
    "pam",
    "accounts",
    "firewall",
    "time_sync",
    "journald",
    "auditd",
    "log_forwarding",
    "updates",
    "listening",
    "antimalware",
];

/// Largest message either side accepts on the agent stream (fact snapshots are the largest).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// The name the controller's TLS certificates always carry and agents always verify, whatever
/// address they dial (the CA fingerprint, not the address, is what they trust).
pub const CONTROLLER_TLS_NAME: &str = "mangrove-controller";
