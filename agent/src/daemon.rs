//! The daemon: runs each collector on its schedule, checkpoints, ships. (Scheduling detail,
//! health endpoints and signals grow here.)

use crate::pipeline::Agent;

/// Runs until interrupted.
pub async fn run(mut agent: Agent) -> anyhow::Result<()> {
    let _ = &mut agent;
    anyhow::bail!("daemon mode is not built yet; use `evident run --once` from a timer")
}
