//! Configuration: TOML types, built-in defaults, and validation that reports every error as
//! `FILE:LINE: key: message`.
//!
//! The config structs are the documentation (`config/evident.toml` mirrors them). With no
//! config file the agent runs on the built-in defaults: the `system.inventory` collector,
//! a file store in `./evidence`, state in `./.evident`.

pub mod diagnostics;
pub mod timestamping;

use crate::checks::{CheckDef, CheckSet};
use crate::controls::{Catalog, MappingDef};
use crate::schedule::{Schedule, parse_duration};
pub use diagnostics::{Diagnostic, Diagnostics, Source};
use evident_collectors::Collector;
use serde::{Deserialize, Deserializer};
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

/// Where the config is looked for when `--config` is not given.
pub const SYSTEM_CONFIG: &str = "/etc/evident/evident.toml";

/// The whole, validated configuration.
pub struct Config {
    /// The file it was read from, if any.
    pub path: Option<PathBuf>,
    /// `[agent]`.
    pub agent: Agent,
    /// `[signing]`.
    pub signing: Signing,
    /// `[health]`.
    pub health: Health,
    /// `[timestamping]`: RFC 3161 anchoring of checkpoints, when configured.
    pub timestamping: Option<timestamping::Timestamping>,
    /// `[[collectors]]`, built and ready to run.
    pub collectors: Vec<CollectorEntry>,
    /// `[[sinks]]`.
    pub sinks: Vec<SinkConfig>,
    /// Control catalogs, mappings and crosswalk (built-in plus the user's).
    pub catalog: Catalog,
    /// Compiled checks (built-in, overridden and added by the user).
    pub checks: CheckSet,
    /// `[report]`: freshness expectations.
    pub report: ReportConfig,
    /// `[[waivers]]`: accepted risks.
    pub waivers: Vec<Waiver>,
}

/// `[report]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// Evidence older than this (per host and collector) is stale (1s to 3660d).
    #[serde(deserialize_with = "dur_in::<_, SEC, DECADE>")]
    pub default_cadence: Dur,
    /// Other cadences for some controls.
    pub cadence: Vec<Cadence>,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            default_cadence: Dur(Duration::from_secs(86400)),
            cadence: Vec::new(),
        }
    }
}

/// `[[report.cadence]]`: how fresh evidence for some controls must be.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cadence {
    /// Qualified control IDs.
    pub controls: Vec<String>,
    /// Expected cadence, e.g. `7d` (1s to 3660d).
    #[serde(deserialize_with = "dur_in::<_, SEC, DECADE>")]
    pub every: Dur,
}

impl ReportConfig {
    /// The expected cadence of a control.
    pub fn cadence_of(&self, control: &str) -> Duration {
        self.cadence
            .iter()
            .find(|c| c.controls.iter().any(|x| x == control))
            .map_or(self.default_cadence.0, |c| c.every.0)
    }
}

/// `[[waivers]]`: an accepted risk, with who approved it and until when.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Waiver {
    /// Reference, e.g. `W-2026-014`.
    pub id: String,
    /// The control it waives (or use `check`).
    #[serde(default)]
    pub control: Option<String>,
    /// The check it waives.
    #[serde(default)]
    pub check: Option<String>,
    /// Hosts it applies to (`*` suffix for a prefix); empty: all hosts.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Why the risk is accepted.
    pub justification: String,
    /// Who accepted it.
    pub approver: String,
    /// Last day it counts (YYYY-MM-DD, inclusive).
    #[serde(deserialize_with = "date")]
    pub expires: String,
}

impl Waiver {
    /// Whether it covers a host.
    pub fn covers_host(&self, host: &str) -> bool {
        self.hosts.is_empty()
            || self.hosts.iter().any(|h| match h.strip_suffix('*') {
                Some(prefix) => host.starts_with(prefix),
                None => h == host,
            })
    }

    /// Whether it is in force on `day` (YYYY-MM-DD).
    pub fn active_on(&self, day: &str) -> bool {
        day <= self.expires.as_str()
    }
}

fn date<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d")
        .map_err(|_| serde::de::Error::custom(format!("`{s}` is not a date like 2027-03-31")))?;
    Ok(s)
}

/// A duration written as `30s`, `15m`, `1h30m`, `500ms`, `2d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let d = parse_duration(&s).map_err(serde::de::Error::custom)?;
        if d > MAX_DURATION {
            return Err(serde::de::Error::custom(format!(
                "`{s}` is longer than the longest duration accepted (3660d)"
            )));
        }
        Ok(Dur(d))
    }
}

const SEC: u64 = 1000;
const HOUR: u64 = 3600 * SEC;
const DAY: u64 = 24 * HOUR;
const YEAR: u64 = 366 * DAY;
const DECADE: u64 = 3660 * DAY;
const GIB: u64 = 1 << 30;
const PIB: u64 = 1 << 50;

