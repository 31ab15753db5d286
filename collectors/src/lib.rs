//! Evident's collectors: the [`Collector`] trait and every built-in collector.
//!
//! A collector *observes*: it returns raw facts as JSON (an [`Observation`]) or a typed
//! [`CollectError`]. It never judges: checks (CEL expressions kept as data) evaluate the
//! observation afterwards, in the agent. Adding a collector means one file, one line in
//! [`REGISTRY`], and a mapping entry in `config/controls/mappings.toml`.

pub mod access;
pub mod ai;
pub mod encryption;
pub mod exec;
pub mod logging;
pub mod parse;
pub mod read;
pub mod system;
mod util;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

/// What a collector returns: a JSON object of raw facts.
pub type Observation = serde_json::Value;

/// A boxed future, so that collectors stay object-safe (`Box<dyn Collector>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The spanned TOML value of a collector's own options (its `[[collectors]]` entry without
/// the common keys), so that option errors point at a file line.
pub type Options<'a> = toml::Spanned<toml::de::DeValue<'a>>;

/// One source of evidence.
pub trait Collector: Send + Sync {
    /// The collector kind, e.g. `system.inventory` or `exec`.
    fn kind(&self) -> &'static str;
    /// The version of the observation schema this collector produces.
    fn version(&self) -> &'static str {
        "1"
    }
    /// Observe. Must be bounded in time and size; never panic on bad input.
    fn collect<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, Result<Observation, CollectError>>;
}

/// What a collector may use while it observes.
#[derive(Debug, Clone)]
pub struct Context {
    /// Root of the host filesystem: `/` on a server, `/host` in a DaemonSet.
    pub host_root: PathBuf,
    /// Size limit for any one file a collector reads.
    pub max_file_bytes: u64,
    /// Time limit for one collection (enforced by the agent; collectors may use it for
    /// their own sub-timeouts).
    pub timeout: Duration,
    /// A directory where collectors may keep small state between runs (e.g. the previous
    /// snapshot a change history is computed against): `<state_dir>/collectors`.
    pub state_dir: PathBuf,
}

impl Default for Context {
    fn default() -> Self {
        Context {
            host_root: PathBuf::from("/"),
            max_file_bytes: 4 * 1024 * 1024,
            timeout: Duration::from_secs(30),
            state_dir: std::env::temp_dir().join("evident-collectors"),
        }
    }
}

impl Context {
    /// A path on the observed host (`/etc/passwd` becomes `<host_root>/etc/passwd`).
    pub fn host_path(&self, absolute: &str) -> PathBuf {
        self.host_root.join(absolute.trim_start_matches('/'))
    }
}

/// Why a collection failed. Recorded in the evidence as `{kind, message}`; never a panic.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// The OS error.
        message: String,
    },
    /// Input larger than the configured limit.
    #[error("{what} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// Input that is not what it should be (invalid UTF-8, broken JSON, ...).
    #[error("{0}")]
    Invalid(String),
    /// The collection ran out of time.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// A command failed (non-zero exit, killed, could not start).
    #[error("{0}")]
    Command(String),
    /// The source is not available on this host (not a failure of the host's controls).
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl CollectError {
    /// A short, stable name of the error kind, recorded in evidence.
    pub fn kind(&self) -> &'static str {
        match self {
            CollectError::Io { .. } => "io",
            CollectError::TooLarge { .. } => "too_large",
            CollectError::Invalid(_) => "invalid",
            CollectError::Timeout(_) => "timeout",
            CollectError::Command(_) => "command",
            CollectError::Unavailable(_) => "unavailable",
        }
    }
}

/// How a collector kind is built from its options.
pub struct Registration {
    /// The kind, as written in `[[collectors]] name = "..."`.
    pub kind: &'static str,
    /// One line: what it observes.
    pub summary: &'static str,
    /// Whether a config may hold several entries of this kind (distinguished by `id`).
    pub multiple: bool,
    /// Build an instance from its options; errors carry the span of the offending key.
    pub build: fn(Options<'_>) -> Result<Box<dyn Collector>, toml::de::Error>,
}

/// Every built-in collector kind.
pub const REGISTRY: &[Registration] = &[
    system::inventory::REGISTRATION,
    system::packages::REGISTRATION,
    access::accounts::REGISTRATION,
    access::sudoers::REGISTRATION,
    access::ssh::REGISTRATION,
    access::kubernetes::REGISTRATION,
    encryption::disks::REGISTRATION,
    encryption::tls::REGISTRATION,
    encryption::s3_buckets::REGISTRATION,
    logging::journald::REGISTRATION,
    logging::syslog::REGISTRATION,
    logging::auditd::REGISTRATION,
    logging::time_sync::REGISTRATION,
    ai::mlflow::REGISTRATION,
    ai::model_cards::REGISTRATION,
    ai::inventory::REGISTRATION,
    exec::REGISTRATION,
];

/// The host collectors (everything observed through `host_root`), for tests and benches.
pub const HOST_KINDS: &[&str] = &[
    "access.accounts",
    "access.sudoers",
    "access.ssh",
    "encryption.disks",
    "encryption.tls",
    "logging.journald",
    "logging.syslog",
    "logging.auditd",
    "logging.time_sync",
    "system.packages",
];

/// Looks up a collector kind.
pub fn registration(kind: &str) -> Option<&'static Registration> {
    REGISTRY.iter().find(|r| r.kind == kind)
}

/// Deserializes a collector's options (helper for `Registration::build`).
pub fn options<'de, T: serde::Deserialize<'de>>(opts: Options<'de>) -> Result<T, toml::de::Error> {
    T::deserialize(toml::de::ValueDeserializer::from(opts))
}
