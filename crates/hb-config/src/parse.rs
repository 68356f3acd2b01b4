//! Reading and checking each variable. Problems are collected, never returned early, so an
//! operator sees every mistake at once.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use hb_core::{compare_services, redact_url};

use crate::{
    AgentConfig, CheckOptions, ConfigError, ConfigErrors, DashboardConfig, EnvSource, FleetConfig,
    HealthcheckConfig, HttpMethod, LogFormat, MAX_RETENTION_DAYS, MIN_LOOP_INTERVAL_SECS,
    MIN_SERVICE_TIMEOUT_SECS, MockConfig, RetentionDays, Secret, ServiceSpec, SlowThresholds,
    Target,
};

const URL_PREFIX: &str = "SERVICE_URL_";
const HEADERS_PREFIX: &str = "SERVICE_HEADERS_";
const TIMEOUT_PREFIX: &str = "SERVICE_TIMEOUT_";
const EXPECT_PREFIX: &str = "SERVICE_EXPECT_";
const KEYWORD_PREFIX: &str = "SERVICE_KEYWORD_";
const METHOD_PREFIX: &str = "SERVICE_METHOD_";
/// `SERVICE_TIMEOUT_SECONDS` is the global timeout, not the timeout of a service `SECONDS`.
const GLOBAL_TIMEOUT_SUFFIX: &str = "SECONDS";
const OPTION_PREFIXES: [&str; 4] = [TIMEOUT_PREFIX, EXPECT_PREFIX, KEYWORD_PREFIX, METHOD_PREFIX];
const SLOW: &str = "SERVICE_SLOW_MS";
const SLOW_PREFIX: &str = "SERVICE_SLOW_MS_";
/// The largest latency threshold accepted: one hour, far above any check timeout.
const SLOW_MAX_MS: f64 = 3_600_000.0;

/// Collects problems while the variables are read.
pub(crate) struct Reader<'a> {
    pub(crate) env: &'a EnvSource,
    errors: Vec<ConfigError>,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(env: &'a EnvSource) -> Reader<'a> {
        Reader {
            env,
            errors: Vec::new(),
        }
    }

    /// Each problem once, however many times its variable is read.
    pub(crate) fn error(&mut self, variable: &str, message: impl Into<String>) {
        let e = ConfigError {
            variable: variable.to_owned(),
            message: message.into(),
        };
        if !self.errors.contains(&e) {
            self.errors.push(e);
        }
    }

    /// The value with surrounding whitespace removed; empty means unset. A value that is not
    /// valid UTF-8 is an error, never silently unset.
    pub(crate) fn optional(&mut self, name: &str) -> Option<&'a str> {
        if self.env.is_not_utf8(name) {
            self.error(name, "is not valid UTF-8 text");
            return None;
        }
        self.env
            .get(name)
            .map(str::trim)
            .filter(|value| !value.is_empty())
    }

    /// `Ok` with what was read, or every problem found.
    pub(crate) fn finish<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(ConfigErrors(self.errors))
        }
    }

    pub(crate) fn parsed<T>(
        &mut self,
        name: &str,
        default: T,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> T {
        match self.optional(name) {
            None => default,
            Some(raw) => match parse(raw) {
                Some(v) => v,
                None => {
                    self.error(name, format!("'{raw}' is not valid (expected {expected})"));
                    default
                }
            },
        }
    }

    pub(crate) fn seconds(
        &mut self,
        name: &str,
        default_secs: f64,
        min_secs: f64,
        max_secs: f64,
    ) -> Duration {
        let expected = format!("a number of seconds from {min_secs} to {max_secs}");
        let secs = self.parsed(name, default_secs, &expected, |raw| {
            f64::from_str(raw)
                .ok()
                .filter(|s| s.is_finite() && *s >= min_secs && *s <= max_secs)
        });
        Duration::from_secs_f64(secs)
    }

    /// A check timeout (`SERVICE_TIMEOUT_SECONDS`, `SERVICE_TIMEOUT_<name>`): default 2 s.
    fn check_timeout(&mut self, name: &str) -> Duration {
        self.seconds(name, 2.0, MIN_SERVICE_TIMEOUT_SECS, 3_600.0)
    }

    /// `TLS_EXPIRY_WARN_DAYS`, read by the agent (alerts) and the dashboard (the mark).
    fn tls_expiry_warn_days(&mut self) -> u32 {
        self.integer("TLS_EXPIRY_WARN_DAYS", 14, 0, 3_650) as u32
    }

    /// `ALERT_REMINDER_MINUTES`: unset or `0` is off; fractions of a minute are allowed.
    fn reminder_interval(&mut self) -> Option<Duration> {
        let expected = "0 (off) or a number of minutes up to 43200, such as 60 or 0.5";
        let minutes = self.parsed("ALERT_REMINDER_MINUTES", 0.0, expected, |raw| {
            f64::from_str(raw)
                .ok()
                .filter(|m| m.is_finite() && (0.0..=43_200.0).contains(m))
        });
        (minutes > 0.0).then(|| Duration::from_secs_f64(minutes * 60.0))
    }

    /// `MAINTENANCE_WINDOWS` in the zone `tz` (read by the agent and the dashboard).
    fn maintenance_windows(
        &mut self,
        tz: &jiff::tz::TimeZone,
    ) -> hb_core::maintenance::MaintenanceSchedule {
        let Some(raw) = self.optional("MAINTENANCE_WINDOWS") else {
            return hb_core::maintenance::MaintenanceSchedule::default();
        };
        hb_core::maintenance::MaintenanceSchedule::parse(raw, tz.clone()).unwrap_or_else(|why| {
            self.error("MAINTENANCE_WINDOWS", why);
            hb_core::maintenance::MaintenanceSchedule::default()
        })
    }

    /// A value that goes into an HTTP header (`SECRET_KEY` as `Bearer <key>`): control
    /// characters (a newline from an env file, say) would make every request fail at run time.
    pub(crate) fn header_safe_secret(&mut self, name: &str) -> Option<Secret> {
        let raw = self.optional(name)?;
        if has_control_chars(raw) {
            self.error(
                name,
                "contains control characters (such as a line break) and cannot be sent in an HTTP header",
            );
            return None;
        }
        Some(Secret::new(raw))
    }

    pub(crate) fn tz(&mut self) -> (String, jiff::tz::TimeZone) {
        let tz_raw = self.optional("TZ").unwrap_or("UTC");
        let tz_name = tz_raw.strip_prefix(':').unwrap_or(tz_raw).to_owned();
        match jiff::tz::TimeZone::get(&tz_name) {
            Ok(tz) => (tz_name, tz),
            Err(_) => {
                self.error(
                    "TZ",
                    format!("'{tz_raw}' is not a known time zone (expected an IANA name such as UTC or America/Lima)"),
                );
                (tz_name, jiff::tz::TimeZone::UTC)
            }
        }
    }

    pub(crate) fn log_format(&mut self) -> LogFormat {
        self.parsed(
            "LOG_FORMAT",
            LogFormat::Text,
            "text or json",
            |raw| match raw.to_ascii_lowercase().as_str() {
                "text" => Some(LogFormat::Text),
                "json" => Some(LogFormat::Json),
                _ => None,
            },
        )
    }

    fn db_path(&mut self) -> PathBuf {
        PathBuf::from(self.optional("SQLITE_DB_PATH").unwrap_or("data/metrics.db"))
    }

    fn loop_interval(&mut self) -> Duration {
        self.seconds(
            "LOOP_INTERVAL_SECONDS",
            10.0,
            MIN_LOOP_INTERVAL_SECS,
            86_400.0,
        )
    }

    fn integer(&mut self, name: &str, default: u64, min: u64, max: u64) -> u64 {
        let expected = format!("a whole number from {min} to {max}");
        self.parsed(name, default, &expected, |raw| {
            u64::from_str(raw).ok().filter(|n| (min..=max).contains(n))
        })
    }

    /// Days to keep something: `0` (forever) or a whole number from `min` on, so a value that
    /// would break a range the dashboard reads (the 30d range reads six-minute blocks, the 1y
    /// range hour blocks) cannot be set by mistake.
    fn retention_days(&mut self, name: &str, default: u32, min: u32) -> u32 {
        let expected = format!(
            "0 to keep everything, or a whole number of days from {min} to {MAX_RETENTION_DAYS}"
        );
        self.parsed(name, default, &expected, |raw| {
            u32::from_str(raw).ok().filter(|&n| {
                n == 0 || (u64::from(min)..=MAX_RETENTION_DAYS).contains(&u64::from(n))
            })
        })
    }

    fn boolean(&mut self, name: &str, default: bool) -> bool {
        self.parsed(name, default, "true or false", |raw| {
            match raw.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Some(true),
                "0" | "false" | "no" | "off" => Some(false),
                _ => None,
            }
        })
    }

    /// An http(s) URL; the message shows it without credentials.
    pub(crate) fn http_url(&mut self, name: &str, raw: &str, secret: bool) -> Option<url::Url> {
        let shown = if secret {
            "***".to_owned()
        } else {
            format!("'{}'", redact_url(raw))
        };
        match url::Url::parse(raw) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Some(u),
            Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                self.error(
                    name,
                    format!(
                        "{shown} has unsupported scheme '{}' (expected http:// or https://)",
                        u.scheme()
                    ),
                );
                None
            }
            Ok(_) => {
                self.error(
                    name,
                    format!("{shown} has no host (expected http(s)://host/...)"),
                );
                None
            }
            Err(e) => {
                self.error(name, format!("{shown} is not a valid URL ({e})"));
                None
            }
        }
    }
}

