//! Environment + `.env` file -> one checked configuration per role ([`AgentConfig`],
//! [`DashboardConfig`], [`MockConfig`], [`HealthcheckConfig`], [`ReceiverConfig`]). Each role reads and checks only
//! the variables it uses, so one `.env` shared by the agent and the dashboard never stops the
//! dashboard over an agent-only mistake. The only crate that reads environment variables;
//! everything else receives its role's configuration by value.

mod dotenv;
mod env;
mod parse;
mod receiver;
mod secret;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use env::EnvSource;
pub use hb_core::SlowThresholds;
pub use receiver::{DEFAULT_AGENT, ReceiverAgent, ReceiverConfig};
pub use secret::Secret;

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
    /// `tcp://host:port`: a connection that opens is healthy. `host` is a name or an IP
    /// address (an IPv6 one without brackets), to be resolved at check time.
    Tcp { host: String, port: u16 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// Case-preserving name taken from `SERVICE_URL_<name>`.
    pub name: String,
    pub target: Target,
    /// The URL as given, without credentials: safe to store, log and show.
    pub display_url: String,
    /// `SERVICE_TIMEOUT_<name>`, `SERVICE_EXPECT_<name>`, `SERVICE_KEYWORD_<name>`,
    /// `SERVICE_METHOD_<name>`; all unset by default, which is the first wave's check.
    pub options: CheckOptions,
}

/// A service's own check options. Validated at start: the HTTP ones only on http(s) services.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CheckOptions {
    /// Replaces `SERVICE_TIMEOUT_SECONDS` for this service (http(s) and `tcp://`).
    pub timeout: Option<Duration>,
    /// The status codes that count as healthy, as inclusive ranges (`200-299,401`).
    pub expect: Option<Vec<(u16, u16)>>,
    /// Text the body must contain (read with `GET`, at most [`KEYWORD_BODY_LIMIT`] bytes).
    pub keyword: Option<String>,
    /// The request method; unset means `HEAD`, retried with `GET` on 405/501.
    pub method: Option<HttpMethod>,
}

impl CheckOptions {
    /// Whether `code` counts as healthy: in `expect` when it is set, else 2xx or 3xx.
    pub fn healthy_code(&self, code: u16) -> bool {
        match &self.expect {
            Some(ranges) => ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&code)),
            None => (200..400).contains(&code),
        }
    }
}

/// How much of a body a keyword check reads at most.
pub const KEYWORD_BODY_LIMIT: usize = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    Head,
    Get,
}

impl ServiceSpec {
    pub fn kind(&self) -> hb_core::ServiceKind {
        match self.target {
            Target::Http { .. } => hb_core::ServiceKind::Http,
            Target::Docker { .. } => hb_core::ServiceKind::Docker,
            Target::Tcp { .. } => hb_core::ServiceKind::Tcp,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The shortest cycle period the agent runs (`LOOP_INTERVAL_SECONDS`): the grid is kept in
/// milliseconds, and a cycle (host sample, checks, one transaction) needs a few of them even
/// with nothing to check.
pub const MIN_LOOP_INTERVAL_SECS: f64 = 0.1;
/// The shortest per-check timeout (`SERVICE_TIMEOUT_SECONDS`): below it even a loopback
/// service would time out on a busy host.
pub const MIN_SERVICE_TIMEOUT_SECS: f64 = 0.01;

/// What every role's configuration offers `heartbeat config` and the binary's start-up.
pub trait RoleConfig: Sized {
    /// The role's name as `heartbeat config --role` spells it.
    const ROLE: &'static str;

    /// Reads and checks every variable this role uses (and only those), collecting all
    /// problems.
    fn load(env: &EnvSource) -> Result<Self, ConfigErrors>;

    /// The resolved values as `(variable, value)` lines with secrets redacted.
    fn describe(&self) -> Vec<(String, String)>;

    /// Non-fatal observations made while loading (e.g. heartbeat disabled), to be logged.
    fn warnings(&self) -> &[String];

    /// How this role's log lines are written.
    fn log_format(&self) -> LogFormat;
}

/// Shipping to the fleet database (`FLEET_DATABASE_URL`, under `HOST_NAME`).
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// `postgres://…`; a secret (its password is never shown).
    pub url: Secret,
    /// `HOST_NAME`: 1–64 of `A-Za-z0-9._-`; default the machine's host name.
    pub host_name: String,
}

/// `heartbeat agent`: the monitoring loop (SPEC §2 and §3 plus the variables this project adds;
/// see README).
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub loop_interval: Duration,
    pub status_change_threshold: u32,
    pub service_timeout: Duration,
    pub tz_name: String,
    pub tz: jiff::tz::TimeZone,
    pub secret_key: Option<Secret>,
    /// May carry a token in its path: shown redacted.
    pub heartbeat_url: Option<Secret>,
    /// May carry a token in its path: shown redacted.
    pub webhook_url: Option<Secret>,
    /// `ALERT_REMINDER_MINUTES`: a reminder this often while an item stays bad; `None`: off.
    pub alert_reminder: Option<Duration>,
    /// `MAINTENANCE_WINDOWS`, in `TZ`: when alerts are held.
    pub maintenance: hb_core::maintenance::MaintenanceSchedule,
    pub db_path: PathBuf,
    /// Ordered: `SERVICE_NAMES` order when given, else http first then docker, by name.
    pub services: Vec<ServiceSpec>,
    pub dns_override_ip: Option<IpAddr>,
    pub ping_url: String,
    pub docker_host: String,
    pub force_ipv4: bool,
    pub check_concurrency: usize,
    /// Most checks in flight at once against one target (an http(s) URL's host and port, a
    /// `tcp://` host and port); `0` means no per-target limit.
    pub checks_per_target: usize,
    /// Days of certificate life left under which an https service alerts (once, and once more
    /// under 3 days); `0` disables these alerts.
    pub tls_expiry_warn_days: u32,
    /// `None` without `FLEET_DATABASE_URL`: single-host use, exactly as before.
    pub fleet: Option<FleetConfig>,
    /// Runtime worker threads of the agent (checks are I/O-bound: one is plenty for hundreds).
    pub agent_worker_threads: usize,
    pub pending_cycles_max: usize,
    /// Undelivered alerts younger than this are sent at start-up (marked late); older ones are
    /// given up (`ALERT_REDELIVER_MAX_AGE_SECONDS`).
    pub alert_redeliver_max_age: Duration,
    pub host_disk_path: PathBuf,
    /// How long the agent's store keeps each kind of row (`RETENTION_*`).
    pub retention: RetentionDays,
    pub log_format: LogFormat,
    pub warnings: Vec<String>,
}

/// Days each kind of stored row is kept; `0` keeps it forever (the `RETENTION_*` variables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionDays {
    /// Raw cycles and their service checks (`RETENTION_DAYS`, default 30).
    pub raw: u32,
    /// Minute rollup blocks (`RETENTION_MINUTE_ROLLUPS_DAYS`, default 2).
    pub minute_rollups: u32,
    /// Six-minute rollup blocks (`RETENTION_6MIN_ROLLUPS_DAYS`, default 35).
    pub six_minute_rollups: u32,
    /// Hour rollup blocks (`RETENTION_HOUR_ROLLUPS_DAYS`, default 400).
    pub hour_rollups: u32,
    /// Day rollup blocks (`RETENTION_DAY_ROLLUPS_DAYS`, default 0: forever).
    pub day_rollups: u32,
    /// Alerts (`RETENTION_ALERTS_DAYS`, default 400).
    pub alerts: u32,
}

