//! The inventory: Mangrove's model of a province's data centers — sites, hosts, information
//! systems (with their security level 1–5 and RPO/RTO targets), workloads, video-conference
//! endpoints and endpoint-protection groups — and the loader of inventory YAML files, which
//! refuses anything doubtful with `file:line:column`, the field at fault and what is wrong.
//! Every other crate shares these types; this crate depends on none of them.
//!
//! It must never do IO beyond reading the one file it is asked to load: no network, no async
//! runtime, no environment, no clock, and no panic whatever the input (parsing is a pure
//! function of the text, see [`parse_str`]; it runs on one short-lived thread with a large
//! stack because the YAML tree is built and dropped recursively).
//!
//! The file format is shown by `examples/camau.yaml` (the Cà Mau inventory); each field is
//! documented on the model types below.
//!
//! ```
//! let text = "province: Cà Mau\nsites:\n  - { name: dc, platform: { kind: vsphere, name: vcenter-dc }, storage_tb: 135 }\n";
//! let inv = inventory::parse_str(text, "inline.yaml").expect("valid");
//! assert_eq!(inv.sites[0].name, "dc");
//! let err = inventory::parse_str("province: Cà Mau\nsites: []\nhostz: []\n", "bad.yaml").unwrap_err();
//! assert_eq!(err.to_string(), "bad.yaml:3:1: hostz: unknown field `hostz`; expected one of: \
//!     province, sites, hosts, systems, workloads, video_endpoints, endpoint_groups, backup_repositories");
//! ```

mod duration;
mod error;
mod model;
pub mod recovery;
mod validate;
mod yaml;

use std::path::Path;

pub use duration::{format_duration, parse_duration};
pub use error::{Diagnostic, InventoryError};
pub use model::{
    AgentMode, BackupRepository, EndpointGroup, Host, HostRole, Inventory, Machine, MachineKind, Platform,
    PlatformKind, Priority, Retention, SecurityLevel, Site, SnapshotPlanSpec, System, SystemBackup, TagMatch, VideoApi,
    VideoEndpoint, Workload, WorkloadSelector, glob_matches,
};
pub use validate::{is_dns_name, is_valid_name};

/// Most problems reported for one file; the rest are likely consequences of the first.
const MAX_DIAGNOSTICS: usize = 100;

/// Stack for the parsing thread. saphyr builds, clones (aliases) and drops its tree
/// recursively; alias chains can nest a few thousand levels within its node budget.
const PARSE_STACK_BYTES: usize = 64 << 20;

/// Reads and validates the inventory file at `path`.
///
/// # Errors
/// [`InventoryError::Io`] if the file cannot be read; [`InventoryError::Invalid`] (with the
/// path as origin) if it is not UTF-8 or not a valid inventory, see [`parse_str`].
pub fn load_file(path: &Path) -> Result<Inventory, InventoryError> {
    let origin = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| InventoryError::Io { path: path.to_path_buf(), source })?;
    match std::str::from_utf8(&bytes) {
        Ok(text) => parse_str(text, &origin),
        Err(e) => {
            let good = bytes.get(..e.valid_up_to()).unwrap_or_default();
            let good = String::from_utf8_lossy(good);
            let line = good.matches('\n').count() + 1;
            let column = good.rsplit('\n').next().unwrap_or("").chars().count() + 1;
            Err(invalid(
                &origin,
                vec![Diagnostic {
                    line,
                    column,
                    path: String::new(),
                    message: "the file is not valid UTF-8".to_owned(),
                }],
            ))
        }
    }
}

/// Parses and validates inventory YAML. `origin` names the text in messages (a file name).
///
/// Pure: no IO. Never panics. On success every name is unique in its namespace (hosts and
/// workloads share one), every reference resolves, levels and priorities are 1–5, durations
/// and addresses are well formed, and each workload belongs to at most one system.
///
/// # Errors
/// [`InventoryError::Invalid`] with the first problem's 1-based line and column, the field
/// at fault (`hosts[3].name`) and a message; further problems found in the same pass are in
/// its `more` field. YAML syntax errors, duplicate keys, unknown fields, wrong types and
/// missing fields are reported per list entry; the whole-inventory checks (names,
/// references) run once the file reads cleanly.
pub fn parse_str(text: &str, origin: &str) -> Result<Inventory, InventoryError> {
    parse_guarded(text, origin, parse_checked)
}