pub(crate) fn load_agent(env: &EnvSource) -> Result<AgentConfig, ConfigErrors> {
    let mut r = Reader::new(env);
    let mut warnings = Vec::new();

    let loop_interval = r.loop_interval();
    let status_change_threshold = r.integer("STATUS_CHANGE_THRESHOLD", 4, 1, 10_000) as u32;
    let service_timeout = r.check_timeout("SERVICE_TIMEOUT_SECONDS");
    let (tz_name, tz) = r.tz();
    let secret_key = r.header_safe_secret("SECRET_KEY");
    let heartbeat_url = r.optional("HEARTBEAT_URL").and_then(|raw| {
        r.http_url("HEARTBEAT_URL", raw, true)
            .map(|_| Secret::new(raw))
    });
    let webhook_url = r.optional("N8N_WEBHOOK_URL").and_then(|raw| {
        r.http_url("N8N_WEBHOOK_URL", raw, true)
            .map(|_| Secret::new(raw))
    });
    let alert_reminder = r.reminder_interval();
    let maintenance = r.maintenance_windows(&tz);
    let ping_url = r.optional("PING_URL").unwrap_or("http://www.google.com");
    let ping_url = match r.http_url("PING_URL", ping_url, false) {
        Some(_) => ping_url.to_owned(),
        None => String::new(),
    };

    let db_path = r.db_path();
    let dns_override_ip = r.parsed(
        "INTERNAL_DNS_OVERRIDE_IP",
        None,
        "an IP address such as 172.17.0.1",
        |raw| IpAddr::from_str(raw).ok().map(Some),
    );
    let docker_host = r
        .optional("DOCKER_HOST")
        .unwrap_or("unix:///var/run/docker.sock")
        .to_owned();
    if !["unix://", "tcp://", "http://"]
        .iter()
        .any(|p| docker_host.starts_with(p) && docker_host.len() > p.len())
    {
        r.error(
            "DOCKER_HOST",
            format!("'{docker_host}' is not supported (expected unix:///path/to/docker.sock or tcp://host:port)"),
        );
    }
    let force_ipv4 = r.boolean("FORCE_IPV4", true);
    let check_concurrency = r.integer("CHECK_CONCURRENCY", 4_096, 1, 1_000_000) as usize;
    let checks_per_target = r.integer("CHECKS_PER_TARGET", 4, 0, 1_000_000) as usize;
    let tls_expiry_warn_days = r.tls_expiry_warn_days();
    let fleet = fleet(&mut r);
    let agent_worker_threads = r.integer("AGENT_WORKER_THREADS", 1, 1, 256) as usize;
    let pending_cycles_max = r.integer("PENDING_CYCLES_MAX", 8_640, 1, 10_000_000) as usize;
    // An hour: long enough for a crash and a restart by hand, short enough that what arrives
    // is still news. 0 gives every alert left undelivered up at start.
    let alert_redeliver_max_age =
        Duration::from_secs(r.integer("ALERT_REDELIVER_MAX_AGE_SECONDS", 3_600, 0, 30 * 86_400));
    let host_disk_path = PathBuf::from(r.optional("HOST_DISK_PATH").unwrap_or("/"));
    let retention = RetentionDays {
        raw: r.retention_days("RETENTION_DAYS", 30, 1),
        minute_rollups: r.retention_days("RETENTION_MINUTE_ROLLUPS_DAYS", 2, 1),
        six_minute_rollups: r.retention_days("RETENTION_6MIN_ROLLUPS_DAYS", 35, 31),
        hour_rollups: r.retention_days("RETENTION_HOUR_ROLLUPS_DAYS", 400, 366),
        day_rollups: r.retention_days("RETENTION_DAY_ROLLUPS_DAYS", 0, 366),
        alerts: r.retention_days("RETENTION_ALERTS_DAYS", 400, 365),
    };
    let log_format = r.log_format();
    let services = read_services(&mut r, &mut warnings);
    check_window_items(&mut r, &maintenance, &services);

    if service_timeout >= loop_interval {
        warnings.push(format!(
            "SERVICE_TIMEOUT_SECONDS ({}) is not shorter than LOOP_INTERVAL_SECONDS ({}): a cycle with an unresponsive service will overrun and skip ticks",
            service_timeout.as_secs_f64(),
            loop_interval.as_secs_f64()
        ));
    }
    for s in &services {
        if let Some(t) = s.options.timeout.filter(|t| *t >= loop_interval) {
            warnings.push(format!(
                "{TIMEOUT_PREFIX}{} ({}) is not shorter than LOOP_INTERVAL_SECONDS ({}): a cycle with this service unresponsive will overrun and skip ticks",
                s.name,
                t.as_secs_f64(),
                loop_interval.as_secs_f64()
            ));
        }
    }
    if heartbeat_url.is_none() {
        warnings.push("HEARTBEAT_URL is not set: the heartbeat is disabled".to_owned());
    } else if secret_key.is_none() && !r.env.is_not_utf8("SECRET_KEY") {
        warnings.push(
            "SECRET_KEY is not set: the heartbeat receiver will likely answer 401".to_owned(),
        );
    }
    if webhook_url.is_none() {
        warnings.push("N8N_WEBHOOK_URL is not set: alerts are only logged and recorded".to_owned());
    }

    r.finish(AgentConfig {
        loop_interval,
        status_change_threshold,
        service_timeout,
        tz_name,
        tz,
        secret_key,
        heartbeat_url,
        webhook_url,
        alert_reminder,
        maintenance,
        db_path,
        services,
        dns_override_ip,
        ping_url,
        docker_host,
        force_ipv4,
        check_concurrency,
        checks_per_target,
        tls_expiry_warn_days,
        fleet,
        agent_worker_threads,
        pending_cycles_max,
        alert_redeliver_max_age,
        host_disk_path,
        retention,
        log_format,
        warnings,
    })
}

