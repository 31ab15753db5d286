//! The `evident` command line (the binary's `main` calls [`main`]).

use crate::config::{self, Algorithm, Config};
use crate::evidence::keys::{SigningKey, pem};
use crate::evidence::verify;
use crate::pipeline::{self, Agent};
use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod trust;

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

/// `report --format`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ReportFormat {
    /// The readiness report as JSON.
    Json,
    /// A self-contained HTML dashboard.
    Html,
    /// Prometheus text exposition (for a textfile collector).
    Prometheus,
    /// An OSCAL 1.1.2 assessment-results document.
    Oscal,
}

#[derive(Subcommand)]
enum Command {
    /// Run the collectors on their schedules (daemon), or each once with --once.
    Run {
        /// Run every collector once, write a checkpoint, ship, and exit.
        #[arg(long)]
        once: bool,
    },
    /// Print the record one collector would make (unsigned, with check results); store nothing.
    Collect {
        /// Collector id (as configured; e.g. system.inventory).
        name: String,
        /// Observe the host filesystem mounted at DIR (overrides agent.host_root).
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// Verify a store offline: signatures, chains, checkpoints, index.
    Verify {
        /// Store: a directory, or s3://bucket/prefix (credentials from the standard AWS chain).
        store: String,
        /// Endpoint URL of an S3-compatible store (implies path-style addressing).
        #[arg(long)]
        endpoint: Option<String>,
        /// Region of the bucket.
        #[arg(long)]
        region: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Fail when an agent's newest checkpoint is older than this (e.g. 1h, 2d).
        #[arg(long, value_parser = parse_duration)]
        max_age: Option<std::time::Duration>,
        /// Trust policy (TOML, see docs/trust.md): only enrolled agent keys are believed.
        #[arg(long)]
        trust: Option<PathBuf>,
        /// A record not anchored by an RFC 3161 timestamp within this lag of its collected_at
        /// is a problem (e.g. 1h; needs --trust with [[tsa]] certificates).
        #[arg(long, value_name = "MAXLAG", value_parser = parse_duration)]
        require_timestamps: Option<std::time::Duration>,
        /// The auditor's ledger (a directory): verify only what is new since the last SOUND
        /// run, prove the rest unchanged from the listing, then move the ledger forward.
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
        /// With --state: hash every object verified before again (a directory listing does
        /// not see a same-size edit whose ctime was set back).
        #[arg(long, requires = "state")]
        rehash: bool,
    },
    /// Readiness per control from a verified store: JSON, HTML dashboard, Prometheus or OSCAL.
    Report {
        /// Store: a directory or s3://bucket/prefix.
        #[arg(long)]
        store: String,
        /// Only this framework (e.g. ISO27001:2022).
        #[arg(long)]
        framework: Option<String>,
        /// Ignore evidence before this date or time.
        #[arg(long)]
        since: Option<String>,
        /// State at this date (end of day) or time; default now.
        #[arg(long)]
        at: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Json)]
        format: ReportFormat,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Endpoint URL of an S3-compatible store.
        #[arg(long)]
        endpoint: Option<String>,
        /// Region of the bucket.
        #[arg(long)]
        region: Option<String>,
        /// Trust policy (TOML, see docs/trust.md): records by keys it does not enroll never count.
        #[arg(long)]
        trust: Option<PathBuf>,
        /// The auditor's ledger (a directory, as for verify): the listing is also compared
        /// with it, and it moves forward when the store is SOUND.
        #[arg(long, value_name = "DIR")]
        state: Option<PathBuf>,
    },
    /// Records for one control, from the store's index (fast; `verify` for proof).
    Query {
        /// Store: a directory or s3://bucket/prefix.
        #[arg(long)]
        store: String,
        /// Qualified control ID, e.g. ISO27001:2022/A.8.24.
        #[arg(long)]
        control: String,
        /// Only this host.
        #[arg(long)]
        host: Option<String>,
        /// Not before this date or time.
        #[arg(long)]
        since: Option<String>,
        /// Newest record per host at or before this date (end of day) or time.
        #[arg(long)]
        at: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Endpoint URL of an S3-compatible store.
        #[arg(long)]
        endpoint: Option<String>,
        /// Region of the bucket.
        #[arg(long)]
        region: Option<String>,
    },
    /// Rewrite closed days' small index files into one signed Parquet file per partition.
    Compact {
        /// Store: a directory, or s3://bucket/prefix (credentials from the standard AWS chain).
        #[arg(long)]
        store: String,
        /// Only this day (YYYY-MM-DD, before today UTC); default every closed day.
        #[arg(long)]
        day: Option<String>,
        /// PKCS#8 PEM private key that signs the attestations (default: the agent's key).
        #[arg(long)]
        key: Option<PathBuf>,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
        /// Endpoint URL of an S3-compatible store (implies path-style addressing).
        #[arg(long)]
        endpoint: Option<String>,
        /// Region of the bucket.
        #[arg(long)]
        region: Option<String>,
    },
    /// Write a new signing key pair (PKCS#8 PEM private key, mode 0600, and its public key).
    Keygen {
        /// Directory to write signing.pem and signing.pub.pem into.
        #[arg(long)]
        out: PathBuf,
        /// ed25519 (default) or ecdsa-p256.
        #[arg(long, default_value = "ed25519")]
        algorithm: String,
    },
    /// List controls with the collectors and checks that evidence them.
    Controls {
        /// Only this framework (e.g. ISO42001:2023).
        #[arg(long)]
        framework: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Evidence chain commands.
    Chain {
        #[command(subcommand)]
        command: ChainCommand,
    },
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

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the config; print every error as FILE:LINE: key: message.
    Check {
        /// Also check that every sink is reachable (S3: bucket, credentials, Object Lock).
        #[arg(long)]
        online: bool,
    },
}

