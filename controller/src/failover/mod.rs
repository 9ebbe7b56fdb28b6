//! Failover and drills from the DC to the DR site.
//!
//! `plans`: recovery plans as people apply them (checked against the inventory and what the
//! DR site has, every version kept). `steps`: the steps of a run, built from its plan and mode.
//! `workflow`: the pure transition function. `runs`: starting, approving and driving runs,
//! durably. `exec`, `checks`, `agents`, `dns`, `probes`: what the steps do. `report`: the
//! drill record.

pub mod agents;
pub mod checks;
pub mod dns;
pub mod exec;
pub mod plans;
pub mod preflight;
pub mod probes;
pub mod report;
pub mod runs;
pub mod steps;
pub mod workflow;
