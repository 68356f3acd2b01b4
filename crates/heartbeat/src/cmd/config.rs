//! `heartbeat config`: validate and print the resolved configuration with secrets redacted.
//! By default it checks every role of the monitored host (a `.env` shared by the agent, the
//! dashboard and the mock is checked whole); `--role` checks what one subcommand would,
//! including the receiver, which runs on another machine with its own `.env`.

use std::process::ExitCode;

use hb_config::{
    AgentConfig, ConfigError, ConfigErrors, DashboardConfig, EnvSource, HealthcheckConfig,
    MockConfig, ReceiverConfig, RoleConfig,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    /// Every role of the monitored host: agent, dashboard, mock, healthcheck (the default).
    All,
    Agent,
    Dashboard,
    Mock,
    Healthcheck,
    /// The heartbeat receiver (not part of `all`: it runs on another machine).
    Receiver,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Check only what this subcommand reads.
    #[arg(long, value_enum, default_value_t = RoleArg::All)]
    pub role: RoleArg,
}

/// What one role's check found: its lines and warnings, or its errors.
type Checked = Result<(Vec<(String, String)>, Vec<String>), Vec<ConfigError>>;

fn check<C: RoleConfig>(env: &EnvSource) -> Checked {
    C::load(env)
        .map(|c| (c.describe(), c.warnings().to_vec()))
        .map_err(|ConfigErrors(errors)| errors)
}

pub fn run(args: Args, env: EnvSource) -> anyhow::Result<ExitCode> {
    let results: Vec<Checked> = match args.role {
        RoleArg::All => vec![
            check::<AgentConfig>(&env),
            check::<DashboardConfig>(&env),
            check::<MockConfig>(&env),
            check::<HealthcheckConfig>(&env),
        ],
        RoleArg::Agent => vec![check::<AgentConfig>(&env)],
        RoleArg::Dashboard => vec![check::<DashboardConfig>(&env)],
        RoleArg::Mock => vec![check::<MockConfig>(&env)],
        RoleArg::Healthcheck => vec![check::<HealthcheckConfig>(&env)],
        RoleArg::Receiver => vec![check::<ReceiverConfig>(&env)],
    };
    // Roles share variables (TZ, SQLITE_DB_PATH, ...): each line, warning and error once.
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    let mut errors: Vec<ConfigError> = Vec::new();
    for result in results {
        match result {
            Ok((described, warned)) => {
                for (key, value) in described {
                    if !lines.iter().any(|(k, _)| *k == key) {
                        lines.push((key, value));
                    }
                }
                for w in warned {
                    if !warnings.contains(&w) {
                        warnings.push(w);
                    }
                }
            }
            Err(found) => {
                for e in found {
                    if !errors.contains(&e) {
                        errors.push(e);
                    }
                }
            }
        }
    }
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("heartbeat: configuration error: {e}");
        }
        return Ok(ExitCode::from(crate::EXIT_CONFIG));
    }
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in &lines {
        println!("{key:width$} = {value}");
    }
    for w in &warnings {
        eprintln!("heartbeat: warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}