/// The longest duration any setting accepts: everything the daemon adds to a time stays far
/// inside the calendar chrono can represent.
pub const MAX_DURATION: Duration = Duration::from_millis(DECADE);

fn range_error<E: serde::de::Error>(min: &str, max: &str) -> E {
    E::custom(format!("must be between {min} and {max}"))
}

fn check_dur<E: serde::de::Error>(d: Dur, min_ms: u64, max_ms: u64) -> Result<Dur, E> {
    let (min, max) = (Duration::from_millis(min_ms), Duration::from_millis(max_ms));
    if d.0 < min || d.0 > max {
        return Err(range_error(
            &crate::schedule::format_duration(min),
            &crate::schedule::format_duration(max),
        ));
    }
    Ok(d)
}

/// A duration between `MIN` and `MAX` milliseconds.
fn dur_in<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    d: D,
) -> Result<Dur, D::Error> {
    check_dur(Dur::deserialize(d)?, MIN, MAX)
}

/// An optional duration between `MIN` and `MAX` milliseconds.
fn opt_dur_in<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    d: D,
) -> Result<Option<Dur>, D::Error> {
    check_dur(Dur::deserialize(d)?, MIN, MAX).map(Some)
}

fn u64_in<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    d: D,
) -> Result<u64, D::Error> {
    let n = u64::deserialize(d)?;
    if !(MIN..=MAX).contains(&n) {
        return Err(range_error(&MIN.to_string(), &MAX.to_string()));
    }
    Ok(n)
}

fn u32_in<'de, D: Deserializer<'de>, const MIN: u32, const MAX: u32>(
    d: D,
) -> Result<u32, D::Error> {
    let n = u32::deserialize(d)?;
    if !(MIN..=MAX).contains(&n) {
        return Err(range_error(&MIN.to_string(), &MAX.to_string()));
    }
    Ok(n)
}

fn usize_in<'de, D: Deserializer<'de>, const MIN: usize, const MAX: usize>(
    d: D,
) -> Result<usize, D::Error> {
    let n = usize::deserialize(d)?;
    if !(MIN..=MAX).contains(&n) {
        return Err(range_error(&MIN.to_string(), &MAX.to_string()));
    }
    Ok(n)
}

fn non_empty_path<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    let p = PathBuf::deserialize(d)?;
    if p.as_os_str().is_empty() {
        return Err(serde::de::Error::custom("must not be empty"));
    }
    Ok(p)
}

/// A host name as recorded: 1 to 253 characters of letters, digits, `.`, `-`, `_`.
fn host_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    // The charset `verify` accepts (crate::store::valid_hostname).
    if !crate::store::valid_hostname(&s) {
        return Err(serde::de::Error::custom(
            "must be 1 to 253 characters of letters, digits, `.`, `-`, `_`, not starting with `.` or `-`",
        ));
    }
    Ok(Some(s))
}

/// The largest config, catalog or check file read.
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

/// Reads a file the config names (the config itself, catalogs, check files): it must be a
/// regular file (a FIFO, device or directory is refused without blocking) of at most
/// [`MAX_CONFIG_BYTES`], in UTF-8.
pub fn read_config_file(path: &Path) -> Result<String, evident_collectors::CollectError> {
    evident_collectors::read::text(path, MAX_CONFIG_BYTES)
}

/// `[agent]`: where the agent keeps its state and what it observes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Agent {
    /// Chain head, spool, agent id and (by default) the signing key live here.
    #[serde(deserialize_with = "non_empty_path")]
    pub state_dir: PathBuf,
    /// Root of the observed host's filesystem (`/host` in a DaemonSet).
    #[serde(deserialize_with = "non_empty_path")]
    pub host_root: PathBuf,
    /// Host name recorded in evidence; default: the kernel's host name.
    #[serde(default, deserialize_with = "host_name")]
    pub hostname: Option<String>,
    /// Frameworks whose control IDs are recorded (others are dropped from records).
    pub frameworks: Vec<String>,
    /// Extra control catalogs (TOML files in the format of config/controls/*.toml).
    pub catalogs: Vec<PathBuf>,
    /// Extra check files (TOML files of `[[checks]]`, in the format of a collector's `checks.toml`).
    pub check_files: Vec<PathBuf>,
    /// The daemon writes a signed checkpoint at least this often (1s to 366d).
    #[serde(deserialize_with = "dur_in::<_, SEC, YEAR>")]
    pub checkpoint_interval: Dur,
    /// Size limit for any one file a collector reads (1 byte to 1 GiB).
    #[serde(deserialize_with = "u64_in::<_, 1, GIB>")]
    pub max_file_bytes: u64,
    /// On SIGTERM, running collections get this long to finish before they are recorded as
    /// interrupted (0s to 1h).
    #[serde(deserialize_with = "dur_in::<_, 0, HOUR>")]
    pub shutdown_grace: Dur,
    /// Spool size limit in bytes. When unshipped evidence reaches it, collection pauses (a
    /// signed gap record says so); nothing unshipped is ever deleted (1 KiB to 1 PiB).
    #[serde(deserialize_with = "u64_in::<_, 1024, PIB>")]
    pub spool_max_bytes: u64,
}

