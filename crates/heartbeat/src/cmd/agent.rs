//! `heartbeat agent`: the monitoring loop, or one cycle with `--once`.

use std::process::ExitCode;

use hb_config::{EnvSource, Role};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run exactly one cycle, then exit (0 on success).
    #[arg(long)]
    pub once: bool,
    /// Print each cycle's result as one JSON line on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, env: EnvSource) -> anyhow::Result<ExitCode> {
    let config = match super::load_config(&env, Role::Agent) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    crate::logging::init(config.log_format);
    let _ = args;
    anyhow::bail!("the agent loop is not wired yet")
}
