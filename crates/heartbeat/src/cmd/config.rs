//! `heartbeat config`: validate and print the resolved configuration with secrets redacted.

use std::process::ExitCode;

use hb_config::{EnvSource, Role};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, env: EnvSource) -> anyhow::Result<ExitCode> {
    let config = match super::load_config(&env, Role::Check) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let width = config
        .describe()
        .iter()
        .map(|(k, _)| k.len())
        .max()
        .unwrap_or(0);
    for (key, value) in config.describe() {
        println!("{key:width$} = {value}");
    }
    for w in &config.warnings {
        eprintln!("heartbeat: warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}
