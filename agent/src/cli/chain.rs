//! `evident chain reset`: a new chain started deliberately, with a signed reason.

use super::runtime;
use crate::pipeline::Agent;
use clap::Subcommand;
use std::path::Path;
use std::process::ExitCode;

/// `evident chain ...`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: ChainCommand,
}

/// Runs `evident chain`.
pub(super) fn run(args: &Args, config_path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let Args {
        command: ChainCommand::Reset { reason },
    } = args;
    let config = config_or_exit!(config_path);
    let mut agent = Agent::reset_chain(config, reason)?;
    let ship = runtime()?.block_on(agent.ship())?;
    println!(
        "started chain {} (reason recorded: {reason}); {} record(s) shipped",
        agent.state().chain,
        ship.shipped
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand)]
pub enum ChainCommand {
    /// Start a new chain deliberately; the reset itself is a signed record.
    Reset {
        /// Why (recorded in the chain_start record).
        #[arg(long)]
        reason: String,
    },
}