/// A window limited to an item that is not monitored is a typo that would hold nothing.
fn check_window_items(
    r: &mut Reader<'_>,
    maintenance: &hb_core::maintenance::MaintenanceSchedule,
    services: &[ServiceSpec],
) {
    use hb_core::alerting::{INTERNET_ITEM, WORKER_ITEM};
    for window in maintenance.windows() {
        for item in &window.items {
            let known = item == WORKER_ITEM
                || item == INTERNET_ITEM
                || services.iter().any(|s| s.name == *item);
            if !known {
                r.error(
                    "MAINTENANCE_WINDOWS",
                    format!(
                        "\"{}\" names @{item}, which is not a configured service (nor worker or internet)",
                        window.text
                    ),
                );
            }
        }
    }
}

/// `FLEET_DATABASE_URL` ([`fleet_url`]) and `HOST_NAME` (read only with the URL: without it
/// nothing uses the name).
fn fleet(r: &mut Reader<'_>) -> Option<FleetConfig> {
    let url = fleet_url(r)?;
    let expected = "expected 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'";
    let host_name = match r.optional("HOST_NAME") {
        Some(name) => {
            if !valid_host_name(name) {
                r.error("HOST_NAME", format!("'{name}' is not valid ({expected})"));
            }
            name.to_owned()
        }
        None => {
            let machine = machine_host_name();
            if !valid_host_name(&machine) {
                r.error(
                    "HOST_NAME",
                    format!(
                        "is not set and the machine's host name '{machine}' is not valid for it ({expected}): set HOST_NAME"
                    ),
                );
            }
            machine
        }
    };
    Some(FleetConfig { url, host_name })
}

/// `FLEET_DATABASE_URL`, checked for its form (scheme, host, libpq's `sslmode` values);
/// messages show it with the password hidden.
fn fleet_url(r: &mut Reader<'_>) -> Option<Secret> {
    const SSLMODES: [&str; 6] = [
        "disable",
        "allow",
        "prefer",
        "require",
        "verify-ca",
        "verify-full",
    ];
    let raw = r.optional("FLEET_DATABASE_URL")?;
    let shown = hb_core::redact_password(raw);
    let problem = match url::Url::parse(raw) {
        Err(_) => Some("not a URL".to_owned()),
        Ok(u) if !matches!(u.scheme(), "postgres" | "postgresql") => {
            Some(format!("the scheme is {}", u.scheme()))
        }
        Ok(u) if u.host_str().is_none_or(str::is_empty) => Some("it has no host".to_owned()),
        Ok(u) => u
            .query_pairs()
            .find(|(k, v)| k == "sslmode" && !SSLMODES.contains(&v.as_ref()))
            .map(|(_, v)| format!("sslmode={v} is not one of {}", SSLMODES.join(", "))),
    };
    if let Some(why) = problem {
        r.error(
            "FLEET_DATABASE_URL",
            format!(
                "{shown} is not valid: {why} (expected postgres://user:password@host:port/database)"
            ),
        );
        return None;
    }
    Some(Secret::new(raw))
}

fn valid_host_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The kernel's host name (`/proc/sys/kernel/hostname`), empty when unreadable.
fn machine_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

pub(crate) fn load_dashboard(env: &EnvSource) -> Result<DashboardConfig, ConfigErrors> {
    let mut r = Reader::new(env);
    let db_path = r.db_path();
    let target_data_points = r.integer("TARGET_DATA_POINTS", 30, 1, 10_000) as u32;
    let (tz_name, tz) = r.tz();
    let log_format = r.log_format();
    let dashboard_bind = r
        .optional("DASHBOARD_BIND")
        .unwrap_or("0.0.0.0:8000")
        .to_owned();
    if dashboard_bind.parse::<std::net::SocketAddr>().is_err() {
        r.error(
            "DASHBOARD_BIND",
            format!("'{dashboard_bind}' is not valid (expected IP:PORT such as 0.0.0.0:8000)"),
        );
    }
    let cors_origins: Vec<String> = r
        .optional("CORS_ORIGINS")
        .map(|raw| {
            raw.split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    for origin in &cors_origins {
        let ok = origin == "*"
            || url::Url::parse(origin)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.path() == "/");
        if !ok {
            r.error(
                "CORS_ORIGINS",
                format!("'{origin}' is not an origin (expected scheme://host[:port], comma-separated, or *)"),
            );
        }
    }
    let mask_errors = r.boolean("DASHBOARD_MASK_ERRORS", true);
    let slow_ms = slow_thresholds(&mut r);
    let tls_expiry_warn_days = r.tls_expiry_warn_days();
    let maintenance = r.maintenance_windows(&tz);
    let umami_script_url = r.optional("UMAMI_SCRIPT_URL").map(str::to_owned);
    let umami_website_id = r.optional("UMAMI_WEBSITE_ID").map(str::to_owned);
    let fleet_url = fleet_url(&mut r);
    r.finish(DashboardConfig {
        db_path,
        fleet_url,
        target_data_points,
        tz_name,
        tz,
        dashboard_bind,
        cors_origins,
        mask_errors,
        slow_ms,
        tls_expiry_warn_days,
        maintenance,
        umami_script_url,
        umami_website_id,
        log_format,
        warnings: Vec::new(),
    })
}

pub(crate) fn load_mock(env: &EnvSource) -> Result<MockConfig, ConfigErrors> {
    let mut r = Reader::new(env);
    let secret_key = r.header_safe_secret("SECRET_KEY");
    let mock_port = r.integer("MOCK_PORT", 8080, 0, 65_535) as u16;
    let log_format = r.log_format();
    let mut warnings = Vec::new();
    if secret_key.is_none() && !env.is_not_utf8("SECRET_KEY") {
        warnings.push(
            "SECRET_KEY is not set: the mock accepts heartbeats without a key check".to_owned(),
        );
    }
    r.finish(MockConfig {
        secret_key,
        mock_port,
        log_format,
        warnings,
    })
}

pub(crate) fn load_healthcheck(env: &EnvSource) -> Result<HealthcheckConfig, ConfigErrors> {
    let mut r = Reader::new(env);
    let db_path = r.db_path();
    let loop_interval = r.loop_interval();
    let log_format = r.log_format();
    r.finish(HealthcheckConfig {
        db_path,
        loop_interval,
        log_format,
        warnings: Vec::new(),
    })
}

/// A latency threshold: a positive number of milliseconds (decimals allowed).
fn slow_ms_value(raw: &str) -> Option<f64> {
    f64::from_str(raw)
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0 && *v <= SLOW_MAX_MS)
}

/// `SERVICE_SLOW_MS` and every `SERVICE_SLOW_MS_<name>` (`off` exempts a service).
fn slow_thresholds(r: &mut Reader<'_>) -> SlowThresholds {
    let expected = format!("a number of milliseconds above 0 and at most {SLOW_MAX_MS}");
    let default_ms = r.parsed(SLOW, None, &expected, |raw| slow_ms_value(raw).map(Some));
    let env = r.env;
    for name in env.not_utf8_with_prefix(SLOW_PREFIX) {
        r.error(name, "is not valid UTF-8 text (name or value)");
    }
    let mut per_service = BTreeMap::new();
    for (name, raw) in env.with_prefix(SLOW_PREFIX) {
        let var = format!("{SLOW_PREFIX}{name}");
        let raw = raw.trim();
        if name.is_empty() {
            r.error(
                &var,
                "a threshold needs a service name after the prefix (SERVICE_SLOW_MS_<name>)",
            );
            continue;
        }
        if raw.eq_ignore_ascii_case("off") {
            per_service.insert(name.to_owned(), None);
            continue;
        }
        match slow_ms_value(raw) {
            Some(v) => {
                per_service.insert(name.to_owned(), Some(v));
            }
            None => r.error(
                &var,
                format!("'{raw}' is not valid (expected {expected}, or off)"),
            ),
        }
    }
    SlowThresholds {
        default_ms,
        per_service,
    }
}

