//! Failover and drills from the DC to the DR site. `plans`: recovery plans as people apply
//! them (checked against the inventory and what the DR site has, every version kept).

pub mod plans;
pub mod steps;
pub mod workflow;
