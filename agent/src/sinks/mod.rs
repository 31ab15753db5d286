//! Sinks: where evidence goes. Every sink is idempotent (content-addressed keys: storing a
//! record twice stores the same bytes under the same key) and confirms a batch only once it
//! is durable there; the spool keeps a record until every sink confirmed it.

pub mod file;
pub mod http;
pub mod s3;

use crate::config::SinkConfig;
use crate::store::Outgoing;
use evident_collectors::BoxFuture;

/// How a sink's error message starts when the sink refused the agent's credentials (HTTP 401
/// or 403): retried with backoff, logged and counted as such, never a rejection of records.
pub const AUTH_FAILED: &str = "authentication failed";

/// Why a sink did not confirm.
#[derive(Debug, thiserror::Error)]
#[error("{sink}: {message}")]
pub struct SinkError {
    /// The sink (`file:./evidence`).
    pub sink: String,
    /// What failed.
    pub message: String,
}

/// A destination of evidence.
pub trait Sink: Send + Sync {
    /// A short name for logs and metrics.
    fn describe(&self) -> String;
    /// Publishes public keys (`(keyid, PEM)`); an existing identical key is fine.
    fn put_keys<'a>(&'a self, keys: &'a [(String, String)])
    -> BoxFuture<'a, Result<(), SinkError>>;
    /// Stores a batch of records and their index lines. `Ok` confirms the whole batch: each
    /// record is durable there (`None`) or rejected for good with a reason (`Some`, e.g. an
    /// HTTP 400), and is quarantined by the caller. `Err` means retry later.
    fn put_records<'a>(
        &'a self,
        batch: &'a [Outgoing],
    ) -> BoxFuture<'a, Result<Vec<Option<String>>, SinkError>>;
    /// Publishes the latest checkpoint of an agent (never replacing a newer one).
    fn put_head<'a>(&'a self, head: &'a Outgoing) -> BoxFuture<'a, Result<(), SinkError>>;
}

/// Builds the configured sinks.
pub fn build(configs: &[SinkConfig]) -> Result<Vec<Box<dyn Sink>>, SinkError> {
    crate::redaction::register(configs);
    configs
        .iter()
        .map(|c| match c {
            SinkConfig::File(f) => {
                file::FileSink::open(&f.path).map(|s| Box::new(s) as Box<dyn Sink>)
            }
            SinkConfig::S3(c) => Ok(Box::new(s3::S3Sink::new(c.clone())) as Box<dyn Sink>),
            SinkConfig::Http(h) => {
                http::HttpSink::new(h.clone()).map(|s| Box::new(s) as Box<dyn Sink>)
            }
        })
        .collect()
}