/// Control characters other than tab: what an HTTP header value cannot carry.
pub(crate) fn has_control_chars(value: &str) -> bool {
    value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

fn read_services(r: &mut Reader<'_>, warnings: &mut Vec<String>) -> Vec<ServiceSpec> {
    let env = r.env;
    for name in env
        .not_utf8_with_prefix(URL_PREFIX)
        .chain(env.not_utf8_with_prefix(HEADERS_PREFIX))
    {
        r.error(name, "is not valid UTF-8 text (name or value)");
    }
    let urls: BTreeMap<String, String> = r
        .env
        .with_prefix(URL_PREFIX)
        .map(|(name, v)| (name.to_owned(), v.trim().to_owned()))
        .collect();
    let headers: BTreeMap<String, String> = r
        .env
        .with_prefix(HEADERS_PREFIX)
        .map(|(name, v)| (name.to_owned(), v.trim().to_owned()))
        .collect();

    if urls.contains_key("") {
        r.error(
            URL_PREFIX,
            "a service needs a name after the prefix (SERVICE_URL_<name>)",
        );
    }
    for name in headers.keys() {
        if !urls.contains_key(name) {
            r.error(
                &format!("{HEADERS_PREFIX}{name}"),
                format!("there is no {URL_PREFIX}{name} for these headers"),
            );
        }
    }
    for prefix in OPTION_PREFIXES {
        for name in env.not_utf8_with_prefix(prefix) {
            r.error(name, "is not valid UTF-8 text (name or value)");
        }
        for (name, _) in env.with_prefix(prefix) {
            if prefix == TIMEOUT_PREFIX && name == GLOBAL_TIMEOUT_SUFFIX {
                continue;
            }
            if !urls.contains_key(name) {
                r.error(
                    &format!("{prefix}{name}"),
                    format!("there is no {URL_PREFIX}{name} for this option"),
                );
            }
        }
    }

    let selected: Vec<String> = match r.optional("SERVICE_NAMES") {
        Some(list) => {
            let mut names: Vec<String> = Vec::new();
            for name in list.split(',').map(str::trim) {
                if name.is_empty() {
                    r.error("SERVICE_NAMES", format!("'{list}' has an empty name"));
                } else if names.iter().any(|n| n == name) {
                    r.error("SERVICE_NAMES", format!("'{name}' is listed twice"));
                } else if !urls.contains_key(name) {
                    r.error(
                        "SERVICE_NAMES",
                        format!("'{name}' has no {URL_PREFIX}{name}"),
                    );
                } else {
                    names.push(name.to_owned());
                }
            }
            names
        }
        None => urls.keys().filter(|n| !n.is_empty()).cloned().collect(),
    };

    let mut services = Vec::new();
    for name in selected {
        let var = format!("{URL_PREFIX}{name}");
        let raw = &urls[&name];
        if let Some(spec) = read_service(r, &name, &var, raw, headers.get(&name)) {
            services.push(spec);
        }
    }
    if r.optional("SERVICE_NAMES").is_none() {
        services.sort_by(|a, b| compare_services((a.kind(), &a.name), (b.kind(), &b.name)));
    }
    let mut by_folded: BTreeMap<String, &str> = BTreeMap::new();
    for s in &services {
        if let Some(first) = by_folded.insert(s.name.to_lowercase(), &s.name) {
            warnings.push(format!(
                "{URL_PREFIX}{first} and {URL_PREFIX}{} differ only in case: they are two separate services",
                s.name
            ));
        }
    }
    if services.is_empty() && r.errors.is_empty() {
        r.error(
            URL_PREFIX,
            "no service is configured (set SERVICE_URL_<name>=http(s)://..., tcp://host:port or docker:<container>)",
        );
    }
    services
}

fn read_service(
    r: &mut Reader<'_>,
    name: &str,
    var: &str,
    raw: &str,
    headers: Option<&String>,
) -> Option<ServiceSpec> {
    if raw.is_empty() {
        r.error(
            var,
            "is empty (expected http(s)://..., tcp://host:port or docker:<container>)",
        );
        return None;
    }
    let display_url = redact_url(raw);
    if let Some(container) = raw.strip_prefix("docker:") {
        let valid = !container.is_empty()
            && container
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric())
            && container
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid {
            r.error(
                var,
                format!("'{raw}' has no valid container name (expected docker:<name> with letters, digits, '_', '.', '-')"),
            );
            return None;
        }
        if headers.is_some() {
            r.error(
                &format!("{HEADERS_PREFIX}{name}"),
                "headers apply only to http(s) services",
            );
        }
        refuse_options(r, name, &OPTION_PREFIXES, "docker: checks");
        return Some(ServiceSpec {
            name: name.to_owned(),
            target: Target::Docker {
                container: container.to_owned(),
            },
            display_url,
            options: CheckOptions::default(),
        });
    }
    if raw.starts_with("tcp://") {
        let (host, port) = tcp_target(raw).map_err(|why| r.error(var, why)).ok()?;
        if headers.is_some() {
            r.error(
                &format!("{HEADERS_PREFIX}{name}"),
                "headers apply only to http(s) services",
            );
        }
        refuse_options(
            r,
            name,
            &[EXPECT_PREFIX, KEYWORD_PREFIX, METHOD_PREFIX],
            "tcp:// checks",
        );
        let options = CheckOptions {
            timeout: service_timeout(r, name),
            ..CheckOptions::default()
        };
        return Some(ServiceSpec {
            name: name.to_owned(),
            target: Target::Tcp { host, port },
            display_url,
            options,
        });
    }
    if !(raw.starts_with("http://") || raw.starts_with("https://")) {
        let scheme = raw.split_once(':').map_or(raw, |(s, _)| s);
        r.error(
            var,
            format!(
                "'{}' has unknown scheme '{scheme}' (expected http://, https://, tcp:// or docker:)",
                display_url
            ),
        );
        return None;
    }
    let url = r.http_url(var, raw, false)?;
    let headers = match headers {
        Some(raw) => parse_headers(r, &format!("{HEADERS_PREFIX}{name}"), raw)?,
        None => Vec::new(),
    };
    let options = http_options(r, name);
    Some(ServiceSpec {
        name: name.to_owned(),
        target: Target::Http { url, headers },
        display_url,
        options,
    })
}

/// `SERVICE_TIMEOUT_<name>`, read like `SERVICE_TIMEOUT_SECONDS` (none for a service named
/// `SECONDS`, whose variable would be the global one).
fn service_timeout(r: &mut Reader<'_>, name: &str) -> Option<Duration> {
    if name == GLOBAL_TIMEOUT_SUFFIX {
        return None;
    }
    let var = format!("{TIMEOUT_PREFIX}{name}");
    r.optional(&var)?;
    Some(r.check_timeout(&var))
}

