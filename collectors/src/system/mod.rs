//! Collectors that describe the host itself.

pub mod inventory;
pub mod packages;
pub mod uptime;