impl Default for Agent {
    fn default() -> Self {
        Agent {
            state_dir: PathBuf::from(".evident"),
            host_root: PathBuf::from("/"),
            hostname: None,
            frameworks: vec!["ISO27001:2022".into(), "ISO42001:2023".into()],
            catalogs: Vec::new(),
            check_files: Vec::new(),
            checkpoint_interval: Dur(Duration::from_secs(15 * 60)),
            max_file_bytes: 4 * 1024 * 1024,
            shutdown_grace: Dur(Duration::from_secs(10)),
            spool_max_bytes: 1024 * 1024 * 1024,
        }
    }
}

/// `[health]`: the daemon's /healthz, /readyz and /metrics endpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Health {
    /// Address to listen on; `""` disables the endpoints.
    #[serde(deserialize_with = "listen_addr")]
    pub listen: Option<std::net::SocketAddr>,
    /// `/readyz` fails when more records than this wait in the spool.
    pub max_backlog: usize,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9464))),
            max_backlog: 10_000,
        }
    }
}

fn listen_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<std::net::SocketAddr>, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "`{s}` is not an address like 127.0.0.1:9464 (\"\" disables)"
        ))
    })
}

/// Signature algorithm (defined with the keys).
pub use crate::evidence::keys::Algorithm;

/// `[signing]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Signing {
    /// PKCS#8 PEM private key; generated (mode 0600) on first use if missing, never while
    /// the agent has chain state (`evident key rotate` changes keys). A key file its group
    /// or other users can read is refused. Default: `<state_dir>/signing.pem`.
    pub key: Option<PathBuf>,
    /// Algorithm of a generated key (an existing key's own algorithm always wins).
    pub algorithm: Algorithm,
    /// Key certificate (`evident trust enroll`) for this agent's key, published to the store
    /// as `keys/<keyid>.cert.dsse.json`; it must certify this key, agent id and host name.
    /// Default: none (the auditor enrolls the key in the trust policy instead).
    pub certificate: Option<PathBuf>,
}

impl Config {
    /// The signing key path.
    pub fn key_path(&self) -> PathBuf {
        self.signing
            .key
            .clone()
            .unwrap_or_else(|| self.agent.state_dir.join("signing.pem"))
    }
}

/// Keys every `[[collectors]]` entry may have, besides the collector's own options.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CollectorCommon {
    /// The collector kind, e.g. `access.ssh` (see docs/collectors/).
    name: Spanned<String>,
    /// Instance id recorded in evidence (default: the kind); required for kinds that may
    /// appear several times, such as `exec`.
    id: Option<Spanned<String>>,
    /// `false` keeps the entry in the file without running it.
    #[serde(default = "yes")]
    enabled: bool,
    /// Crontab schedule (5 fields, or 6 with seconds; UTC), e.g. `*/15 * * * *`. Default,
    /// when neither this nor `interval` is given: every hour.
    schedule: Option<Spanned<String>>,
    /// Fixed interval instead of a schedule (1s to 366d), e.g. `15m`.
    #[serde(default, deserialize_with = "opt_dur_in::<_, SEC, YEAR>")]
    interval: Option<Dur>,
    /// Random delay added to each run, stable per agent and collector (default: none; at
    /// most 366d).
    #[serde(default, deserialize_with = "opt_dur_in::<_, 0, YEAR>")]
    jitter: Option<Dur>,
    /// Time limit of one collection (default: `60s`; 1s to 1d); an overrun is recorded as an
    /// error.
    #[serde(default, deserialize_with = "opt_dur_in::<_, SEC, DAY>")]
    timeout: Option<Dur>,
    /// Control IDs this entry evidences, replacing the collector's default controls.
    /// Required for `exec`.
    controls: Option<Vec<Spanned<String>>>,
}

const COMMON_KEYS: &[&str] = &[
    "name", "id", "enabled", "schedule", "interval", "jitter", "timeout", "controls",
];

fn yes() -> bool {
    true
}

/// One configured collector, built.
pub struct CollectorEntry {
    /// Instance id recorded in evidence (`id`, or the kind).
    pub id: String,
    /// Collector kind (`name` in config).
    pub kind: String,
    /// When it runs in the daemon (default: every hour).
    pub schedule: Schedule,
    /// Random delay added to each run, persisted per collector.
    pub jitter: Duration,
    /// Time limit of one collection.
    pub timeout: Duration,
    /// Controls from the entry itself (replacing the mapping), if given.
    pub controls: Option<Vec<String>>,
    /// The collector.
    pub collector: std::sync::Arc<dyn Collector>,
}