#[derive(Subcommand)]
enum ChainCommand {
    /// Start a new chain deliberately; the reset itself is a signed record.
    Reset {
        /// Why (recorded in the chain_start record).
        #[arg(long)]
        reason: String,
    },
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
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
        Command::Run { once: false } if cli.log_level == "warn" => "info",
        _ => cli.log_level.as_str(),
    };
    init_logging(default_level, cli.log_format == LogFormat::Json);
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("evident: {}", crate::redaction::line(&format!("{e:#}")));
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
                return Ok(ExitCode::from(2));
            }
        }
    };
}

macro_rules! config_or_exit {
    ($cli:expr) => {
        match load($cli.config.as_deref()) {
            Ok(c) => c,
            Err(code) => return Ok(code),
        }
    };
}

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
    match &cli.command {
        Command::Run { once } => {
            let config = config_or_exit!(cli);
            let key_path = config.key_path();
            let mut agent = Agent::open(config)?;
            if agent.key_created {
                eprintln!(
                    "evident: generated a new {} signing key at {} (keyid {})",
                    agent.key().algorithm(),
                    key_path.display(),
                    agent.key().keyid()
                );
            }
            if !*once {
                return runtime()?
                    .block_on(crate::daemon::run(agent, cli.config.clone()))
                    .map(|_| ExitCode::SUCCESS);
            }
            let report = runtime()?.block_on(agent.run_once())?;
            if report.paused {
                eprintln!(
                    "evident: the spool is full (limit agent.spool_max_bytes = {} bytes): collection is paused and a signed gap record says so; unshipped evidence is kept",
                    agent.config.agent.spool_max_bytes
                );
            }
            for (id, ms, err, pass, fail, errors) in &report.collectors {
                match err {
                    Some(e) => println!(
                        "{id}: collection failed after {ms} ms: {e} ({errors} check(s) recorded as error)"
                    ),
                    None => println!(
                        "{id}: collected in {ms} ms; checks: {pass} pass, {fail} fail, {errors} error"
                    ),
                }
            }
            let (first, last) = report.sequences.unwrap_or((0, 0));
            let sinks: Vec<String> = agent.config.sinks.iter().map(|s| s.describe()).collect();
            println!(
                "wrote {} signed record(s) (seq {first}..={last}, chain {}); shipped {} to {}; {} waiting in the spool",
                report.records,
                &agent.state().chain[..12],
                report.ship.shipped,
                crate::redaction::line(&sinks.join(", ")),
                report.ship.pending
            );
            for e in &report.ship.errors {
                eprintln!("evident: sink error: {}", crate::redaction::line(e));
            }
            let mut stamp_failed = false;
            if let Some(r) = &report.stamps {
                match &r.error {
                    None => println!(
                        "timestamped {} checkpoint(s); shipped {} timestamp token(s)",
                        r.stamped, report.ship.timestamps
                    ),
                    Some(e) => {
                        stamp_failed = true;
                        eprintln!(
                            "evident: timestamp authority: {e}; {} checkpoint(s) wait in the outbox and are requested again at the next run (the evidence itself is stored)",
                            r.pending
                        );
                    }
                }
            }
            Ok(
                if report.ship.errors.is_empty() && !report.paused && !stamp_failed {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                },
            )
        }
        Command::Collect { name, root } => {
            let mut config = config_or_exit!(cli);
            if let Some(root) = root {
                config.agent.host_root = root.clone();
            }
            let fallback;
            let entry = match config
                .collectors
                .iter()
                .find(|c| &c.id == name || &c.kind == name)
            {
                Some(e) => e,
                None => match crate::config::default_entry(name) {
                    // A registered collector the config does not enable: its default options.
                    Some(e) => {
                        fallback = e;
                        &fallback
                    }
                    None => {
                        let known: Vec<&str> = evident_collectors::REGISTRY
                            .iter()
                            .map(|r| r.kind)
                            .collect();
                        eprintln!(
                            "evident: no collector `{name}` in the config, and no built-in collector of that name with default settings (built-in: {})",
                            known.join(", ")
                        );
                        return Ok(ExitCode::from(2));
                    }
                },
            };
            let host =
                crate::host::identity(&config.agent.host_root, config.agent.hostname.as_deref());
            let p = runtime()?.block_on(pipeline::observe(&config, entry, &host, "(not recorded)"));
            println!("{}", serde_json::to_string_pretty(&p)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            store,
            endpoint,
            region,
            json,
            max_age,
            trust,
            require_timestamps,
            state,
            rehash,
        } => {
            let mut opts = verify::Options {
                max_age: *max_age,
                progress: true,
                trust: usage!(load_trust(trust.as_deref())),
                require_timestamps: *require_timestamps,
                ..Default::default()
            };
            if opts.require_timestamps.is_some()
                && opts.trust.as_ref().is_none_or(|p| p.tsa.is_empty())
            {
                eprintln!(
                    "evident: --require-timestamps needs --trust FILE with the certificates of the timestamp authorities ([[tsa]], see docs/trust.md)"
                );
                return Ok(ExitCode::from(2));
            }
            let started = std::time::Instant::now();
            // An S3 store is mirrored to a private temporary directory and verified exactly
            // as a directory copy would be, plus what its version listing shows.
            let (_mirror, dir, listing) = usage!(open_store(store, endpoint, region, ""));
            opts.state = usage!(ledger_state(
                state.as_deref(),
                store,
                endpoint,
                trust.as_deref(),
                *rehash
            ))
            .map(|s| verify::State {
                stamps: listing.stamps.clone(),
                ..s
            });
            opts.listing = listing;
            let report = usage!(verify::verify_dir(&dir, &opts));
            if *json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_verify(&report, Path::new(store), started.elapsed());
            }
            Ok(if report.sound() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Report {
            store,
            framework,
            since,
            at,
            format,
            out,
            endpoint,
            region,
            trust,
            state,
        } => {
            let config = config_or_exit!(cli);
            let ledger = usage!(ledger_state(
                state.as_deref(),
                store,
                endpoint,
                trust.as_deref(),
                false
            ));
            let trust = usage!(load_trust(trust.as_deref()));
            if let Some(f) = framework
                && !config.catalog.has_framework(f)
            {
                eprintln!(
                    "evident: unknown framework `{f}` (known: {})",
                    config.catalog.framework_ids().join(", ")
                );
                return Ok(ExitCode::from(2));
            }
            let (since, at) = (usage!(when(since, false)), usage!(when(at, true)));
            let (_mirror, dir, listing) = usage!(open_store(store, endpoint, region, ""));
            let ledger = ledger.map(|s| verify::State {
                stamps: listing.stamps.clone(),
                ..s
            });
            let verified = match verify::verify_full(
                &dir,
                &verify::Options {
                    progress: true,
                    trust,
                    listing,
                    state: ledger,
                    ..Default::default()
                },
            ) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("evident: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            let opts = crate::report::Options {
                at: at.unwrap_or_else(chrono::Utc::now),
                since,
                framework: framework.clone(),
                store: store.clone(),
            };
            let report = crate::report::build(&config, &verified, &opts);
            let text = match format {
                ReportFormat::Html => crate::report::html::render(&report),
                ReportFormat::Prometheus => crate::report::prometheus::render(&report),
                ReportFormat::Oscal => {
                    serde_json::to_string_pretty(&crate::report::oscal::render(&report))?
                }
                ReportFormat::Json => serde_json::to_string_pretty(&report)?,
            };
            match out {
                Some(path) => {
                    crate::durable::write(path, text.as_bytes(), 0o644)
                        .with_context(|| format!("{}: cannot write", path.display()))?;
                    let failing = report
                        .controls
                        .iter()
                        .filter(|c| c.status == crate::report::Readiness::Failing)
                        .count();
                    eprintln!(
                        "wrote {} ({} controls: {failing} failing; {} verified records, {} rejected)",
                        path.display(),
                        report.controls.len(),
                        report.records,
                        report.rejected.records
                    );
                }
                None => println!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Query {
            store,
            control,
            host,
            since,
            at,
            json,
            endpoint,
            region,
        } => {
            let (since, at) = (usage!(when(since, false)), usage!(when(at, true)));
            let (_mirror, dir, _) = usage!(open_store(store, endpoint, region, "index"));
            let q = crate::query::Query {
                control: control.clone(),
                host: host.clone(),
                since,
                at,
            };
            let started = std::time::Instant::now();
            let answer = usage!(crate::query::run(&dir, &q));
            if *json {
                println!("{}", serde_json::to_string_pretty(&answer.records)?);
            } else {
                for e in &answer.records {
                    let status = e
                        .status
                        .as_ref()
                        .map_or("-".to_string(), |s| format!("{s:?}").to_lowercase());
                    println!(
                        "{}  {:<24} {:<28} {:<6} {}",
                        e.collected_at,
                        e.host,
                        e.collector.as_deref().unwrap_or("-"),
                        status,
                        e.key
                    );
                }
                println!(
                    "{} record(s) for {control} from {} index file(s) in {:.3}s (index lookup; `evident verify` checks signatures)",
                    answer.records.len(),
                    answer.index_files,
                    started.elapsed().as_secs_f64()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Compact {
            store,
            day,
            key,
            json,
            endpoint,
            region,
        } => {
            let key_path = match key {
                Some(k) => k.clone(),
                None => config_or_exit!(cli).key_path(),
            };
            let signing = usage!(SigningKey::load(&key_path).map_err(|e| e.to_string()));
            Ok(usage!(crate::compact::run_cli(
                store,
                endpoint.clone(),
                region.clone(),
                day.clone(),
                &signing,
                *json
            )))
        }
        Command::Keygen { out, algorithm } => {
            let alg = match algorithm.as_str() {
                "ed25519" => Algorithm::Ed25519,
                "ecdsa-p256" => Algorithm::EcdsaP256,
                other => {
                    eprintln!("evident: unknown algorithm `{other}` (ed25519 or ecdsa-p256)");
                    return Ok(ExitCode::from(2));
                }
            };
            let private = out.join("signing.pem");
            let public = out.join("signing.pub.pem");
            for p in [&private, &public] {
                if p.exists() {
                    eprintln!("evident: {} exists; not overwriting a key", p.display());
                    return Ok(ExitCode::from(1));
                }
            }
            std::fs::create_dir_all(out)
                .with_context(|| format!("{}: cannot create directory", out.display()))?;
            let (key, der) = SigningKey::generate(alg)?;
            crate::durable::write_new(&private, pem("PRIVATE KEY", &der).as_bytes(), 0o600)
                .with_context(|| format!("{}: cannot write", private.display()))?;
            crate::durable::write_new(&public, key.public_pem().as_bytes(), 0o644)
                .with_context(|| format!("{}: cannot write", public.display()))?;
            println!(
                "wrote {} (private, mode 0600) and {}",
                private.display(),
                public.display()
            );
            println!("keyid {} ({})", key.keyid(), key.algorithm());
            Ok(ExitCode::SUCCESS)
        }
        Command::Controls { framework, json } => {
            let config = config_or_exit!(cli);
            if let Some(f) = framework
                && !config.catalog.has_framework(f)
            {
                eprintln!(
                    "evident: unknown framework `{f}` (known: {})",
                    config.catalog.framework_ids().join(", ")
                );
                return Ok(ExitCode::from(2));
            }
            print_controls(&config, framework.as_deref(), *json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            command: ConfigCommand::Check { online },
        } => {
            let config = config_or_exit!(cli);
            if *online {
                let mut failed = false;
                for sink in &config.sinks {
                    let result = match sink {
                        crate::config::SinkConfig::S3(c) => {
                            runtime()?.block_on(crate::sinks::s3::S3Sink::new(c.clone()).check())
                        }
                        crate::config::SinkConfig::File(f) => Ok(format!(
                            "directory {} (checked when written)",
                            f.path.display()
                        )),
                        crate::config::SinkConfig::Http(h) => {
                            crate::sinks::http::HttpSink::new(h.clone())
                                .map(|_| "client ready (TLS files read)".to_string())
                        }
                    };
                    match result {
                        Ok(msg) => println!("{}: {msg}", sink.describe()),
                        Err(e) => {
                            failed = true;
                            eprintln!("evident: {e}");
                        }
                    }
                }
                if failed {
                    return Ok(ExitCode::from(1));
                }
            }
            let source = config
                .path
                .as_ref()
                .map_or("built-in defaults".to_string(), |p| p.display().to_string());
            println!(
                "{source}: ok ({} collector(s), {} sink(s), {} check(s), {} framework(s))",
                config.collectors.len(),
                config.sinks.len(),
                config.checks.all().iter().filter(|c| c.enabled).count(),
                config.agent.frameworks.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Trust { command } => trust::trust(command),
        Command::Key { command } => {
            let config = config_or_exit!(cli);
            trust::key(command, config)
        }
        Command::Chain {
            command: ChainCommand::Reset { reason },
        } => {
            let config = config_or_exit!(cli);
            let mut agent = Agent::reset_chain(config, reason)?;
            let ship = runtime()?.block_on(agent.ship())?;
            println!(
                "started chain {} (reason recorded: {reason}); {} record(s) shipped",
                agent.state().chain,
                ship.shipped
            );
            Ok(ExitCode::SUCCESS)
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
) -> Result<(Option<tempfile::TempDir>, PathBuf, verify::Listing), String> {
    let Some(rest) = store.strip_prefix("s3://") else {
        return Ok((None, PathBuf::from(store), verify::Listing::default()));
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
    let found = rt.block_on(crate::sinks::s3::mirror(&cfg, &dest))?;
    let root = mirror.path().to_path_buf();
    let listing = verify::Listing {
        problems: found.problems,
        notes: found.notes,
        stamps: Some(found.stamps),
    };
    Ok((Some(mirror), root, listing))
}

fn when(
    s: &Option<String>,
    end_of_day: bool,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
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
) -> Result<Option<verify::State>, String> {
    use std::os::unix::fs::DirBuilderExt;
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
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    Ok(Some(verify::State {
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
}

fn print_verify(r: &verify::Report, store: &Path, elapsed: std::time::Duration) {
    for p in &r.problems {
        println!("PROBLEM {}: {}", p.key, p.message);
    }
    for n in &r.notes {
        println!("note: {n}");
    }
    for c in &r.host_conflicts {
        println!(
            "WARNING host {} is claimed by {} agents: {}{}",
            verify::escape_control(&c.host),
            c.agents.len(),
            verify::escape_control(&c.agents.join(", ")),
            if c.enrolled {
                " (each enrolled for it by the trust policy)"
            } else {
                " (not anchored: a forged agent, or a reinstalled host)"
            }
        );
    }
    if !r.collectors.is_empty() {
        println!(
            "{:<24} {:<28} {:>6}  {:>12}  last",
            "host", "collector", "runs", "longest gap"
        );
        for c in &r.collectors {
            let gap = crate::schedule::format_duration(std::time::Duration::from_secs(
                c.longest_gap_seconds.max(0) as u64,
            ));
            println!(
                "{:<24} {:<28} {:>6}  {:>12}  {}",
                c.host, c.collector, c.runs, gap, c.last
            );
        }
    }
    for t in &r.timestamps {
        let label = verify::escape_control(&format!(
            "agent {} chain {}",
            t.agent.chars().take(12).collect::<String>(),
            t.chain.chars().take(12).collect::<String>()
        ));
        match (&t.anchored_through, &t.at) {
            (Some(n), Some(at)) => println!(
                "time: {label} anchored through sequence {n} of {} at {at} ({} token(s); {})",
                t.last_sequence,
                t.tokens,
                verify::escape_control(t.tsa.as_deref().unwrap_or("TSA"))
            ),
            _ => println!(
                "time: {label} NOT ANCHORED: no verified timestamp token (sequence 0..={})",
                t.last_sequence
            ),
        }
    }
    if r.anchored {
        println!(
            "trust: keys anchored by the trust policy ({} key certificate(s) verified against its roots); {} record(s) refused as untrusted",
            r.certified, r.untrusted
        );
    } else {
        println!("trust: NOT ANCHORED: keys trusted on first sight (no --trust policy)");
    }
    let verdict = if r.sound() {
        "SOUND".to_string()
    } else {
        format!("{} PROBLEM(S)", r.problems.len())
    };
    println!(
        "verify {}: {} record(s) ({} valid), {} agent(s), {} chain(s), {} checkpoint(s), {} key(s) in {:.2}s: {verdict}",
        store.display(),
        r.records,
        r.valid,
        r.agents,
        r.chains,
        r.checkpoints,
        r.keys,
        elapsed.as_secs_f64()
    );
}

fn print_controls(config: &Config, framework: Option<&str>, json: bool) -> anyhow::Result<()> {
    let catalog = &config.catalog;
    let mut rows = Vec::new();
    for c in catalog
        .controls()
        .filter(|c| framework.is_none_or(|f| c.framework == f))
    {
        let mut collectors: Vec<String> = config
            .collectors
            .iter()
            .filter(|e| match &e.controls {
                Some(list) => list.contains(&c.id),
                None => catalog.mapped(&e.id, &e.kind).contains(&c.id),
            })
            .map(|e| e.id.clone())
            .collect();
        let checks: Vec<String> = config
            .checks
            .all()
            .iter()
            .filter(|k| k.enabled && k.controls.contains(&c.id))
            .map(|k| k.id.clone())
            .collect();
        for k in config
            .checks
            .all()
            .iter()
            .filter(|k| k.enabled && k.controls.contains(&c.id))
        {
            if let Some(e) = config
                .collectors
                .iter()
                .find(|e| e.id == k.collector || e.kind == k.collector)
                && !collectors.contains(&e.id)
            {
                collectors.push(e.id.clone());
            }
        }
        rows.push(serde_json::json!({
            "id": c.id, "framework": c.framework, "kind": c.kind(), "title": c.title, "group": c.group,
            "automatable": c.automatable, "collectors": collectors, "checks": checks,
        }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let evidenced = |kind: &str| {
        rows.iter()
            .filter(|r| r["kind"] == kind)
            .filter(|r| r["collectors"].as_array().is_some_and(|a| !a.is_empty()))
            .count()
    };
    let total = |kind: &str| rows.iter().filter(|r| r["kind"] == kind).count();
    for r in &rows {
        let list = |k: &str| {
            r[k].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        let by = list("collectors");
        println!(
            "{:<24} {:<60} {}",
            r["id"].as_str().unwrap_or_default(),
            r["title"].as_str().unwrap_or_default(),
            if by.is_empty() {
                "-".to_string()
            } else {
                format!("{by} [{}]", list("checks"))
            }
        );
    }
    println!(
        "{} control(s), {} with evidence from the configured collectors; {} clause(s), {} with evidence",
        total("control"),
        evidenced("control"),
        total("clause"),
        evidenced("clause")
    );
    Ok(())
}
