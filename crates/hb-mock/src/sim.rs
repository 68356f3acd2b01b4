//! The simulation's switchable state (online switch, heartbeat mode, host status, simulated
//! services) and the checked partial updates `POST /api/config` applies to it. No I/O here.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The longest delay a service may be given, so a typo cannot park a request for days.
pub const MAX_DELAY_MS: u64 = 600_000;
/// More services than this is a runaway client, not a simulation.
pub const MAX_SERVICES: usize = 200;

/// How the simulated heartbeat receiver answers an authenticated heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Mode {
    /// 200 "recovered" once after the simulated host was offline, else 200 "recorded".
    Auto,
    /// 200 "recorded".
    Recorded,
    /// 200 "recovered".
    Recovered,
    /// 220: received, previous state unknown.
    Blind,
    /// 221: recovery detected, state update failed.
    Partial,
    /// 500: worker error.
    Critical,
}

impl Mode {
    pub const ALL: [Mode; 6] = [
        Mode::Auto,
        Mode::Recorded,
        Mode::Recovered,
        Mode::Blind,
        Mode::Partial,
        Mode::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Auto => "AUTO",
            Mode::Recorded => "RECORDED",
            Mode::Recovered => "RECOVERED",
            Mode::Blind => "BLIND",
            Mode::Partial => "PARTIAL",
            Mode::Critical => "CRITICAL",
        }
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "mode: '{s}' is not one of {}",
                    list(Mode::ALL.map(Mode::as_str))
                )
            })
    }
}

/// What the receiver believes about the monitored host; only `AUTO` mode looks at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostStatus {
    Online,
    Offline,
}

impl HostStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HostStatus::Online => "online",
            HostStatus::Offline => "offline",
        }
    }
}

impl FromStr for HostStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "online" => Ok(HostStatus::Online),
            "offline" => Ok(HostStatus::Offline),
            _ => Err(format!(
                "host_status: '{s}' is not one of 'online', 'offline'"
            )),
        }
    }
}

/// How one simulated service answers `GET`/`HEAD /svc/{name}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Behavior {
    /// 200.
    Healthy,
    /// 500.
    Error500,
    /// 404.
    NotFound,
    /// 200 after `delay_ms`.
    Slow,
    /// Accepts the request and never answers.
    Timeout,
    /// Closes the connection without any response.
    Down,
    /// 200 and 500 on alternate requests, starting with 200.
    Flapping,
}

impl Behavior {
    pub const ALL: [Behavior; 7] = [
        Behavior::Healthy,
        Behavior::Error500,
        Behavior::NotFound,
        Behavior::Slow,
        Behavior::Timeout,
        Behavior::Down,
        Behavior::Flapping,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Behavior::Healthy => "healthy",
            Behavior::Error500 => "error500",
            Behavior::NotFound => "notfound",
            Behavior::Slow => "slow",
            Behavior::Timeout => "timeout",
            Behavior::Down => "down",
            Behavior::Flapping => "flapping",
        }
    }

    /// The delay a new service with this behaviour starts with.
    pub fn default_delay_ms(self) -> u64 {
        match self {
            Behavior::Slow => 1_200,
            _ => 0,
        }
    }
}

impl FromStr for Behavior {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Behavior::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "behavior: '{s}' is not one of {}",
                    list(Behavior::ALL.map(Behavior::as_str))
                )
            })
    }
}

