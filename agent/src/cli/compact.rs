//! `evident compact`: closed days' index files rewritten into signed Parquet files.

use crate::evidence::keys::SigningKey;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The arguments of `evident compact`.
#[derive(clap::Args)]
pub struct Args {
    /// Store: a directory, or s3://bucket/prefix (credentials from the standard AWS chain).
    #[arg(long)]
    pub store: String,
    /// Only this day (YYYY-MM-DD, before today UTC); default every closed day.
    #[arg(long)]
    pub day: Option<String>,
    /// PKCS#8 PEM private key that signs the attestations (default: the agent's key).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
    /// Endpoint URL of an S3-compatible store (implies path-style addressing).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Region of the bucket.
    #[arg(long)]
    pub region: Option<String>,
}

/// Runs `evident compact`.
pub(super) fn run(args: &Args, config_path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let Args {
        store,
        day,
        key,
        json,
        endpoint,
        region,
    } = args;
    let key_path = match key {
        Some(k) => k.clone(),
        None => config_or_exit!(config_path).key_path(),
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
