//! The `evident` command line (the binary's `main` calls [`main`]): the global options, the
//! subcommand list and what several subcommands share (loading the config, opening a store,
//! the runtime). Each subcommand is one file under `cli/`, with its arguments and its `run`.

use crate::config::{self, Config};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Continuous compliance evidence: signed, chained snapshots mapped to ISO/IEC 27001:2022
/// and ISO/IEC 42001:2023 controls.
#[derive(Parser)]
#[command(name = "evident", version, about)]
struct Cli {
    /// Config file (default: /etc/evident/evident.toml if present, else built-in defaults).
    #[arg(long, short, global = true, env = "EVIDENT_CONFIG")]
    config: Option<PathBuf>,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, global = true, default_value = "warn", env = "EVIDENT_LOG")]
    log_level: String,
    /// Log format: text, or json (one JSON object per line).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = LogFormat::Text,
        env = "EVIDENT_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// `--log-format`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the collectors on their schedules (daemon), or each once with --once.
    Run(run::Args),
    /// Print the record one collector would make (unsigned, with check results); store nothing.
    Collect(collect::Args),
    /// Verify a store offline: signatures, chains, checkpoints, index.
    Verify(verify::Args),
    /// Readiness per control from a verified store: JSON, HTML dashboard, Prometheus or OSCAL.
    Report(report::Args),
    /// Records for one control, from the store's index (fast; `verify` for proof).
    Query(query::Args),
    /// Rewrite closed days' small index files into one signed Parquet file per partition.
    Compact(compact::Args),
    /// Write a new signing key pair (PKCS#8 PEM private key, mode 0600, and its public key).
    Keygen(keygen::Args),
    /// List controls with the collectors and checks that evidence them.
    Controls(controls::Args),
    /// Configuration commands.
    Config(config_check::Args),
    /// Evidence chain commands.
    Chain(chain::Args),
    /// Org root key and key certificates (enrollment, offline; see docs/trust.md).
    Trust {
        #[command(subcommand)]
        command: trust::TrustCommand,
    },
    /// This agent's signing key: show it for enrollment, or rotate it.
    Key {
        #[command(subcommand)]
        command: trust::KeyCommand,
    },
}

fn parse_duration(s: &str) -> Result<std::time::Duration, crate::schedule::DurationError> {
    crate::schedule::parse_duration(s)
}

/// Runs the CLI. Exit codes: 0 sound, 1 findings or runtime failure, 2 usage or config error.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let default_level = match &cli.command {
        Command::Run(run) if !run.once && cli.log_level == "warn" => "info",
        _ => cli.log_level.as_str(),
    };
    init_logging(default_level, cli.log_format == LogFormat::Json);
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            let chain = evident_collectors::base::http::error_chain(e.as_ref());
            eprintln!("evident: {}", crate::redaction::line(&chain));
            ExitCode::from(1)
        }
    }
}

fn init_logging(level: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::redaction::Stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn load(path: Option<&Path>) -> Result<Config, ExitCode> {
    config::load(path).map_err(|d| {
        eprintln!("{d}");
        eprintln!("evident: {} configuration error(s)", d.0.len());
        ExitCode::from(2)
    })
}

/// Unwraps a result, or prints the error and exits 2 (a usage error).
macro_rules! usage {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => {
                eprintln!("evident: {e}");
                return Ok(std::process::ExitCode::from(2));
            }
        }
    };
}

macro_rules! config_or_exit {
    ($path:expr) => {
        match $crate::cli::load($path) {
            Ok(c) => c,
            Err(code) => return Ok(code),
        }
    };
}

// One module per subcommand (declared after the macros above, which they use).
mod chain;
mod collect;
mod compact;
mod config_check;
mod controls;
mod keygen;
mod query;
mod report;
mod run;
mod trust;
mod verify;

