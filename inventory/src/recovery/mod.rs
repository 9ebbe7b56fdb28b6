//! Recovery plans: how the DR site takes over a set of information systems from the DC.
//!
//! A plan is a YAML file people write and keep in git (the controller keeps every applied
//! version). It names the systems it recovers, in priority groups (P1 first) with explicit
//! dependencies inside the plan; per workload, how it comes back at DR (`restore`: boot a
//! prepared image and restore the newest verified backup into it; `image`: boot the newest
//! converted image of the VM); which DC network maps to which DR network and to the isolated
//! network test drills use; the DNS records to switch; the probes that prove each system is
//! back; and prompts a person must confirm.
//!
//! [`parse_plan`] reads and checks a plan against the inventory and, where known, what the DR
//! site has ([`DrCatalog`]); every refusal names `file:line:column` and the field. Pure.

mod check;
mod model;

pub use check::{DrCatalog, parse_plan};
pub use model::{
    AgentTask, DnsRecord, DnsSettings, Expect, ImageRefresh, NetworkMap, PlanSystem, Probe, ProbeTarget, Prompt,
    PromptPoint, RecordType, RecoveryMethod, RecoveryPlan, WorkloadRecovery,
};

#[cfg(test)]
mod tests;