/// A configured destination of evidence.
#[derive(Debug, Clone)]
pub enum SinkConfig {
    /// A directory in the store layout.
    File(FileSink),
    /// An S3 bucket (or S3-compatible store) in the store layout.
    S3(S3Sink),
    /// An HTTP endpoint that receives each envelope by POST.
    Http(HttpSink),
}

/// `type = "s3"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Sink {
    /// Bucket name.
    #[serde(deserialize_with = "non_empty")]
    pub bucket: String,
    /// Key prefix inside the bucket (e.g. `prod`).
    #[serde(default)]
    pub prefix: String,
    /// Region (default: from the AWS chain, else us-east-1).
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint URL of an S3-compatible store (e.g. `http://127.0.0.1:9000`).
    #[serde(default, deserialize_with = "http_url")]
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), as most S3-compatible stores need.
    #[serde(default)]
    pub force_path_style: bool,
    /// Storage class, e.g. `STANDARD_IA`.
    #[serde(default)]
    pub storage_class: Option<String>,
    /// Server-side encryption: `AES256` or `aws:kms`.
    #[serde(default, deserialize_with = "sse")]
    pub sse: Option<String>,
    /// KMS key for `sse = "aws:kms"`.
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// Object Lock for every record: `{ mode = "COMPLIANCE", retain_days = 400 }`.
    #[serde(default)]
    pub object_lock: Option<ObjectLock>,
    /// Static credentials (discouraged: prefer the standard AWS credential chain).
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Static secret (never recorded in evidence).
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// Uploads in flight at once (1 to 1024).
    #[serde(
        default = "default_concurrency",
        deserialize_with = "usize_in::<_, 1, 1024>"
    )]
    pub concurrency: usize,
    /// Time limit to open a connection (100ms to 5m).
    #[serde(
        default = "default_s3_connect_timeout",
        deserialize_with = "dur_in::<_, 100, { 300 * SEC }>"
    )]
    pub connect_timeout: Dur,
    /// Time limit of one attempt of one call, until the whole response is read (1s to 1h).
    #[serde(
        default = "default_s3_attempt_timeout",
        deserialize_with = "dur_in::<_, SEC, HOUR>"
    )]
    pub attempt_timeout: Dur,
    /// Time limit of one call with all its retries (1s to 1h).
    #[serde(
        default = "default_s3_operation_timeout",
        deserialize_with = "dur_in::<_, SEC, HOUR>"
    )]
    pub operation_timeout: Dur,
}

/// The default `connect_timeout` of the S3 sink.
pub fn default_s3_connect_timeout() -> Dur {
    Dur(Duration::from_secs(5))
}

/// The default `attempt_timeout` of the S3 sink.
pub fn default_s3_attempt_timeout() -> Dur {
    Dur(Duration::from_secs(30))
}

/// The default `operation_timeout` of the S3 sink.
pub fn default_s3_operation_timeout() -> Dur {
    Dur(Duration::from_secs(90))
}

/// Object Lock settings of the S3 sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectLock {
    /// `COMPLIANCE` (nobody can shorten it) or `GOVERNANCE`.
    pub mode: LockMode,
    /// Retention from upload, in days (1 to 36500).
    #[serde(deserialize_with = "u32_in::<_, 1, 36500>")]
    pub retain_days: u32,
}

/// Object Lock mode.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum LockMode {
    /// Compliance mode.
    Compliance,
    /// Governance mode.
    Governance,
}

/// `type = "http"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSink {
    /// Where each envelope is POSTed.
    #[serde(deserialize_with = "http_url_required")]
    pub url: String,
    /// File holding a bearer token (never recorded).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Environment variable holding a bearer token (never recorded).
    #[serde(default)]
    pub token_env: Option<String>,
    /// PEM CA bundle to trust in addition to the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) for mutual TLS.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of the client certificate.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// Time limit of one request (1s to 1h).
    #[serde(
        default = "default_http_timeout",
        deserialize_with = "dur_in::<_, SEC, HOUR>"
    )]
    pub timeout: Dur,
    /// Requests in flight at once (1 to 1024).
    #[serde(
        default = "default_concurrency",
        deserialize_with = "usize_in::<_, 1, 1024>"
    )]
    pub concurrency: usize,
}

fn default_concurrency() -> usize {
    16
}

fn default_http_timeout() -> Dur {
    Dur(Duration::from_secs(10))
}

fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() {
        return Err(serde::de::Error::custom("must not be empty"));
    }
    Ok(s)
}

/// Why a configured endpoint is not a usable URL.
#[derive(Debug, thiserror::Error)]
enum UrlError {
    /// It does not parse as a URL.
    #[error("`{url}` is not a URL: {source}")]
    Unparsable {
        /// As configured.
        url: String,
        /// What the URL parser said.
        #[source]
        source: <reqwest::Url as std::str::FromStr>::Err,
    },
    /// It parses, but is not http(s) or has no host.
    #[error("`{0}` must be an http:// or https:// URL with a host")]
    NotHttp(String),
}

