//! `evident report`: readiness per control from a verified store, in four formats.

use super::{ledger_state, load_trust, open_store, when};
use crate::evidence::verify;
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The arguments of `evident report`.
#[derive(clap::Args)]
pub struct Args {
    /// Store: a directory or s3://bucket/prefix.
    #[arg(long)]
    pub store: String,
    /// Only this framework (e.g. ISO27001:2022).
    #[arg(long)]
    pub framework: Option<String>,
    /// Ignore evidence before this date or time.
    #[arg(long)]
    pub since: Option<String>,
    /// State at this date (end of day) or time; default now.
    #[arg(long)]
    pub at: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Json)]
    pub format: ReportFormat,
    /// Write to this file instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Endpoint URL of an S3-compatible store.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Region of the bucket.
    #[arg(long)]
    pub region: Option<String>,
    /// Trust policy (TOML, see docs/trust.md): records by keys it does not enroll never count.
    #[arg(long)]
    pub trust: Option<PathBuf>,
    /// The auditor's ledger (a directory, as for verify): the listing is also compared
    /// with it, and it moves forward when the store is SOUND.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
}

/// Runs `evident report`.
pub(super) fn run(args: &Args, config_path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let Args {
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
    } = args;
    let config = config_or_exit!(config_path);
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
    let opts = crate::report::Options {
        at: at.unwrap_or_else(chrono::Utc::now),
        since,
        framework: framework.clone(),
        store: store.clone(),
    };
    // Each verified record is folded into the report and dropped (bounded memory).
    let mut builder = crate::report::Builder::new(&config, &opts);
    let verified = match verify::verify_stream(
        &dir,
        &verify::Options {
            progress: true,
            trust,
            listing,
            state: ledger,
            ..Default::default()
        },
        &mut builder,
    ) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("evident: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let report = builder.finish(&verified);
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

/// `report --format`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// The readiness report as JSON.
    Json,
    /// A self-contained HTML dashboard.
    Html,
    /// Prometheus text exposition (for a textfile collector).
    Prometheus,
    /// An OSCAL 1.1.2 assessment-results document.
    Oscal,
}
