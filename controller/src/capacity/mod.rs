//! Capacity planning: history of what the sites hold, forecasts of when they fill, what-if
//! scenarios, and whether the DR site can run the province's systems if the DC is lost.

pub mod forecast;
pub mod model;
pub mod report;