fn check_url(s: &str) -> Result<(), UrlError> {
    let url = reqwest::Url::parse(s).map_err(|source| UrlError::Unparsable {
        url: s.to_string(),
        source,
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(UrlError::NotHttp(s.to_string()));
    }
    Ok(())
}

fn http_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    check_url(&s).map_err(serde::de::Error::custom)?;
    Ok(Some(s))
}

fn http_url_required<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    check_url(&s).map_err(serde::de::Error::custom)?;
    Ok(s)
}

fn sse<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    match s.as_str() {
        "AES256" | "aws:kms" => Ok(Some(s)),
        _ => Err(serde::de::Error::custom(format!(
            "`{s}` is not AES256 or aws:kms"
        ))),
    }
}

/// `type = "file"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSink {
    /// The store directory.
    #[serde(deserialize_with = "non_empty_path")]
    pub path: PathBuf,
}

impl SinkConfig {
    /// A short name for logs (`file:./evidence`).
    pub fn describe(&self) -> String {
        match self {
            SinkConfig::File(f) => format!("file:{}", f.path.display()),
            SinkConfig::S3(c) => format!("s3://{}/{}", c.bucket, c.prefix.trim_matches('/')),
            SinkConfig::Http(h) => h.url.clone(),
        }
    }
}

/// Built-in defaults: every registered collector that needs no settings
/// (`Registration::default`), and a file store.
static DEFAULT_CONFIG: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let mut s = String::new();
    for kind in evident_collectors::default_kinds() {
        s.push_str(&format!(
            "
[[collectors]]
name = \"{kind}\"
"
        ));
    }
    s.push_str(
        "
[[sinks]]
type = \"file\"
path = \"./evidence\"
",
    );
    s
});

/// An entry for a registered collector kind with its default options (for `evident collect`
/// of a collector the config does not enable). None for kinds that need settings (exec).
pub fn default_entry(kind: &str) -> Option<CollectorEntry> {
    evident_collectors::registration(kind)?;
    let text = format!(
        "[[collectors]]\nname = \"{kind}\"\n\n[[sinks]]\ntype = \"file\"\npath = \"unused\"\n"
    );
    from_str("(defaults)", &text, None)
        .ok()?
        .collectors
        .into_iter()
        .next()
}

/// Loads the config: `path` if given, else [`SYSTEM_CONFIG`] if it exists, else defaults.
pub fn load(path: Option<&Path>) -> Result<Config, Diagnostics> {
    let path = match path {
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from(SYSTEM_CONFIG)).filter(|p| p.exists()),
    };
    match path {
        None => from_str("(built-in defaults)", &DEFAULT_CONFIG, None),
        Some(p) => {
            let name = p.display().to_string();
            let text = read_config_file(&p).map_err(|e| {
                Diagnostics(vec![Diagnostic {
                    file: name.clone(),
                    line: 0,
                    key: String::new(),
                    message: format!("cannot read config: {e}"),
                }])
            })?;
            from_str(&name, &text, Some(p))
        }
    }
}

