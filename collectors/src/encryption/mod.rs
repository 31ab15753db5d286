//! Encryption at rest and in transit.

pub mod disks;
pub mod tls;
