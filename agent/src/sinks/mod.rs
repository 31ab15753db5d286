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
    /// What failed (with the words of the underlying error, where there is one: this is
    /// what logs, metrics and the spool show).
    pub message: String,
    /// The underlying error (an I/O, HTTP client or file-reading error), where there is one.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl SinkError {
    /// An error of `sink` with no underlying error.
    pub fn new(sink: String, message: String) -> SinkError {
        SinkError {
            sink,
            message,
            source: None,
        }
    }

    /// The same error, caused by `source`.
    pub fn because(mut self, source: impl std::error::Error + Send + Sync + 'static) -> SinkError {
        self.source = Some(Box::new(source));
        self
    }
}

/// A file the agent publishes beside its records: its public key (`keys/<keyid>.pub.pem`,
/// never replaced) or a key certificate (`keys/<keyid>.cert.dsse.json`, replaced when the
/// key is enrolled again, and a content-addressed copy that is never replaced).
#[derive(Debug, Clone)]
pub struct PublicFile {
    /// Store key.
    pub key: String,
    /// Content.
    pub bytes: Vec<u8>,
    /// Whether a different existing file may be replaced.
    pub replace: bool,
}

/// A destination of evidence.
pub trait Sink: Send + Sync {
    /// A short name for logs and metrics.
    fn describe(&self) -> String;
    /// Publishes public keys and key certificates under `keys/`; an existing identical
    /// file is fine, a different one is replaced only when the file says so.
    fn put_keys<'a>(&'a self, keys: &'a [PublicFile]) -> BoxFuture<'a, Result<(), SinkError>>;
    /// Stores a batch of records and their index lines. `Ok` confirms the whole batch: each
    /// record is durable there (`None`) or rejected for good with a reason (`Some`, e.g. an
    /// HTTP 400), and is quarantined by the caller. `Err` means retry later.
    fn put_records<'a>(
        &'a self,
        batch: &'a [Outgoing],
    ) -> BoxFuture<'a, Result<Vec<Option<String>>, SinkError>>;
    /// Publishes the latest checkpoint of an agent (never replacing a newer one).
    fn put_head<'a>(&'a self, head: &'a Outgoing) -> BoxFuture<'a, Result<(), SinkError>>;
    /// Stores an RFC 3161 timestamp reply under its store key (`timestamps/...`, see
    /// [`crate::evidence::timestamp`]). `Ok(None)` confirms, `Ok(Some(reason))` rejects it for
    /// good (the caller keeps it aside), `Err` means retry later.
    fn put_timestamp<'a>(
        &'a self,
        key: &'a str,
        bytes: &'a [u8],
    ) -> BoxFuture<'a, Result<Option<String>, SinkError>>;
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