/// Parses and validates a config text; `name` is used in messages.
pub fn from_str(name: &str, text: &str, path: Option<PathBuf>) -> Result<Config, Diagnostics> {
    let src = Source::new(name, text);
    let mut errs = Vec::new();
    let doc = match src.parse() {
        Ok(doc) => doc,
        Err(d) => return Err(Diagnostics(vec![d])),
    };
    let mut doc = doc.into_inner();

    let agent: Agent = section(&src, &mut errs, &mut doc, "agent").unwrap_or_default();
    let signing: Signing = section(&src, &mut errs, &mut doc, "signing").unwrap_or_default();
    let health: Health = section(&src, &mut errs, &mut doc, "health").unwrap_or_default();
    let timestamping: Option<timestamping::Timestamping> =
        section(&src, &mut errs, &mut doc, "timestamping");
    let report: ReportConfig = section(&src, &mut errs, &mut doc, "report").unwrap_or_default();
    let waivers: Vec<Spanned<Waiver>> =
        section(&src, &mut errs, &mut doc, "waivers").unwrap_or_default();
    let user_checks: Vec<Spanned<CheckDef>> =
        section(&src, &mut errs, &mut doc, "checks").unwrap_or_default();
    let user_mappings: Vec<Spanned<MappingDef>> =
        section(&src, &mut errs, &mut doc, "mappings").unwrap_or_default();
    let collectors_raw = diagnostics::take(&mut doc, "collectors").map(|(_, v)| v);
    let sinks_raw = diagnostics::take(&mut doc, "sinks").map(|(_, v)| v);
    for (key, _) in doc.iter() {
        errs.push(src.at(
            Some(key.span()),
            key.get_ref(),
            "unknown section (expected agent, signing, health, timestamping, collectors, sinks, checks, mappings, report, waivers)",
        ));
    }

    // Catalogs: built-in, then the user's files.
    let mut catalog = Catalog::builtin_checked(&mut errs);
    for file in &agent.catalogs {
        catalog.load_file(file, &mut errs);
    }
    for fw in &agent.frameworks {
        if !catalog.has_framework(fw) {
            let span = find_span(text, fw);
            errs.push(src.at(
                span,
                "agent.frameworks",
                format!(
                    "unknown framework `{fw}` (known: {})",
                    catalog.framework_ids().join(", ")
                ),
            ));
        }
    }
    catalog.set_enabled(&agent.frameworks);
    for m in &user_mappings {
        catalog.add_mapping(&src, m, &mut errs);
    }
    for w in &waivers {
        let v = w.get_ref();
        match (&v.control, &v.check) {
            (Some(c), None) if catalog.control(c).is_none() => errs.push(src.at(
                Some(w.span()),
                &format!("waivers.{}.control", v.id),
                format!("unknown control `{c}`"),
            )),
            (None, None) | (Some(_), Some(_)) => errs.push(src.at(
                Some(w.span()),
                &format!("waivers.{}", v.id),
                "name exactly one of `control` or `check`",
            )),
            _ => {}
        }
    }
    for c in &report.cadence {
        for id in &c.controls {
            if catalog.control(id).is_none() {
                errs.push(src.at(
                    find_span(text, id),
                    "report.cadence.controls",
                    format!("unknown control `{id}`"),
                ));
            }
        }
    }

    // Checks: built-in, the user's files, then the user's overrides.
    let mut checks = CheckSet::builtin(&catalog, &mut errs);
    for file in &agent.check_files {
        checks.load_file(file, &catalog, &mut errs);
    }
    for def in &user_checks {
        checks.apply(&src, def, &catalog, &mut errs);
    }

    let collectors = match collectors_raw {
        Some(v) => build_collectors(&src, &mut errs, v, &catalog),
        None => build_collectors(
            &Source::new("(built-in defaults)", &DEFAULT_CONFIG),
            &mut errs,
            default_section("collectors"),
            &catalog,
        ),
    };
    checks.check_collectors(collectors.iter().map(|c| c.id.as_str()), &mut errs);
    let sinks = match sinks_raw {
        Some(v) => build_sinks(&src, &mut errs, v),
        None => build_sinks(
            &Source::new("(built-in defaults)", &DEFAULT_CONFIG),
            &mut errs,
            default_section("sinks"),
        ),
    };

    if !errs.is_empty() {
        // The config file's own errors first, each file's in line order.
        errs.sort_by(|a, b| {
            (a.file != name, &a.file, a.line).cmp(&(b.file != name, &b.file, b.line))
        });
        return Err(Diagnostics(errs));
    }
    Ok(Config {
        path,
        agent,
        signing,
        health,
        timestamping,
        collectors,
        sinks,
        catalog,
        checks,
        report,
        waivers: waivers.into_iter().map(Spanned::into_inner).collect(),
    })
}

fn default_section(key: &str) -> Spanned<DeValue<'static>> {
    let doc = DeTable::parse(&DEFAULT_CONFIG)
        .map(|d| d.into_inner())
        .unwrap_or_default();
    let mut v = doc
        .get(key)
        .cloned()
        .unwrap_or_else(|| Spanned::new(0..0, DeValue::Array(Default::default())));
    v.get_mut().make_owned();
    v
}

/// The span of the first occurrence of a quoted string (for values inside arrays).
fn find_span(text: &str, value: &str) -> Option<std::ops::Range<usize>> {
    let quoted = format!("\"{value}\"");
    text.find(&quoted).map(|i| i..i + quoted.len())
}

/// Deserializes a top-level section, collecting its errors.
fn section<T: for<'de> Deserialize<'de>>(
    src: &Source<'_>,
    errs: &mut Vec<Diagnostic>,
    doc: &mut DeTable<'_>,
    key: &str,
) -> Option<T> {
    let (_, value) = diagnostics::take(doc, key)?;
    src.deserialize_all(errs, key, &value, |v| {
        T::deserialize(ValueDeserializer::from(v))
    })
}

fn entries<'i>(
    src: &Source<'_>,
    errs: &mut Vec<Diagnostic>,
    key: &str,
    value: Spanned<DeValue<'i>>,
) -> Vec<(String, std::ops::Range<usize>, DeTable<'i>)> {
    let span = value.span();
    match value.into_inner() {
        DeValue::Array(items) => items
            .into_iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let span = item.span();
                match item.into_inner() {
                    DeValue::Table(t) => Some((format!("{key}[{i}]"), span, t)),
                    _ => {
                        errs.push(src.at(Some(span), &format!("{key}[{i}]"), "must be a table"));
                        None
                    }
                }
            })
            .collect(),
        _ => {
            errs.push(src.at(
                Some(span),
                key,
                format!("must be an array of tables ([[{key}]])"),
            ));
            Vec::new()
        }
    }
}

