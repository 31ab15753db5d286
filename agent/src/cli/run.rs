//! `evident run`: the collectors on their schedules (daemon), or each once with `--once`.

use super::runtime;
use crate::pipeline::Agent;
use std::path::Path;
use std::process::ExitCode;

/// The arguments of `evident run`.
#[derive(clap::Args)]
pub struct Args {
    /// Run every collector once, write a checkpoint, ship, and exit.
    #[arg(long)]
    pub once: bool,
}

/// Runs `evident run`.
pub(super) fn run(args: &Args, config_path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let Args { once } = args;
    let config = config_or_exit!(config_path);
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
        runtime()?.block_on(crate::daemon::run(
            agent,
            config_path.map(Path::to_path_buf),
        ))?;
        return Ok(ExitCode::SUCCESS);
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
