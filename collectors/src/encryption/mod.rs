//! Encryption at rest and in transit.

pub mod disks;
pub mod s3_buckets;
pub mod tls;