fn build_collectors(
    src: &Source<'_>,
    errs: &mut Vec<Diagnostic>,
    value: Spanned<DeValue<'_>>,
    catalog: &Catalog,
) -> Vec<CollectorEntry> {
    let mut out: Vec<CollectorEntry> = Vec::new();
    for (path, span, mut table) in entries(src, errs, "collectors", value) {
        let mut common = DeTable::default();
        for key in COMMON_KEYS {
            if let Some(entry) = table
                .iter()
                .find(|(k, _)| k.get_ref() == key)
                .map(|(k, _)| k.clone())
                && let Some(v) = table.remove(&entry)
            {
                common.insert(entry, v);
            }
        }
        let common_value = Spanned::new(span.clone(), DeValue::Table(common));
        let Some(c) = src.deserialize_all(errs, &path, &common_value, |v| {
            CollectorCommon::deserialize(ValueDeserializer::from(v))
        }) else {
            continue;
        };
        let kind = c.name.get_ref().clone();
        let Some(reg) = evident_collectors::registration(&kind) else {
            let known: Vec<&str> = evident_collectors::REGISTRY
                .iter()
                .map(|r| r.kind)
                .collect();
            errs.push(src.at(
                Some(c.name.span()),
                &format!("{path}.name"),
                format!("unknown collector `{kind}` (known: {})", known.join(", ")),
            ));
            continue;
        };
        let options = Spanned::new(span.clone(), DeValue::Table(table));
        let before = errs.len();
        let collector = src.deserialize_all(errs, &path, &options, reg.build);
        for d in &mut errs[before..] {
            // Option errors list only the collector's own keys; add the common ones.
            if let Some(field) = d
                .message
                .strip_prefix("unknown field `")
                .and_then(|r| r.split('`').next())
            {
                let own: Vec<&str> = d
                    .message
                    .split("valid keys: ")
                    .nth(1)
                    .unwrap_or_default()
                    .split(", ")
                    .filter(|k| !k.is_empty())
                    .collect();
                let list: Vec<String> = own.iter().map(|k| format!("`{k}`")).collect();
                if let Some(m) = diagnostics::unknown_field_message(
                    &format!("unknown field `{field}`, expected {}", list.join(", ")),
                    COMMON_KEYS,
                ) {
                    d.message = m;
                }
            }
        }
        let id =
            c.id.as_ref()
                .map(|s| s.get_ref().clone())
                .unwrap_or_else(|| kind.clone());
        if id.is_empty()
            || !id
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch))
        {
            let at = c.id.as_ref().map(|s| s.span()).unwrap_or(span.clone());
            errs.push(src.at(
                Some(at),
                &format!("{path}.id"),
                "must be non-empty and use only letters, digits, `.`, `_`, `-`",
            ));
        }
        if out.iter().any(|e| e.id == id) {
            let at = c.id.as_ref().map(|s| s.span()).unwrap_or(c.name.span());
            let hint = if reg.multiple {
                "give each entry its own `id`"
            } else {
                "this collector can be configured once"
            };
            errs.push(src.at(
                Some(at),
                &format!("{path}.id"),
                format!("duplicate collector id `{id}`: {hint}"),
            ));
        }
        let schedule = match (&c.schedule, c.interval) {
            (Some(_), Some(_)) => {
                errs.push(src.at(
                    Some(span.clone()),
                    &path,
                    "set either `schedule` or `interval`, not both",
                ));
                None
            }
            (Some(s), None) => match Schedule::cron(s.get_ref()) {
                Ok(s) => Some(s),
                Err(e) => {
                    errs.push(src.at(Some(s.span()), &format!("{path}.schedule"), e.to_string()));
                    None
                }
            },
            (None, Some(Dur(d))) => Some(Schedule::Every(d)),
            (None, None) => Some(Schedule::Every(Duration::from_secs(3600))),
        };
        let controls = c.controls.as_ref().map(|list| {
            list.iter()
                .filter_map(|id| catalog.check_control(src, id, &format!("{path}.controls"), errs))
                .collect::<Vec<_>>()
        });
        if kind == "exec" && c.controls.as_ref().is_none_or(|l| l.is_empty()) {
            errs.push(src.at(
                Some(span.clone()),
                &format!("{path}.controls"),
                "an exec collector must declare the controls it evidences",
            ));
        }
        if !c.enabled {
            continue;
        }
        if let (Some(collector), Some(schedule)) = (collector, schedule) {
            out.push(CollectorEntry {
                id,
                kind,
                schedule,
                jitter: c.jitter.map_or(Duration::ZERO, |d| d.0),
                timeout: c.timeout.map_or(Duration::from_secs(60), |d| d.0),
                controls,
                collector: collector.into(),
            });
        }
    }
    out
}

