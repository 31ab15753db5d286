//! Evident: a continuous compliance-evidence agent.
//!
//! Collectors observe; checks (CEL, as data) evaluate; every observation becomes a signed,
//! hash-chained in-toto/DSSE record mapped to ISO/IEC 27001:2022 and 42001:2023 controls,
//! spooled durably and shipped to the store, where `evident verify` checks it offline.

pub mod checks;
pub mod cli;
pub mod compact;
pub mod compact_s3;
pub mod config;
pub mod controls;
pub mod daemon;
pub mod evidence;
/// Durable file writes (shared with the collectors).
pub use evident_collectors::base::durable;
pub mod health;
pub mod host;
pub mod idle;
pub mod metrics;
pub mod pipeline;
pub mod query;
pub mod redaction;
pub mod report;
pub mod schedule;
pub mod sinks;
pub mod spool;
pub mod store;