impl fmt::Display for Behavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn list<const N: usize>(items: [&str; N]) -> String {
    items
        .iter()
        .map(|i| format!("'{i}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One simulated service as `GET /api/config` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceSim {
    pub behavior: Behavior,
    /// Added before every answer (for `slow` it is the point); `timeout` and `down` ignore it.
    pub delay_ms: u64,
    /// Requests served so far; `flapping` answers 200 on even counts and 500 on odd ones.
    pub requests: u64,
}

impl ServiceSim {
    fn new(behavior: Behavior) -> Self {
        ServiceSim {
            behavior,
            delay_ms: behavior.default_delay_ms(),
            requests: 0,
        }
    }
}

/// The whole switchable simulation, as `GET /api/config` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Simulation {
    pub online: bool,
    pub mode: Mode,
    pub host_status: HostStatus,
    pub services: BTreeMap<String, ServiceSim>,
}

impl Default for Simulation {
    /// Online, `AUTO`, host online, and one service per behaviour named after it.
    fn default() -> Self {
        Simulation {
            online: true,
            mode: Mode::Auto,
            host_status: HostStatus::Online,
            services: Behavior::ALL
                .into_iter()
                .map(|b| (b.as_str().to_owned(), ServiceSim::new(b)))
                .collect(),
        }
    }
}

/// A partial update: every field optional. A service set to `null` is removed; a new name is
/// created (behaviour `healthy` unless given).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigPatch {
    pub online: Option<bool>,
    pub mode: Option<String>,
    pub host_status: Option<String>,
    pub services: Option<BTreeMap<String, Option<ServicePatch>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicePatch {
    pub behavior: Option<String>,
    pub delay_ms: Option<u64>,
}

/// One human-readable change, for the tracing line and the request log.
pub type Change = String;

impl Simulation {
    /// Checks the whole patch first and applies nothing unless every part is valid, so a bad
    /// request never leaves the simulation half-updated. Returns the changes made.
    pub fn apply(&mut self, patch: ConfigPatch) -> Result<Vec<Change>, Vec<String>> {
        let mut problems = Vec::new();
        let mode = patch.mode.as_deref().map(Mode::from_str).transpose();
        let host = patch
            .host_status
            .as_deref()
            .map(HostStatus::from_str)
            .transpose();
        let mode = mode.unwrap_or_else(|e| {
            problems.push(e);
            None
        });
        let host = host.unwrap_or_else(|e| {
            problems.push(e);
            None
        });
        let mut services = Vec::new();
        for (name, sp) in patch.services.unwrap_or_default() {
            if let Err(e) = check_name(&name) {
                problems.push(e);
                continue;
            }
            let Some(sp) = sp else {
                services.push((name, None));
                continue;
            };
            let behavior = match sp.behavior.as_deref().map(Behavior::from_str).transpose() {
                Ok(b) => b,
                Err(e) => {
                    problems.push(format!("services.{name}.{e}"));
                    continue;
                }
            };
            if let Some(d) = sp.delay_ms
                && d > MAX_DELAY_MS
            {
                problems.push(format!(
                    "services.{name}.delay_ms: {d} is above the maximum {MAX_DELAY_MS}"
                ));
                continue;
            }
            services.push((name, Some((behavior, sp.delay_ms))));
        }
        let added = services
            .iter()
            .filter(|(n, s)| s.is_some() && !self.services.contains_key(n))
            .count();
        let removed = services
            .iter()
            .filter(|(n, s)| s.is_none() && self.services.contains_key(n))
            .count();
        if self.services.len() + added - removed > MAX_SERVICES {
            problems.push(format!("services: more than {MAX_SERVICES} services"));
        }
        if !problems.is_empty() {
            return Err(problems);
        }

        let mut changes = Vec::new();
        if let Some(online) = patch.online
            && online != self.online
        {
            self.online = online;
            changes.push(format!("online={online}"));
        }
        if let Some(mode) = mode
            && mode != self.mode
        {
            self.mode = mode;
            changes.push(format!("mode={}", mode.as_str()));
        }
        if let Some(host) = host
            && host != self.host_status
        {
            self.host_status = host;
            changes.push(format!("host_status={}", host.as_str()));
        }
        for (name, update) in services {
            match update {
                None => {
                    if self.services.remove(&name).is_some() {
                        changes.push(format!("service {name} removed"));
                    }
                }
                Some((behavior, delay_ms)) => {
                    let entry = self.services.entry(name.clone()).or_insert_with(|| {
                        changes.push(format!("service {name} added"));
                        ServiceSim::new(behavior.unwrap_or(Behavior::Healthy))
                    });
                    if let Some(b) = behavior
                        && b != entry.behavior
                    {
                        entry.behavior = b;
                        entry.requests = 0;
                        changes.push(format!("service {name} behavior={b}"));
                    }
                    if let Some(d) = delay_ms
                        && d != entry.delay_ms
                    {
                        entry.delay_ms = d;
                        changes.push(format!("service {name} delay_ms={d}"));
                    }
                }
            }
        }
        Ok(changes)
    }
}

fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "services: name '{}' must be 1-64 characters of A-Z a-z 0-9 - _ .",
            name.chars().take(80).collect::<String>()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(json: &str) -> ConfigPatch {
        serde_json::from_str(json).expect("valid patch json")
    }

    #[test]
    fn default_has_one_service_per_behavior() {
        let sim = Simulation::default();
        for b in Behavior::ALL {
            assert_eq!(sim.services[b.as_str()].behavior, b);
        }
    }

    #[test]
    fn bad_patch_changes_nothing() {
        let mut sim = Simulation::default();
        let before = sim.clone();
        let err = sim
            .apply(patch(
                r#"{"online": false, "mode": "NOPE", "services": {"x": {"behavior": "odd"}}}"#,
            ))
            .expect_err("invalid");
        assert_eq!(err.len(), 2, "{err:?}");
        assert!(err[0].contains("'NOPE'"), "{err:?}");
        assert_eq!(sim, before);
    }

    #[test]
    fn patch_adds_updates_and_removes_services() {
        let mut sim = Simulation::default();
        let changes = sim
            .apply(patch(
                r#"{"services": {"new": {"behavior": "slow"}, "healthy": {"delay_ms": 5}, "down": null}}"#,
            ))
            .expect("valid");
        assert_eq!(sim.services["new"].behavior, Behavior::Slow);
        assert_eq!(sim.services["healthy"].delay_ms, 5);
        assert!(!sim.services.contains_key("down"));
        assert_eq!(changes.len(), 3, "{changes:?}");
    }

    #[test]
    fn rejects_long_delay_and_bad_names() {
        let mut sim = Simulation::default();
        assert!(
            sim.apply(patch(r#"{"services": {"a": {"delay_ms": 600001}}}"#))
                .is_err()
        );
        assert!(sim.apply(patch(r#"{"services": {"a b": {}}}"#)).is_err());
    }
}
