//! The shapes capacity planning passes around: resources, history points, and the DR headroom
//! answer. The JSON names here are contracts (`capacity headroom --json`, `capacity forecast
//! --json`).

use serde::{Deserialize, Serialize};

/// What is counted. `cpu` is in vCPUs (allocated against physical cores times the site's
/// overcommit ratio), `memory` and `storage` in bytes, `vms` in VMs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    Cpu,
    Memory,
    Storage,
    Vms,
}

impl Resource {
    pub const ALL: [Resource; 4] = [Resource::Cpu, Resource::Memory, Resource::Storage, Resource::Vms];

    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu",
            Resource::Memory => "memory",
            Resource::Storage => "storage",
            Resource::Vms => "vms",
        }
    }

    pub fn parse(s: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// One value of a series at a time (unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub at: i64,
    pub value: f64,
}

/// An amount of the three resources a workload needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amounts {
    pub vcpus: u64,
    pub memory_bytes: u64,
    pub storage_bytes: u64,
}

impl Amounts {
    pub fn plus(self, o: Amounts) -> Amounts {
        Amounts {
            vcpus: self.vcpus.saturating_add(o.vcpus),
            memory_bytes: self.memory_bytes.saturating_add(o.memory_bytes),
            storage_bytes: self.storage_bytes.saturating_add(o.storage_bytes),
        }
    }

    /// What `self` needs beyond `have` (zero where it fits).
    pub fn beyond(self, have: Amounts) -> Amounts {
        Amounts {
            vcpus: self.vcpus.saturating_sub(have.vcpus),
            memory_bytes: self.memory_bytes.saturating_sub(have.memory_bytes),
            storage_bytes: self.storage_bytes.saturating_sub(have.storage_bytes),
        }
    }

    pub fn is_zero(self) -> bool {
        self == Amounts::default()
    }
}

/// One recovery-priority group in the DR headroom answer. Groups are taken in priority order
/// and their needs add up: group P3 fits when P1, P2 and P3 together fit in what DR has free.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadroomGroup {
    /// `P1` … `P5`.
    pub priority: String,
    pub systems: Vec<String>,
    pub fits: bool,
    /// What this group's systems need at DR (this group alone).
    pub need: Amounts,
    /// What is missing at DR to run this group after the groups before it (zero when it fits).
    pub shortfall: Amounts,
}

/// What the DR site has free for failover, after the buffer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrFree {
    pub site: String,
    /// Physical cores times the overcommit ratio, minus vCPUs already running there.
    pub free: Amounts,
    pub overcommit: f64,
    /// The share of each resource held back (0.1 = 10 %).
    pub buffer: f64,
}