fn build_sinks(
    src: &Source<'_>,
    errs: &mut Vec<Diagnostic>,
    value: Spanned<DeValue<'_>>,
) -> Vec<SinkConfig> {
    let mut out = Vec::new();
    for (path, span, mut table) in entries(src, errs, "sinks", value) {
        let Some((key_span, ty)) = diagnostics::take(&mut table, "type") else {
            errs.push(src.at(
                Some(span),
                &format!("{path}.type"),
                "missing (one of: file, s3, http)",
            ));
            continue;
        };
        let rest = Spanned::new(span.clone(), DeValue::Table(table));
        match ty.get_ref().as_str() {
            Some("file") => {
                if let Some(f) = src.deserialize_all(errs, &path, &rest, |v| {
                    FileSink::deserialize(ValueDeserializer::from(v))
                }) {
                    out.push(SinkConfig::File(f));
                }
            }
            Some("s3") => {
                if let Some(c) = src.deserialize_all(errs, &path, &rest, |v| {
                    S3Sink::deserialize(ValueDeserializer::from(v))
                }) {
                    if c.access_key_id.is_some() != c.secret_access_key.is_some() {
                        errs.push(src.at(
                            Some(span.clone()),
                            &format!("{path}.secret_access_key"),
                            "access_key_id and secret_access_key go together",
                        ));
                    } else if c.access_key_id.is_some() {
                        tracing::warn!(
                            "{}: {path} has static S3 credentials; prefer the standard AWS credential chain",
                            src.name
                        );
                    }
                    if c.sse.as_deref() == Some("aws:kms") && c.kms_key_id.is_none() {
                        tracing::info!(
                            "{}: {path}: sse = aws:kms without kms_key_id uses the bucket's default KMS key",
                            src.name
                        );
                    }
                    out.push(SinkConfig::S3(c));
                }
            }
            Some("http") => {
                if let Some(h) = src.deserialize_all(errs, &path, &rest, |v| {
                    HttpSink::deserialize(ValueDeserializer::from(v))
                }) {
                    if h.client_cert.is_some() != h.client_key.is_some() {
                        errs.push(src.at(
                            Some(span.clone()),
                            &format!("{path}.client_key"),
                            "client_cert and client_key go together",
                        ));
                    }
                    out.push(SinkConfig::Http(h));
                }
            }
            Some(other) => errs.push(src.at(
                Some(ty.span()),
                &format!("{path}.type"),
                format!("unknown sink type `{other}` (one of: file, s3, http)"),
            )),
            None => errs.push(src.at(Some(key_span), &format!("{path}.type"), "must be a string")),
        }
    }
    if out.is_empty() && errs.is_empty() {
        errs.push(src.at(None, "sinks", "at least one sink is needed"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match from_str("e.toml", text, None) {
            Ok(_) => Vec::new(),
            Err(d) => d.0.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn built_in_defaults_load() {
        let c = from_str("(built-in defaults)", &DEFAULT_CONFIG, None).expect("defaults");
        let defaults: Vec<&str> = evident_collectors::default_kinds().collect();
        assert!(defaults.len() >= 10, "{defaults:?}");
        let ids: Vec<&str> = c.collectors.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, defaults);
        assert_eq!(c.collectors[0].id, "system.inventory");
        assert!(matches!(&c.sinks[0], SinkConfig::File(f) if f.path == Path::new("./evidence")));
    }

    #[test]
    fn the_documented_default_config_enables_the_built_in_collectors() {
        let documented = from_str(
            "config/evident.toml",
            include_str!("../../../config/evident.toml"),
            None,
        )
        .expect("valid");
        let builtin = from_str("(built-in defaults)", &DEFAULT_CONFIG, None).expect("defaults");
        let ids = |c: &Config| {
            c.collectors
                .iter()
                .map(|e| e.id.clone())
                .collect::<std::collections::BTreeSet<_>>()
        };
        assert_eq!(ids(&documented), ids(&builtin));
    }

    #[test]
    fn the_documented_default_config_is_valid() {
        let text = include_str!("../../../config/evident.toml");
        if let Err(d) = from_str("config/evident.toml", text, None) {
            panic!("{d}");
        }
    }

    #[test]
    fn all_errors_are_reported_with_lines() {
        let e = errors(
            "[agent]\nstate_dirr = \"/x\"\n\n[[collectors]]\nname = \"system.inventory\"\nschedule = \"*/15 * *\"\n\n[[collectors]]\nname = \"nope\"\n\n[[sinks]]\ntype = \"file\"\npath = 3\n",
        );
        assert_eq!(e.len(), 4, "{e:#?}");
        assert!(
            e[0].starts_with("e.toml:2: agent.state_dirr: unknown field"),
            "{e:#?}"
        );
        assert!(
            e.iter().any(|l| l.starts_with(
                "e.toml:6: collectors[0].schedule: crontab expression needs 5 fields"
            )),
            "{e:#?}"
        );
        assert!(
            e.iter()
                .any(|l| l.starts_with("e.toml:9: collectors[1].name: unknown collector `nope`")),
            "{e:#?}"
        );
        assert!(
            e.iter()
                .any(|l| l.starts_with("e.toml:13: sinks[0].path: wrong type")),
            "{e:#?}"
        );
    }
}