/// Options that make no sense for this kind of check are refused, not silently ignored.
fn refuse_options(r: &mut Reader<'_>, name: &str, prefixes: &[&str], kind: &str) {
    for prefix in prefixes {
        let var = format!("{prefix}{name}");
        if prefix == &TIMEOUT_PREFIX && name == GLOBAL_TIMEOUT_SUFFIX {
            continue;
        }
        if r.optional(&var).is_some() {
            let what = if prefix == &TIMEOUT_PREFIX {
                "uses SERVICE_TIMEOUT_SECONDS; a per-service timeout applies to http(s) and tcp:// services"
            } else {
                "applies only to http(s) services"
            };
            r.error(&var, format!("{kind} cannot take this option: {what}"));
        }
    }
}

/// The http(s) options of service `name`.
fn http_options(r: &mut Reader<'_>, name: &str) -> CheckOptions {
    let timeout = service_timeout(r, name);
    let expect_var = format!("{EXPECT_PREFIX}{name}");
    let expect = r.optional(&expect_var).and_then(|raw| match status_ranges(raw) {
        Ok(ranges) => Some(ranges),
        Err(why) => {
            r.error(&expect_var, format!("'{raw}' is not valid: {why} (expected status codes and ranges from 100 to 599, such as 200-299,401)"));
            None
        }
    });
    let keyword_var = format!("{KEYWORD_PREFIX}{name}");
    let keyword = r.optional(&keyword_var).map(str::to_owned);
    let method_var = format!("{METHOD_PREFIX}{name}");
    let method = r
        .optional(&method_var)
        .and_then(|raw| match raw.to_ascii_uppercase().as_str() {
            "HEAD" => Some(HttpMethod::Head),
            "GET" => Some(HttpMethod::Get),
            _ => {
                r.error(
                    &method_var,
                    format!("'{raw}' is not valid (expected HEAD or GET)"),
                );
                None
            }
        });
    if keyword.is_some() && method == Some(HttpMethod::Head) {
        r.error(
            &method_var,
            format!("HEAD reads no body, but {keyword_var} needs one (remove it, or use GET)"),
        );
    }
    CheckOptions {
        timeout,
        expect,
        keyword,
        method,
    }
}

/// `200-299,401`: codes and inclusive ranges, each from 100 to 599.
fn status_ranges(raw: &str) -> Result<Vec<(u16, u16)>, String> {
    let code = |t: &str| -> Result<u16, String> {
        u16::from_str(t.trim())
            .ok()
            .filter(|c| (100..=599).contains(c))
            .ok_or_else(|| format!("'{}' is not a status code", t.trim()))
    };
    let mut out = Vec::new();
    for part in raw.split(',').map(str::trim) {
        if part.is_empty() {
            return Err("an entry is empty".to_owned());
        }
        let range = match part.split_once('-') {
            Some((lo, hi)) => (code(lo)?, code(hi)?),
            None => {
                let c = code(part)?;
                (c, c)
            }
        };
        if range.0 > range.1 {
            return Err(format!("'{part}' is an empty range"));
        }
        out.push(range);
    }
    Ok(out)
}

/// `tcp://host:port` (an IPv6 host in brackets), nothing else: no credentials, path, query or
/// fragment, since a bare connection check would silently ignore them. The message names what
/// is wrong; the URL is shown without credentials.
fn tcp_target(raw: &str) -> Result<(String, u16), String> {
    const EXPECTED: &str = "(expected tcp://host:port)";
    let shown = redact_url(raw);
    let url = url::Url::parse(raw)
        .map_err(|e| format!("'{shown}' is not a valid URL ({e}) {EXPECTED}"))?;
    let host = match url.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        _ => return Err(format!("'{shown}' has no host {EXPECTED}")),
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "'{shown}' carries credentials, which a tcp check cannot use {EXPECTED}"
        ));
    }
    let Some(port) = url.port() else {
        return Err(format!("'{shown}' has no port {EXPECTED}"));
    };
    if port == 0 {
        return Err(format!("'{shown}' has port 0 {EXPECTED}"));
    }
    if !(url.path().is_empty() || url.path() == "/")
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(format!(
            "'{shown}' has a path, query or fragment {EXPECTED}"
        ));
    }
    Ok((host, port))
}

/// `Key:Value,Key:Value`; a value may contain `:`. Values are secrets and never echoed.
fn parse_headers(r: &mut Reader<'_>, var: &str, raw: &str) -> Option<Vec<(String, Secret)>> {
    let mut out = Vec::new();
    let mut ok = true;
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once(':') else {
            // Without a ':' the text may be a bare token: show only its length.
            r.error(
                var,
                format!(
                    "an entry of {} characters has no ':' (expected Key:Value)",
                    pair.len()
                ),
            );
            ok = false;
            continue;
        };
        let key = key.trim();
        let value = value.trim();
        let key_valid = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !key_valid {
            r.error(var, format!("'{key}' is not a valid header name"));
            ok = false;
            continue;
        }
        if has_control_chars(value) {
            r.error(
                var,
                format!("the value of '{key}' contains control characters"),
            );
            ok = false;
            continue;
        }
        out.push((key.to_owned(), Secret::new(value)));
    }
    ok.then_some(out)
}

pub(crate) fn secret_shown(s: &Option<Secret>) -> String {
    match s {
        Some(_) => "*** (set)".to_owned(),
        None => "(unset)".to_owned(),
    }
}

/// A URL that may carry a token in its path: scheme, host and port only.
pub(crate) fn secret_url_shown(s: &Option<Secret>) -> String {
    match s {
        Some(u) => match url::Url::parse(u.expose()) {
            Ok(u) => format!(
                "{}://{}{}/*** (path redacted)",
                u.scheme(),
                u.host_str().unwrap_or(""),
                u.port().map(|p| format!(":{p}")).unwrap_or_default()
            ),
            Err(_) => "***".to_owned(),
        },
        None => "(unset)".to_owned(),
    }
}

pub(crate) fn log_format_shown(f: LogFormat) -> String {
    match f {
        LogFormat::Text => "text".to_owned(),
        LogFormat::Json => "json".to_owned(),
    }
}

