//! Forecasts (being written).
