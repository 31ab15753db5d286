//! `evident collect`: the record one collector would make, printed and never stored.

use super::runtime;
use crate::pipeline;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The arguments of `evident collect`.
#[derive(clap::Args)]
pub struct Args {
    /// Collector id (as configured; e.g. system.inventory).
    pub name: String,
    /// Observe the host filesystem mounted at DIR (overrides agent.host_root).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

/// Runs `evident collect`.
pub(super) fn run(args: &Args, config_path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let Args { name, root } = args;
    let mut config = config_or_exit!(config_path);
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
    let host = crate::host::identity(&config.agent.host_root, config.agent.hostname.as_deref());
    let p = runtime()?.block_on(pipeline::observe(&config, entry, &host, "(not recorded)"));
    println!("{}", serde_json::to_string_pretty(&p)?);
    Ok(ExitCode::SUCCESS)
}
