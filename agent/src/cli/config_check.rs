//! `evident config check`: the configuration validated as `run` would load it.

use super::runtime;
use clap::Subcommand;
use std::path::Path;
use std::process::ExitCode;

/// `evident config ...`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

/// Runs `evident config`.
pub(super) fn run(args: &Args, config_path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let Args {
        command: ConfigCommand::Check { online },
    } = args;
    let config = config_or_exit!(config_path);
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
                crate::config::SinkConfig::Http(h) => crate::sinks::http::HttpSink::new(h.clone())
                    .map(|_| "client ready (TLS files read)".to_string()),
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

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Validate the config; print every error as FILE:LINE: key: message.
    Check {
        /// Also check that every sink is reachable (S3: bucket, credentials, Object Lock).
        #[arg(long)]
        online: bool,
    },
}
