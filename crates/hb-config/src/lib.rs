//! Environment + `.env` file -> one checked [`Config`]. The only crate that reads environment
//! variables; everything else receives the `Config` by value.

mod dotenv;
mod env;
mod parse;
mod secret;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use env::EnvSource;
pub use secret::Secret;

/// Which subcommand the configuration is for: only the agent needs services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Agent,
    Dashboard,
    Mock,
    /// `heartbeat config`: validates everything the agent would.
    Check,
}

/// One problem found while reading the configuration. Its message already names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: String,
    pub message: String,
}

/// Every problem found, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// What a service points at.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// `http://` or `https://`. `url` may carry credentials: never log it, use
    /// [`ServiceSpec::display_url`].
    Http {
        url: url::Url,
        headers: Vec<(String, Secret)>,
    },
    /// `docker:<container>`.
    Docker { container: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// Case-preserving name taken from `SERVICE_URL_<name>`.
    pub name: String,
    pub target: Target,
    /// The URL as given, without credentials: safe to store, log and show.
    pub display_url: String,
}

impl ServiceSpec {
    pub fn kind(&self) -> hb_core::ServiceKind {
        match self.target {
            Target::Http { .. } => hb_core::ServiceKind::Http,
            Target::Docker { .. } => hb_core::ServiceKind::Docker,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The checked configuration (SPEC §2 plus the variables this project adds; see README).
#[derive(Debug, Clone)]
pub struct Config {
    pub loop_interval: Duration,
    pub status_change_threshold: u32,
    pub service_timeout: Duration,
    pub target_data_points: u32,
    pub tz_name: String,
    pub tz: jiff::tz::TimeZone,
    pub secret_key: Option<Secret>,
    /// May carry a token in its path: shown redacted.
    pub heartbeat_url: Option<Secret>,
    /// May carry a token in its path: shown redacted.
    pub webhook_url: Option<Secret>,
    pub db_path: PathBuf,
    /// Ordered: `SERVICE_NAMES` order when given, else http first then docker, by name.
    pub services: Vec<ServiceSpec>,
    pub dns_override_ip: Option<IpAddr>,
    pub ping_url: String,
    pub docker_host: String,
    pub force_ipv4: bool,
    pub check_concurrency: usize,
    /// Runtime worker threads of the agent (checks are I/O-bound: one is plenty for hundreds).
    pub agent_worker_threads: usize,
    pub pending_cycles_max: usize,
    pub host_disk_path: PathBuf,
    pub log_format: LogFormat,
    pub dashboard_bind: String,
    pub cors_origins: Vec<String>,
    pub mask_errors: bool,
    pub umami_script_url: Option<String>,
    pub umami_website_id: Option<String>,
    pub mock_port: u16,
    /// Non-fatal observations made while loading (e.g. heartbeat disabled), to be logged.
    pub warnings: Vec<String>,
}

impl Config {
    /// Reads and checks every variable, collecting all problems.
    pub fn load(env: &EnvSource, role: Role) -> Result<Config, ConfigErrors> {
        parse::load(env, role)
    }

    /// The resolved configuration as `(variable, value)` lines with secrets redacted, for
    /// `heartbeat config`.
    pub fn describe(&self) -> Vec<(String, String)> {
        parse::describe(self)
    }
}