/// The windows as they were read, `; `-separated.
fn windows_shown(m: &hb_core::maintenance::MaintenanceSchedule) -> String {
    if m.is_empty() {
        return "(none)".to_owned();
    }
    m.windows()
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

pub(crate) fn lines(pairs: Vec<(&str, String)>) -> Vec<(String, String)> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

pub(crate) fn describe_agent(c: &AgentConfig) -> Vec<(String, String)> {
    let mut out = lines(vec![
        (
            "LOOP_INTERVAL_SECONDS",
            format!("{}", c.loop_interval.as_secs_f64()),
        ),
        (
            "STATUS_CHANGE_THRESHOLD",
            c.status_change_threshold.to_string(),
        ),
        (
            "SERVICE_TIMEOUT_SECONDS",
            format!("{}", c.service_timeout.as_secs_f64()),
        ),
        ("TZ", c.tz_name.clone()),
        ("SECRET_KEY", secret_shown(&c.secret_key)),
        ("HEARTBEAT_URL", secret_url_shown(&c.heartbeat_url)),
        ("N8N_WEBHOOK_URL", secret_url_shown(&c.webhook_url)),
        (
            "ALERT_REMINDER_MINUTES",
            c.alert_reminder.map_or("0 (off)".to_owned(), |d| {
                format!("{}", d.as_secs_f64() / 60.0)
            }),
        ),
        ("MAINTENANCE_WINDOWS", windows_shown(&c.maintenance)),
        ("SQLITE_DB_PATH", c.db_path.display().to_string()),
        (
            "INTERNAL_DNS_OVERRIDE_IP",
            c.dns_override_ip
                .map_or("(unset)".to_owned(), |ip| ip.to_string()),
        ),
        ("PING_URL", redact_url(&c.ping_url)),
        ("DOCKER_HOST", redact_url(&c.docker_host)),
        ("FORCE_IPV4", c.force_ipv4.to_string()),
        ("CHECK_CONCURRENCY", c.check_concurrency.to_string()),
        (
            "CHECKS_PER_TARGET",
            match c.checks_per_target {
                0 => "0 (unlimited)".to_owned(),
                n => n.to_string(),
            },
        ),
        (
            "TLS_EXPIRY_WARN_DAYS",
            match c.tls_expiry_warn_days {
                0 => "0 (no certificate alerts)".to_owned(),
                n => n.to_string(),
            },
        ),
        (
            "FLEET_DATABASE_URL",
            c.fleet
                .as_ref()
                .map_or("(not set: this host only)".to_owned(), |f| {
                    hb_core::redact_password(f.url.expose())
                }),
        ),
        (
            "HOST_NAME",
            c.fleet
                .as_ref()
                .map_or("(unused without FLEET_DATABASE_URL)".to_owned(), |f| {
                    f.host_name.clone()
                }),
        ),
        ("AGENT_WORKER_THREADS", c.agent_worker_threads.to_string()),
        ("PENDING_CYCLES_MAX", c.pending_cycles_max.to_string()),
        (
            "ALERT_REDELIVER_MAX_AGE_SECONDS",
            c.alert_redeliver_max_age.as_secs().to_string(),
        ),
        ("HOST_DISK_PATH", c.host_disk_path.display().to_string()),
        ("RETENTION_DAYS", c.retention.raw.to_string()),
        (
            "RETENTION_MINUTE_ROLLUPS_DAYS",
            c.retention.minute_rollups.to_string(),
        ),
        (
            "RETENTION_6MIN_ROLLUPS_DAYS",
            c.retention.six_minute_rollups.to_string(),
        ),
        (
            "RETENTION_HOUR_ROLLUPS_DAYS",
            c.retention.hour_rollups.to_string(),
        ),
        (
            "RETENTION_DAY_ROLLUPS_DAYS",
            c.retention.day_rollups.to_string(),
        ),
        ("RETENTION_ALERTS_DAYS", c.retention.alerts.to_string()),
        ("LOG_FORMAT", log_format_shown(c.log_format)),
    ]);
    out.push((
        "SERVICE_NAMES".to_owned(),
        c.services
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(","),
    ));
    for s in &c.services {
        out.push((format!("{URL_PREFIX}{}", s.name), s.display_url.clone()));
        if let Target::Http { headers, .. } = &s.target
            && !headers.is_empty()
        {
            let shown: Vec<String> = headers.iter().map(|(k, _)| format!("{k}:***")).collect();
            out.push((format!("{HEADERS_PREFIX}{}", s.name), shown.join(",")));
        }
        let o = &s.options;
        if let Some(t) = o.timeout {
            out.push((
                format!("{TIMEOUT_PREFIX}{}", s.name),
                format!("{}", t.as_secs_f64()),
            ));
        }
        if let Some(ranges) = &o.expect {
            let shown: Vec<String> = ranges
                .iter()
                .map(|(lo, hi)| {
                    if lo == hi {
                        lo.to_string()
                    } else {
                        format!("{lo}-{hi}")
                    }
                })
                .collect();
            out.push((format!("{EXPECT_PREFIX}{}", s.name), shown.join(",")));
        }
        if let Some(k) = &o.keyword {
            out.push((format!("{KEYWORD_PREFIX}{}", s.name), format!("{k:?}")));
        }
        if let Some(m) = o.method {
            let m = match m {
                HttpMethod::Head => "HEAD",
                HttpMethod::Get => "GET",
            };
            out.push((format!("{METHOD_PREFIX}{}", s.name), m.to_owned()));
        }
    }
    out
}

pub(crate) fn describe_dashboard(c: &DashboardConfig) -> Vec<(String, String)> {
    let or_unset = |v: &Option<String>| v.clone().unwrap_or_else(|| "(unset)".to_owned());
    let mut out = lines(vec![
        ("SQLITE_DB_PATH", c.db_path.display().to_string()),
        (
            "FLEET_DATABASE_URL",
            c.fleet_url
                .as_ref()
                .map_or("(not set: the SQLite file above)".to_owned(), |url| {
                    hb_core::redact_password(url.expose())
                }),
        ),
        ("TARGET_DATA_POINTS", c.target_data_points.to_string()),
        ("TZ", c.tz_name.clone()),
        ("LOG_FORMAT", log_format_shown(c.log_format)),
        ("DASHBOARD_BIND", c.dashboard_bind.clone()),
        ("CORS_ORIGINS", c.cors_origins.join(",")),
        ("DASHBOARD_MASK_ERRORS", c.mask_errors.to_string()),
        ("UMAMI_SCRIPT_URL", or_unset(&c.umami_script_url)),
        ("UMAMI_WEBSITE_ID", or_unset(&c.umami_website_id)),
    ]);
    let shown = |v: Option<f64>| v.map_or_else(|| "(unset)".to_owned(), |ms| format!("{ms}"));
    out.push((SLOW.to_owned(), shown(c.slow_ms.default_ms)));
    for (name, v) in &c.slow_ms.per_service {
        let value = v.map_or_else(|| "off".to_owned(), |ms| format!("{ms}"));
        out.push((format!("{SLOW_PREFIX}{name}"), value));
    }
    out
}

pub(crate) fn describe_mock(c: &MockConfig) -> Vec<(String, String)> {
    lines(vec![
        ("SECRET_KEY", secret_shown(&c.secret_key)),
        ("MOCK_PORT", c.mock_port.to_string()),
        ("LOG_FORMAT", log_format_shown(c.log_format)),
    ])
}

pub(crate) fn describe_healthcheck(c: &HealthcheckConfig) -> Vec<(String, String)> {
    lines(vec![
        ("SQLITE_DB_PATH", c.db_path.display().to_string()),
        (
            "LOOP_INTERVAL_SECONDS",
            format!("{}", c.loop_interval.as_secs_f64()),
        ),
        ("LOG_FORMAT", log_format_shown(c.log_format)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_pairs(pairs: &[(&str, &str)]) -> Result<AgentConfig, ConfigErrors> {
        load_agent(&EnvSource::from_pairs(pairs.iter().copied()))
    }

    #[test]
    fn defaults_and_discovery() {
        let c = load_pairs(&[
            ("SERVICE_URL_web", "https://u:p@example.com/health"),
            ("SERVICE_URL_db", "docker:postgres"),
            ("SERVICE_URL_Api", "http://127.0.0.1:9000/"),
            (
                "SERVICE_HEADERS_Api",
                "Authorization:Bearer a:b:c, X-Check:true",
            ),
        ])
        .expect("valid");
        assert_eq!(c.loop_interval, Duration::from_secs(10));
        assert_eq!(c.status_change_threshold, 4);
        assert_eq!(c.service_timeout, Duration::from_secs(2));
        assert_eq!(c.tz_name, "UTC");
        assert_eq!(c.db_path, PathBuf::from("data/metrics.db"));
        assert_eq!(c.ping_url, "http://www.google.com");
        assert_eq!(c.docker_host, "unix:///var/run/docker.sock");
        assert!(c.force_ipv4);
        let names: Vec<&str> = c.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Api", "web", "db"]);
        assert_eq!(c.services[1].display_url, "https://example.com/health");
        match &c.services[0].target {
            Target::Http { headers, .. } => {
                assert_eq!(headers.len(), 2);
                assert_eq!(headers[0].0, "Authorization");
                assert_eq!(headers[0].1.expose(), "Bearer a:b:c");
                assert_eq!(headers[1].1.expose(), "true");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(c.warnings.len(), 2);
    }

    #[test]
    fn retention_defaults_zero_and_minimums() {
        let c = load_pairs(&[("SERVICE_URL_web", "http://127.0.0.1/")]).expect("valid");
        assert_eq!(
            c.retention,
            RetentionDays {
                raw: 30,
                minute_rollups: 2,
                six_minute_rollups: 35,
                hour_rollups: 400,
                day_rollups: 0,
                alerts: 400,
            }
        );
        let c = load_pairs(&[
            ("SERVICE_URL_web", "http://127.0.0.1/"),
            ("RETENTION_DAYS", "0"),
            ("RETENTION_6MIN_ROLLUPS_DAYS", "31"),
            ("RETENTION_HOUR_ROLLUPS_DAYS", "0"),
            ("RETENTION_DAY_ROLLUPS_DAYS", "3650"),
            ("RETENTION_ALERTS_DAYS", "365"),
        ])
        .expect("valid");
        assert_eq!(c.retention.raw, 0);
        assert_eq!(c.retention.six_minute_rollups, 31);
        assert_eq!(c.retention.hour_rollups, 0);
        assert_eq!(c.retention.day_rollups, 3650);
        assert_eq!(c.retention.alerts, 365);
        let table = [
            ("RETENTION_DAYS", "-1"),
            ("RETENTION_DAYS", "1.5"),
            ("RETENTION_DAYS", "36501"),
            ("RETENTION_MINUTE_ROLLUPS_DAYS", "x"),
            ("RETENTION_6MIN_ROLLUPS_DAYS", "30"),
            ("RETENTION_HOUR_ROLLUPS_DAYS", "365"),
            ("RETENTION_DAY_ROLLUPS_DAYS", "100"),
            ("RETENTION_ALERTS_DAYS", "364"),
        ];
        for (name, value) in table {
            let errors = load_pairs(&[("SERVICE_URL_web", "http://127.0.0.1/"), (name, value)])
                .expect_err(name)
                .0;
            assert_eq!(errors.len(), 1, "{name}={value}: {errors:?}");
            assert_eq!(errors[0].variable, name);
            assert!(errors[0].message.contains(value), "{}", errors[0].message);
            assert!(errors[0].message.contains("0 to keep everything"));
        }
    }

    #[test]
    fn tcp_targets() {
        let good = [
            ("tcp://db.internal:5432", "db.internal", 5432),
            ("tcp://127.0.0.1:6379/", "127.0.0.1", 6379),
            ("tcp://[::1]:22", "::1", 22),
            ("tcp://Mail.Example.com:25", "Mail.Example.com", 25),
        ];
        for (raw, host, port) in good {
            let c = load_pairs(&[("SERVICE_URL_x", raw)]).expect(raw);
            assert_eq!(
                c.services[0].target,
                Target::Tcp {
                    host: host.to_owned(),
                    port
                },
                "{raw}"
            );
            assert_eq!(c.services[0].kind(), hb_core::ServiceKind::Tcp);
            assert_eq!(c.services[0].display_url, raw);
        }
        let bad = [
            ("tcp://db", "has no port"),
            ("tcp://db:", "has no port"),
            ("tcp://:5432", "not a valid URL"),
            ("tcp://", "has no host"),
            ("tcp://db:0", "has port 0"),
            ("tcp://db:70000", "not a valid URL"),
            ("tcp://db:5432/x", "path, query or fragment"),
            ("tcp://db:5432?x=1", "path, query or fragment"),
            ("tcp://u:hunter2@db:5432", "credentials"),
        ];
        for (raw, why) in bad {
            let e = load_pairs(&[("SERVICE_URL_x", raw)]).expect_err(raw);
            assert_eq!(e.0.len(), 1, "{raw}: {e}");
            assert_eq!(e.0[0].variable, "SERVICE_URL_x", "{raw}");
            assert!(e.0[0].message.contains(why), "{raw}: {}", e.0[0].message);
            assert!(
                e.0[0].message.contains("expected tcp://host:port"),
                "{raw}: {}",
                e.0[0].message
            );
            assert!(!e.0[0].message.contains("hunter2"), "{}", e.0[0].message);
        }
        let e = load_pairs(&[
            ("SERVICE_URL_x", "tcp://db:5432"),
            ("SERVICE_HEADERS_x", "A:b"),
        ])
        .expect_err("headers on tcp");
        assert_eq!(e.0[0].variable, "SERVICE_HEADERS_x");
    }

    #[test]
    fn per_service_options() {
        let c = load_pairs(&[
            ("SERVICE_URL_web", "https://example.com/"),
            ("SERVICE_URL_db", "tcp://db:5432"),
            ("SERVICE_URL_plain", "http://127.0.0.1/"),
            ("SERVICE_TIMEOUT_web", "7.5"),
            ("SERVICE_EXPECT_web", " 200-299, 401 ,418"),
            ("SERVICE_KEYWORD_web", "status: ok"),
            ("SERVICE_METHOD_web", "get"),
            ("SERVICE_TIMEOUT_db", "1"),
            // The global timeout, not a service named SECONDS.
            ("SERVICE_TIMEOUT_SECONDS", "3"),
        ])
        .expect("valid");
        let by_name = |n: &str| c.services.iter().find(|s| s.name == n).expect(n);
        let web = &by_name("web").options;
        assert_eq!(web.timeout, Some(Duration::from_millis(7500)));
        assert_eq!(web.expect, Some(vec![(200, 299), (401, 401), (418, 418)]));
        assert_eq!(web.keyword.as_deref(), Some("status: ok"));
        assert_eq!(web.method, Some(HttpMethod::Get));
        assert!(web.healthy_code(401) && web.healthy_code(250) && !web.healthy_code(302));
        assert_eq!(by_name("db").options.timeout, Some(Duration::from_secs(1)));
        assert_eq!(by_name("plain").options, CheckOptions::default());
        assert!(CheckOptions::default().healthy_code(302));
        assert!(!CheckOptions::default().healthy_code(404));
        assert_eq!(c.service_timeout, Duration::from_secs(3));
        // A timeout not shorter than the interval works, with a warning.
        let c = load_pairs(&[
            ("SERVICE_URL_web", "http://127.0.0.1/"),
            ("SERVICE_TIMEOUT_web", "10"),
        ])
        .expect("valid");
        assert!(
            c.warnings
                .iter()
                .any(|w| w.starts_with("SERVICE_TIMEOUT_web (10) is not shorter")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn per_service_option_errors_name_the_variable() {
        // (extra variables, the variable the error names, part of its message)
        type Row = (
            &'static [(&'static str, &'static str)],
            &'static str,
            &'static str,
        );
        let table: &[Row] = &[
            (
                &[("SERVICE_EXPECT_web", "2xx")],
                "SERVICE_EXPECT_web",
                "'2xx' is not a status code",
            ),
            (
                &[("SERVICE_EXPECT_web", "200,,401")],
                "SERVICE_EXPECT_web",
                "an entry is empty",
            ),
            (
                &[("SERVICE_EXPECT_web", "299-200")],
                "SERVICE_EXPECT_web",
                "empty range",
            ),
            (
                &[("SERVICE_EXPECT_web", "200-600")],
                "SERVICE_EXPECT_web",
                "'600' is not a status code",
            ),
            (
                &[("SERVICE_EXPECT_web", "99")],
                "SERVICE_EXPECT_web",
                "from 100 to 599",
            ),
            (
                &[("SERVICE_METHOD_web", "POST")],
                "SERVICE_METHOD_web",
                "expected HEAD or GET",
            ),
            (
                &[
                    ("SERVICE_METHOD_web", "HEAD"),
                    ("SERVICE_KEYWORD_web", "ok"),
                ],
                "SERVICE_METHOD_web",
                "HEAD reads no body",
            ),
            (
                &[("SERVICE_TIMEOUT_web", "0")],
                "SERVICE_TIMEOUT_web",
                "a number of seconds from",
            ),
            (
                &[("SERVICE_TIMEOUT_web", "soon")],
                "SERVICE_TIMEOUT_web",
                "",
            ),
            (
                &[("SERVICE_KEYWORD_wbe", "ok")],
                "SERVICE_KEYWORD_wbe",
                "there is no SERVICE_URL_wbe",
            ),
            (
                &[("SERVICE_EXPECT_ctr", "200")],
                "SERVICE_EXPECT_ctr",
                "docker: checks cannot take",
            ),
            (
                &[("SERVICE_TIMEOUT_ctr", "5")],
                "SERVICE_TIMEOUT_ctr",
                "docker: checks cannot take",
            ),
            (
                &[("SERVICE_KEYWORD_db", "ok")],
                "SERVICE_KEYWORD_db",
                "tcp:// checks cannot take",
            ),
            (
                &[("SERVICE_METHOD_db", "GET")],
                "SERVICE_METHOD_db",
                "tcp:// checks cannot take",
            ),
        ];
        for (extra, variable, why) in table {
            let mut pairs = vec![
                ("SERVICE_URL_web", "http://127.0.0.1/"),
                ("SERVICE_URL_ctr", "docker:web"),
                ("SERVICE_URL_db", "tcp://db:5432"),
            ];
            pairs.extend_from_slice(extra);
            let e = load_pairs(&pairs).expect_err(variable);
            assert_eq!(e.0.len(), 1, "{extra:?}: {e}");
            assert_eq!(e.0[0].variable, *variable, "{extra:?}");
            assert!(
                e.0[0].message.contains(why),
                "{extra:?}: {}",
                e.0[0].message
            );
        }
    }

    #[test]
    fn tcp_services_are_ordered_with_http_ones() {
        let c = load_pairs(&[
            ("SERVICE_URL_web", "http://127.0.0.1:9000/"),
            ("SERVICE_URL_db", "docker:postgres"),
            ("SERVICE_URL_pg", "tcp://127.0.0.1:5432"),
            ("SERVICE_URL_Api", "http://127.0.0.1:9001/"),
        ])
        .expect("valid");
        let names: Vec<&str> = c.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Api", "pg", "web", "db"]);
    }

    #[test]
    fn service_names_restricts_and_orders() {
        let c = load_pairs(&[
            ("SERVICE_URL_a", "http://a.test"),
            ("SERVICE_URL_b", "docker:b"),
            ("SERVICE_URL_c", "http://c.test"),
            ("SERVICE_NAMES", " b, a "),
        ])
        .expect("valid");
        let names: Vec<&str> = c.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["b", "a"]);
    }

    #[test]
    fn empty_optional_values_mean_unset() {
        let c = load_pairs(&[
            ("SERVICE_URL_a", "http://a.test"),
            ("N8N_WEBHOOK_URL", ""),
            ("INTERNAL_DNS_OVERRIDE_IP", "  "),
            ("TZ", "America/Lima"),
        ])
        .expect("valid");
        assert!(c.webhook_url.is_none());
        assert!(c.dns_override_ip.is_none());
        assert_eq!(c.tz_name, "America/Lima");
    }

    #[test]
    fn all_problems_are_reported_together() {
        let errs = load_pairs(&[
            ("SERVICE_URL_a", "ftp://a.test"),
            ("LOOP_INTERVAL_SECONDS", "ten"),
            ("TZ", "Mars/Base"),
        ])
        .expect_err("invalid");
        let vars: Vec<&str> = errs.0.iter().map(|e| e.variable.as_str()).collect();
        assert_eq!(vars, ["LOOP_INTERVAL_SECONDS", "TZ", "SERVICE_URL_a"]);
    }

    #[test]
    fn header_errors_never_echo_values() {
        let errs = load_pairs(&[
            ("SERVICE_URL_a", "http://a.test"),
            ("SERVICE_HEADERS_a", "Authorization Bearer topsecret"),
        ])
        .expect_err("invalid");
        let text = errs.to_string();
        assert!(text.contains("SERVICE_HEADERS_a"), "{text}");
        assert!(!text.contains("topsecret"), "{text}");
    }

    #[test]
    fn slow_thresholds_default_per_service_and_off() {
        let load =
            |pairs: &[(&str, &str)]| load_dashboard(&EnvSource::from_pairs(pairs.iter().copied()));
        let c = load(&[]).expect("valid");
        assert_eq!(c.slow_ms, SlowThresholds::default());
        let c = load(&[
            ("SERVICE_SLOW_MS", "800"),
            ("SERVICE_SLOW_MS_api", " 250.5 "),
            ("SERVICE_SLOW_MS_Batch", "OFF"),
        ])
        .expect("valid");
        assert_eq!(c.slow_ms.for_service("api"), Some(250.5));
        assert_eq!(c.slow_ms.for_service("Batch"), None);
        assert_eq!(
            c.slow_ms.for_service("batch"),
            Some(800.0),
            "names are case-preserving"
        );
        assert_eq!(c.slow_ms.for_service("web"), Some(800.0));
        let text = format!("{:?}", describe_dashboard(&c));
        assert!(
            text.contains("\"SERVICE_SLOW_MS_Batch\", \"off\""),
            "{text}"
        );

        for (var, value) in [
            ("SERVICE_SLOW_MS", "0"),
            ("SERVICE_SLOW_MS", "-3"),
            ("SERVICE_SLOW_MS", "fast"),
            ("SERVICE_SLOW_MS", "NaN"),
            ("SERVICE_SLOW_MS_api", "1e9"),
            ("SERVICE_SLOW_MS_api", "slow"),
            ("SERVICE_SLOW_MS_", "100"),
        ] {
            let errs = load(&[(var, value)]).expect_err(value);
            assert_eq!(errs.0.len(), 1, "{errs}");
            assert_eq!(errs.0[0].variable, var, "{errs}");
        }
    }

    #[test]
    fn describe_redacts_secrets() {
        let c = load_pairs(&[
            ("SERVICE_URL_a", "http://user:pw@a.test/x"),
            ("SERVICE_HEADERS_a", "X-Key:hidden-value"),
            ("SECRET_KEY", "sk_live_123"),
            ("N8N_WEBHOOK_URL", "https://n8n.test/webhook/tok3n"),
        ])
        .expect("valid");
        let text = format!("{:?}", describe_agent(&c));
        for secret in ["pw", "hidden-value", "sk_live_123", "tok3n"] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
        assert!(text.contains("X-Key:***"));
    }

    #[test]
    fn describe_shows_the_options_of_a_service() {
        let c = load_pairs(&[
            ("SERVICE_URL_a", "http://a.test/x"),
            ("SERVICE_TIMEOUT_a", "5"),
            ("SERVICE_EXPECT_a", "200-299,401"),
            ("SERVICE_KEYWORD_a", "up"),
            ("SERVICE_METHOD_a", "GET"),
        ])
        .expect("valid");
        let lines = describe_agent(&c);
        for (key, value) in [
            ("SERVICE_TIMEOUT_a", "5"),
            ("SERVICE_EXPECT_a", "200-299,401"),
            ("SERVICE_KEYWORD_a", "\"up\""),
            ("SERVICE_METHOD_a", "GET"),
        ] {
            assert!(
                lines.iter().any(|(k, v)| k == key && v == value),
                "{key}={value} in {lines:?}"
            );
        }
    }
}
