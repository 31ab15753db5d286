//! `evident verify`: a store verified offline (signatures, chains, checkpoints, index).

use super::{ledger_state, load_trust, open_store, parse_duration};
use crate::evidence::verify;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The arguments of `evident verify`.
#[derive(clap::Args)]
pub struct Args {
    /// Store: a directory, or s3://bucket/prefix (credentials from the standard AWS chain).
    pub store: String,
    /// Endpoint URL of an S3-compatible store (implies path-style addressing).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Region of the bucket.
    #[arg(long)]
    pub region: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Fail when an agent's newest checkpoint is older than this (e.g. 1h, 2d).
    #[arg(long, value_parser = parse_duration)]
    pub max_age: Option<std::time::Duration>,
    /// Trust policy (TOML, see docs/trust.md): only enrolled agent keys are believed.
    #[arg(long)]
    pub trust: Option<PathBuf>,
    /// A record not anchored by an RFC 3161 timestamp within this lag of its collected_at
    /// is a problem (e.g. 1h; needs --trust with [[tsa]] certificates).
    #[arg(long, value_name = "MAXLAG", value_parser = parse_duration)]
    pub require_timestamps: Option<std::time::Duration>,
    /// The auditor's ledger (a directory): verify only what is new since the last SOUND
    /// run, prove the rest unchanged from the listing, then move the ledger forward.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// With --state: hash every object verified before again (a directory listing does
    /// not see a same-size edit whose ctime was set back).
    #[arg(long, requires = "state")]
    pub rehash: bool,
}

/// Runs `evident verify`.
pub(super) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let Args {
        store,
        endpoint,
        region,
        json,
        max_age,
        trust,
        require_timestamps,
        state,
        rehash,
    } = args;
    let mut opts = verify::Options {
        max_age: *max_age,
        progress: true,
        trust: usage!(load_trust(trust.as_deref())),
        require_timestamps: *require_timestamps,
        ..Default::default()
    };
    if opts.require_timestamps.is_some() && opts.trust.as_ref().is_none_or(|p| p.tsa.is_empty()) {
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
