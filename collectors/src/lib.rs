//! Evident's collectors: the [`Collector`] trait and every built-in collector.
//!
//! A collector *observes*: it returns raw facts as JSON (an [`Observation`]) or a typed
//! [`CollectError`]. It never judges: checks (CEL expressions kept as data) evaluate the
//! observation afterwards, in the agent.
//!
//! One collector is one folder, `src/<domain>/<name>/`: its code (`mod.rs`), the parsers only
//! it uses, and its built-in checks (`checks.toml`). Its [`Registration`] carries everything
//! else the agent needs to know about it (summary, default controls, checks, whether it is on
//! by default, whether it observes the host). Adding a collector means that folder, a `mod`
//! line in its domain and one line in [`REGISTRY`]; the default config, the host-collector
//! list, the built-in checks and the mappings are all derived from [`REGISTRY`].

pub mod access;
pub mod ai;
pub mod base;
pub mod encryption;
pub mod exec;
pub mod governance;
pub mod hardening;
pub mod jobs;
pub mod logging;
pub mod monitoring;
pub mod parse;
pub mod read;
pub mod resilience;
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
    /// Qualified control IDs its evidence supports (`ISO27001:2022/A.8.5`), before any check's
    /// own controls are added. Users add more with `[[mappings]]`; an entry's own `controls`
    /// replaces them.
    pub controls: &'static [&'static str],
    /// Its built-in checks.
    pub checks: Checks,
    /// Whether the built-in default config runs it (it needs no settings).
    pub default: bool,
    /// Whether it observes the host through `host_root` (host collectors are run together by
    /// the tests and benches of a full host cycle).
    pub host: bool,
}

/// A collector's built-in checks: the `checks.toml` in its folder, compiled in.
#[derive(Debug, Clone, Copy)]
pub struct Checks {
    /// The file's path in the repository, named in diagnostics.
    pub file: &'static str,
    /// The file's text (`[[checks]]` entries).
    pub text: &'static str,
}

impl Checks {
    /// No built-in checks.
    pub const NONE: Checks = Checks { file: "", text: "" };
}

/// The built-in checks of the collector in `collectors/src/<folder>/` (its `checks.toml`,
/// compiled in): `builtin_checks!("access/ssh")`.
macro_rules! builtin_checks {
    ($folder:literal) => {
        $crate::Checks {
            file: concat!("collectors/src/", $folder, "/checks.toml"),
            // Resolved from the invoking `<domain>/<name>/mod.rs`.
            text: include_str!(concat!("../../", $folder, "/checks.toml")),
        }
    };
}
pub(crate) use builtin_checks;

/// Every built-in collector kind.
pub const REGISTRY: &[Registration] = &[
    system::inventory::REGISTRATION,
    system::packages::REGISTRATION,
    system::uptime::REGISTRATION,
    hardening::sysctl::REGISTRATION,
    hardening::setuid::REGISTRATION,
    hardening::pam::REGISTRATION,
    hardening::firewall::REGISTRATION,
    hardening::antimalware::REGISTRATION,
    resilience::backups::REGISTRATION,
    resilience::raid::REGISTRATION,
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
    ai::sagemaker::REGISTRATION,
    ai::model_cards::REGISTRATION,
    ai::inventory::REGISTRATION,
    monitoring::prometheus::REGISTRATION,
    governance::documents::REGISTRATION,
    governance::risks::REGISTRATION,
    governance::incidents::REGISTRATION,
    governance::suppliers::REGISTRATION,
    governance::people::REGISTRATION,
    exec::REGISTRATION,
];

/// The host collectors (everything observed through `host_root`), in registry order.
pub fn host_kinds() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().filter(|r| r.host).map(|r| r.kind)
}

/// The collectors the built-in default config runs, in registry order.
pub fn default_kinds() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().filter(|r| r.default).map(|r| r.kind)
}

/// Looks up a collector kind.
pub fn registration(kind: &str) -> Option<&'static Registration> {
    REGISTRY.iter().find(|r| r.kind == kind)
}

/// Deserializes a collector's options (helper for `Registration::build`).
pub fn options<'de, T: serde::Deserialize<'de>>(opts: Options<'de>) -> Result<T, toml::de::Error> {
    T::deserialize(toml::de::ValueDeserializer::from(opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_consistent() {
        // The manifest directory cargo runs the test with (a build cache reused by a
        // checkout at another path keeps the compile-time one).
        let root = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(
                || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
                std::path::PathBuf::from,
            )
            .join("..");
        let mut kinds = std::collections::BTreeSet::new();
        for reg in REGISTRY {
            assert!(kinds.insert(reg.kind), "{} registered twice", reg.kind);
            if !reg.checks.text.is_empty() {
                // The path named in diagnostics is the collector's own folder's file.
                let folder = reg.kind.replace('.', "/");
                assert_eq!(
                    reg.checks.file,
                    format!("collectors/src/{folder}/checks.toml"),
                    "{}",
                    reg.kind
                );
                assert!(root.join(reg.checks.file).is_file(), "{}", reg.checks.file);
            }
            assert!(
                reg.default <= !reg.multiple,
                "{}: a default cannot need an id",
                reg.kind
            );
        }
    }
}