/// Where the nodes of a YAML document start, by field path (`systems[2].probes[0]`): lets
/// checks that run after typing (references, cycles) report `file:line:column`.
pub struct Positions(yaml::PosIndex);

impl Positions {
    /// The diagnostic for `path` at its position (or its nearest parent's, for a field left
    /// out of the file).
    pub fn diag(&self, path: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        self.0.diag(path, message)
    }
}

/// Reads any other YAML file Mangrove takes from people (recovery plans) with the same
/// guarantees as the inventory: `T`'s derived `Deserialize` does the typing, every error is
/// pinned to its node, and `check` (semantic checks, given the value and where each node
/// starts) adds its own diagnostics. Pure; never panics.
///
/// # Errors
/// [`InventoryError::Invalid`] naming `origin`, the first problem's line and column and the
/// field, with the rest in `more`.
pub fn parse_document<T>(
    text: &str,
    origin: &str,
    check: impl Fn(&T, &Positions, &mut Vec<Diagnostic>) + Sync,
) -> Result<T, InventoryError>
where
    T: for<'de> serde::Deserialize<'de> + Send,
{
    parse_guarded(text, origin, |text| {
        let root = yaml::load(text).map_err(|d| vec![d])?;
        let src = yaml::Source::new(text);
        let value = yaml::read::<T>(&root, "", &src).map_err(|d| vec![d])?;
        let positions = Positions(yaml::PosIndex::build(&root, &src));
        let mut diags = Vec::new();
        check(&value, &positions, &mut diags);
        if diags.is_empty() { Ok(value) } else { Err(diags) }
    })
}

/// The size and nesting limits, then `parse` on a big stack; diagnostics capped and named
/// after `origin`.
fn parse_guarded<T: Send>(
    text: &str,
    origin: &str,
    parse: impl Fn(&str) -> Result<T, Vec<Diagnostic>> + Sync,
) -> Result<T, InventoryError> {
    let result = if text.len() > yaml::MAX_INPUT_BYTES {
        Err(vec![Diagnostic {
            line: 1,
            column: 1,
            path: String::new(),
            message: format!(
                "the text is {} bytes; files of this kind are limited to {} bytes",
                text.len(),
                yaml::MAX_INPUT_BYTES
            ),
        }])
    } else if let Err(d) = yaml::prescan(text) {
        Err(vec![d])
    } else {
        on_big_stack(|| parse(text))
    };
    result.map_err(|mut diags| {
        diags.truncate(MAX_DIAGNOSTICS);
        invalid(origin, diags)
    })
}

/// Reads, types and checks the document. Recursion inside saphyr is bounded by
/// [`yaml::prescan`] and the caller's stack.
fn parse_checked(text: &str) -> Result<Inventory, Vec<Diagnostic>> {
    let root = yaml::load(text).map_err(|d| vec![d])?;
    let src = yaml::Source::new(text);
    let mut diags = Vec::new();
    let decoded = yaml::decode(&root, &src, &mut diags);
    let Some(inventory) = decoded.filter(|_| diags.is_empty()) else {
        return Err(diags);
    };
    let index = yaml::PosIndex::build(&root, &src);
    validate::validate(&inventory, &index, &mut diags);
    if diags.is_empty() { Ok(inventory) } else { Err(diags) }
}

/// Runs `f` on a thread with a [`PARSE_STACK_BYTES`] stack, or here if no thread can be
/// started. A panic in `f` (a bug in a dependency) becomes a diagnostic, not a crash.
fn on_big_stack<T: Send>(f: impl Fn() -> Result<T, Vec<Diagnostic>> + Sync) -> Result<T, Vec<Diagnostic>> {
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("inventory-parse".to_owned())
            .stack_size(PARSE_STACK_BYTES)
            .spawn_scoped(scope, &f);
        match spawned {
            Ok(handle) => handle.join().unwrap_or_else(|_| {
                Err(vec![Diagnostic {
                    line: 1,
                    column: 1,
                    path: String::new(),
                    message: "internal error: the YAML reader failed on this text".to_owned(),
                }])
            }),
            Err(_) => f(),
        }
    })
}

fn invalid(origin: &str, diags: Vec<Diagnostic>) -> InventoryError {
    InventoryError::from_diagnostics(origin, diags).unwrap_or_else(|| InventoryError::Invalid {
        origin: origin.to_owned(),
        line: 1,
        column: 1,
        path: String::new(),
        message: "invalid inventory".to_owned(),
        more: Vec::new(),
    })
}
