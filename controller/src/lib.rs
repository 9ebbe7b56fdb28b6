//! The Mangrove controller: it keeps the inventory and observed state in its store, enrolls
//! agents through its built-in CA, holds one mutual-TLS gRPC stream per agent (reports up,
//! acknowledgements and tasks down), serves the HTTPS JSON API with role-checked bearer
//! tokens and an audit trail, the web console (server-rendered, signed in with a password), and exports Prometheus metrics. The same crate holds the
//! `mangrove` CLI and drives the testbed.
//!
//! It never trusts a field an agent sends about who it is: the host is the one its client
//! certificate names. It acknowledges a report only after the store committed it.

pub mod ansible_run;
pub mod antivirus;
pub mod api;
pub mod api_ansible;
pub mod api_backups;
pub mod api_capacity;
pub mod api_compliance;
pub mod api_drills;
pub mod api_endpoints;
pub mod api_events;
pub mod api_images;
pub mod api_plans;
pub mod api_platforms;
pub mod api_policy;
pub mod api_systems;
pub mod api_users;
pub mod api_vc;
pub mod app;
pub mod backup;
pub mod capacity;
pub mod chaos_cmd;
pub mod cli;
pub mod cli_ansible;
pub mod cli_backups;
pub mod cli_capacity;
pub mod cli_drills;
pub mod cli_endpoints;
pub mod cli_images;
pub mod cli_plans;
pub mod cli_platforms;
pub mod cli_policy;
pub mod cli_users;
pub mod cli_vc;
pub mod client;
pub mod compliance_report;
pub mod config;
pub mod daemon;
pub mod delay_proxy;
pub mod endpoints;
pub mod failover;
pub mod grpc;
pub mod hosts;
pub mod images;
pub mod metrics;
pub mod pki;
pub mod platforms;
pub mod policy;
pub mod report_text;
pub mod reports;
pub mod sessions;
pub mod store;
pub mod tasks;
pub mod testbed_cmd;
pub mod testbed_ksc;
pub mod tlsnet;
pub mod users;
pub mod vc;
pub mod web;