/// The async runtime: two worker threads at most. Shipping signs and sends many requests
/// at once (4x the S3 drain rate of a single thread here); an idle agent costs the same.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(2);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let config_path = cli.config.as_deref();
    match &cli.command {
        Command::Run(args) => run::run(args, config_path),
        Command::Collect(args) => collect::run(args, config_path),
        Command::Verify(args) => verify::run(args),
        Command::Report(args) => report::run(args, config_path),
        Command::Query(args) => query::run(args),
        Command::Compact(args) => compact::run(args, config_path),
        Command::Keygen(args) => keygen::run(args),
        Command::Controls(args) => controls::run(args, config_path),
        Command::Config(args) => config_check::run(args, config_path),
        Command::Chain(args) => chain::run(args, config_path),
        Command::Trust { command } => trust::trust(command),
        Command::Key { command } => {
            let config = config_or_exit!(config_path);
            trust::key(command, config)
        }
    }
}

/// A directory for a STORE argument: the directory itself, or a private temporary copy of
/// `s3://bucket/prefix` (only `sub`, e.g. `index`, when given), removed when dropped, with
/// what the bucket's version listing found (delete markers, overwritten objects).
fn open_store(
    store: &str,
    endpoint: &Option<String>,
    region: &Option<String>,
    sub: &str,
) -> Result<
    (
        Option<tempfile::TempDir>,
        PathBuf,
        crate::evidence::verify::Listing,
    ),
    String,
> {
    let Some(rest) = store.strip_prefix("s3://") else {
        return Ok((
            None,
            PathBuf::from(store),
            crate::evidence::verify::Listing::default(),
        ));
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let mirror = tempfile::Builder::new()
        .prefix("evident-store-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let cfg = crate::config::S3Sink {
        bucket: bucket.to_string(),
        prefix: crate::sinks::s3::join(prefix, sub),
        region: region.clone(),
        endpoint: endpoint.clone(),
        force_path_style: endpoint.is_some(),
        storage_class: None,
        sse: None,
        kms_key_id: None,
        object_lock: None,
        access_key_id: None,
        secret_access_key: None,
        concurrency: 32,
        connect_timeout: crate::config::default_s3_connect_timeout(),
        attempt_timeout: crate::config::default_s3_attempt_timeout(),
        operation_timeout: crate::config::default_s3_operation_timeout(),
    };
    let dest = if sub.is_empty() {
        mirror.path().to_path_buf()
    } else {
        mirror.path().join(sub)
    };
    let rt = runtime().map_err(|e| e.to_string())?;
    let found = rt
        .block_on(crate::sinks::s3::mirror(&cfg, &dest))
        .map_err(|e| e.to_string())?;
    let root = mirror.path().to_path_buf();
    let listing = crate::evidence::verify::Listing {
        problems: found.problems,
        notes: found.notes,
        stamps: Some(found.stamps),
    };
    Ok((Some(mirror), root, listing))
}

fn when(
    s: &Option<String>,
    end_of_day: bool,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, crate::report::WhenError> {
    s.as_deref()
        .map(|s| crate::report::parse_when(s, end_of_day))
        .transpose()
}

/// `--state DIR`: the ledger's directory (created, mode 0700), the store it belongs to (a
/// canonical path, or the S3 URL with its endpoint) and the digest of the trust policy file.
fn ledger_state(
    dir: Option<&Path>,
    store: &str,
    endpoint: &Option<String>,
    trust: Option<&Path>,
    rehash: bool,
) -> Result<Option<crate::evidence::verify::State>, String> {
    let Some(dir) = dir else { return Ok(None) };
    let id = if store.starts_with("s3://") {
        match endpoint {
            Some(e) => format!("{store} at {e}"),
            None => store.to_string(),
        }
    } else {
        std::fs::canonicalize(store)
            .map_err(|e| format!("{store}: {e}"))?
            .display()
            .to_string()
    };
    let trust = match trust {
        Some(p) => crate::evidence::keys::sha256_hex(
            &std::fs::read(p).map_err(|e| format!("{}: cannot read: {e}", p.display()))?,
        ),
        None => "none".to_string(),
    };
    crate::durable::create_dir_private(dir)
        .map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    Ok(Some(crate::evidence::verify::State {
        dir: dir.to_path_buf(),
        store: id,
        trust,
        rehash,
        stamps: None,
    }))
}

/// Loads the `--trust` policy, if one was given.
fn load_trust(
    path: Option<&Path>,
) -> Result<Option<std::sync::Arc<crate::evidence::trust::Policy>>, String> {
    path.map(|p| crate::evidence::trust::Policy::load(p).map(std::sync::Arc::new))
        .transpose()
        .map_err(|e| e.to_string())
}