/// The longest retention a `RETENTION_*` variable takes (a century).
pub const MAX_RETENTION_DAYS: u64 = 36_500;

/// `heartbeat dashboard`: the read-only API and page.
#[derive(Debug, Clone)]
pub struct DashboardConfig {
    pub db_path: PathBuf,
    /// `FLEET_DATABASE_URL`: read every host from the fleet database instead of the SQLite
    /// file (which is then not opened).
    pub fleet_url: Option<Secret>,
    pub target_data_points: u32,
    pub tz_name: String,
    pub tz: jiff::tz::TimeZone,
    pub dashboard_bind: String,
    pub cors_origins: Vec<String>,
    pub mask_errors: bool,
    /// Latency above which an answering service is marked slow on the page
    /// (`SERVICE_SLOW_MS_<name>`, else `SERVICE_SLOW_MS`); its status is unchanged.
    pub slow_ms: SlowThresholds,
    /// `TLS_EXPIRY_WARN_DAYS`, the agent's setting: the page marks a certificate with fewer
    /// days left as expiring.
    pub tls_expiry_warn_days: u32,
    /// `MAINTENANCE_WINDOWS`, the agent's setting: the page marks them.
    pub maintenance: hb_core::maintenance::MaintenanceSchedule,
    pub umami_script_url: Option<String>,
    pub umami_website_id: Option<String>,
    pub log_format: LogFormat,
    pub warnings: Vec<String>,
}

/// `heartbeat mock`: the development mock.
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// The key the simulated receiver expects; unset means no key check.
    pub secret_key: Option<Secret>,
    pub mock_port: u16,
    pub log_format: LogFormat,
    pub warnings: Vec<String>,
}

/// `heartbeat healthcheck`: where the agent's cycles are and how often they come.
#[derive(Debug, Clone)]
pub struct HealthcheckConfig {
    pub db_path: PathBuf,
    pub loop_interval: Duration,
    pub log_format: LogFormat,
    pub warnings: Vec<String>,
}

macro_rules! role_config {
    ($ty:ty, $role:literal, $load:path, $describe:path) => {
        impl RoleConfig for $ty {
            const ROLE: &'static str = $role;

            fn load(env: &EnvSource) -> Result<Self, ConfigErrors> {
                $load(env)
            }

            fn describe(&self) -> Vec<(String, String)> {
                $describe(self)
            }

            fn warnings(&self) -> &[String] {
                &self.warnings
            }

            fn log_format(&self) -> LogFormat {
                self.log_format
            }
        }
    };
}

role_config!(
    AgentConfig,
    "agent",
    parse::load_agent,
    parse::describe_agent
);
role_config!(
    DashboardConfig,
    "dashboard",
    parse::load_dashboard,
    parse::describe_dashboard
);
role_config!(MockConfig, "mock", parse::load_mock, parse::describe_mock);
role_config!(
    HealthcheckConfig,
    "healthcheck",
    parse::load_healthcheck,
    parse::describe_healthcheck
);
role_config!(
    ReceiverConfig,
    "receiver",
    receiver::load_receiver,
    receiver::describe_receiver
);
