//! Capacity planning: history of what the sites hold, forecasts of when they fill, what-if
//! scenarios, and whether the DR site can run the province's systems if the DC is lost.

pub mod collect;
pub mod forecast;
pub mod headroom;
pub mod model;
pub mod picture;
pub mod prometheus;
pub mod query;
pub mod report;
pub mod synthetic;
pub mod whatif;
