//! One module per subcommand, each with its `Args` and `run`.

pub mod agent;
pub mod config;

use std::process::ExitCode;

use hb_config::{Config, ConfigErrors, EnvSource, Role};

/// Loads the configuration for `role`, printing every problem and returning exit code 2 when it
/// is invalid.
pub fn load_config(env: &EnvSource, role: Role) -> Result<Config, ExitCode> {
    Config::load(env, role).map_err(|ConfigErrors(errors)| {
        for e in &errors {
            eprintln!("heartbeat: configuration error: {e}");
        }
        ExitCode::from(crate::EXIT_CONFIG)
    })
}

/// A multi-threaded runtime built after the configuration is read.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
