//! Mangrove's security-level policy packs.
//!
//! A pack (one per framework, e.g. `vn-nd85-tcvn11930`) is a directory of controls, each a
//! YAML metadata file, a Rego check and its Rego unit tests (see `README.md` for the format).
//! This crate loads packs ([`shipped`], [`load_dir`]), compiles and evaluates them with
//! regorus ([`Evaluator`]), checks them ([`lint`]) and runs their unit tests ([`run_tests`]).
//! The input document the Rego reads is built by [`input`] and described by
//! [`INPUT_SCHEMA_JSON`].

mod convert;
mod diag;
mod embedded;
mod engine;
mod input;
mod lint;
mod meta;
mod pack;
mod testing;

pub use diag::Diagnostic;
pub use engine::{EngineError, Evaluator, Finding, Status, applicable, params_at};
pub use input::{HostRef, INPUT_SCHEMA_JSON, INPUT_SCHEMA_VERSION, InputBuilder, SystemRef, effective_level, input};
pub use lint::lint;
pub use meta::{COLLECTORS, ControlMeta, Kind, PackMeta, Remediation, Severity, Task, package_for};
pub use pack::{Control, Pack, PackError, RegoFile, load_dir, shipped, shipped_pack};
pub use testing::{TestId, TestReport, run_tests, run_tests_dir};
