//! Capacity reports (being written).
