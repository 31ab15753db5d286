//! `evident query`: the records for one control, from the store's index.

use super::{open_store, when};
use std::process::ExitCode;

/// The arguments of `evident query`.
#[derive(clap::Args)]
pub struct Args {
    /// Store: a directory or s3://bucket/prefix.
    #[arg(long)]
    pub store: String,
    /// Qualified control ID, e.g. ISO27001:2022/A.8.24.
    #[arg(long)]
    pub control: String,
    /// Only this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Not before this date or time.
    #[arg(long)]
    pub since: Option<String>,
    /// Newest record per host at or before this date (end of day) or time.
    #[arg(long)]
    pub at: Option<String>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
    /// Endpoint URL of an S3-compatible store.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Region of the bucket.
    #[arg(long)]
    pub region: Option<String>,
}

/// Runs `evident query`.
pub(super) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let Args {
        store,
        control,
        host,
        since,
        at,
        json,
        endpoint,
        region,
    } = args;
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
    if answer.unreadable_lines > 0 {
        eprintln!(
            "evident query: {} index line(s) are not index entries and were left out: the answer is incomplete (`evident verify` names them)",
            answer.unreadable_lines
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
