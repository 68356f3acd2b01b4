//! Alert decisions and alert texts (SPEC §3.5): one [`AlertEngine`] fed once per cycle turns
//! observations of services and the worker into [`AlertDraft`]s. Pure: the caller supplies the
//! time text and does the sending and recording.
//!
//! Internet outages. While the internet check fails, a failure or "status changed" alert of an
//! internet-dependent http(s) service is *held*: its status still moves (and is recorded by the
//! caller as observed), but no alert of its own is sent. In the first cycle of an outage in which
//! something is held, one `internet` alert "Internet connectivity lost" lists the held services
//! with status and reason; services held later in the same outage join silently. An outage in
//! which nothing was held produces no internet alert at all (there was nothing to tell).
//! At the first cycle with the internet back, if a "lost" alert was sent, one "Internet
//! connectivity restored" alert lists the held services that recovered (their own recovery
//! alerts are folded into it, to avoid a storm of recoveries) and those still failing; each
//! still-failing service then gets its normal alert in that same cycle. Recoveries of services
//! that were not held, and worker alerts, are never held back.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

mod hold;

pub use hold::{AlertPolicy, MAINTENANCE_ITEM};

use crate::alert::AlertRecord;
use crate::check::CheckOutcome;
use crate::debounce::{Debouncer, Transition};
use crate::status::{ServiceKind, ServiceStatus};

/// The item name of the heartbeat receiver.
pub const WORKER_ITEM: &str = "worker";
/// The item name of the internet outage summaries.
pub const INTERNET_ITEM: &str = "internet";

/// Why the heartbeat receiver gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoResponseCause {
    /// The internet check failed, so no heartbeat was sent.
    NoInternet,
    /// The heartbeat was sent but no answer came (timeout, connection, DNS).
    Unreachable,
}

/// What the heartbeat produced this cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerObservation {
    Code(u16),
    NoResponse { cause: NoResponseCause },
}

/// One service's check result this cycle.
#[derive(Debug, Clone, Copy)]
pub struct ServiceObservation<'a> {
    pub name: &'a str,
    pub kind: ServiceKind,
    pub outcome: &'a CheckOutcome,
    /// From [`internet_dependent`]: whether its failures may be held during an outage.
    pub internet_dependent: bool,
}

/// Everything one cycle observed.
#[derive(Debug, Clone, Copy)]
pub struct CycleInput<'a> {
    pub services: &'a [ServiceObservation<'a>],
    /// `None` when the heartbeat is disabled: the worker is then not processed at all.
    pub worker: Option<WorkerObservation>,
    pub internet_online: bool,
    /// `YYYY-MM-DD HH:MM:SS` in the configured zone, as it appears in alert texts.
    pub time_text: &'a str,
    /// The cycle's instant (epoch ms): how long an outage lasted.
    pub now_ms: i64,
}

/// An alert decided by the engine, before it gets an id and a creation time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertDraft {
    /// A service name, [`WORKER_ITEM`] or [`INTERNET_ITEM`].
    pub item: String,
    pub old_status: Option<String>,
    pub new_status: String,
    pub title: String,
    /// Markdown.
    pub message: String,
}

impl AlertDraft {
    pub fn into_record(self, uid: String, created_at: String) -> AlertRecord {
        AlertRecord {
            uid,
            created_at,
            item: self.item,
            old_status: self.old_status,
            new_status: self.new_status,
            title: self.title,
            message: self.message,
        }
    }
}

/// The worker's status key: all "no response" causes are one status, so a cause change alone
/// does not produce a "status changed" alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WorkerStatus {
    Code(u16),
    NoResponse,
}

impl WorkerStatus {
    const NO_RESPONSE: &str = "no response";

    fn text(self) -> String {
        match self {
            WorkerStatus::Code(c) => c.to_string(),
            WorkerStatus::NoResponse => Self::NO_RESPONSE.to_owned(),
        }
    }

    /// The inverse of [`WorkerStatus::text`] (alert statuses and stored rows use it).
    fn parse(text: &str) -> Option<WorkerStatus> {
        if text == Self::NO_RESPONSE {
            return Some(WorkerStatus::NoResponse);
        }
        text.parse().ok().map(WorkerStatus::Code)
    }
}

/// What the database remembers of one item, for a restarted agent (see [`Debouncer::resume`]).
/// Statuses are the stored texts: a service's status, or the worker's HTTP code /
/// `no response`; instants are epoch milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredHistory {
    /// The newest alert's `new_status` and its instant.
    pub last_alert: Option<(String, i64)>,
    /// The newest observations, newest first (the threshold's worth is enough).
    pub recent: Vec<(String, i64)>,
    /// The newest stored certificate expiry of an https service and the instant of the check
    /// that saw it (see [`crate::cert::CertWatch::resume`]).
    pub cert: Option<(i64, i64)>,
    /// Where the item's current run of bad checks began (its open incident), if it is bad.
    pub bad_since_ms: Option<i64>,
}

/// When the operator last heard of a resumed bad item: its newest alert (or reminder).
fn told_at(history: &StoredHistory) -> Option<i64> {
    history.last_alert.as_ref().map(|(_, at)| *at)
}

/// A status with its instant (epoch milliseconds).
type Stamped<S> = (S, i64);

impl StoredHistory {
    /// Parsed with `parse`; texts it does not know are left out.
    fn parsed<S>(
        &self,
        parse: impl Fn(&str) -> Option<S>,
    ) -> (Option<Stamped<S>>, Vec<Stamped<S>>) {
        let alert = self
            .last_alert
            .as_ref()
            .and_then(|(text, at)| parse(text).map(|s| (s, *at)));
        let recent = self
            .recent
            .iter()
            .filter_map(|(text, at)| parse(text).map(|s| (s, *at)))
            .collect();
        (alert, recent)
    }
}

#[derive(Debug, Default)]
struct ServiceState {
    debounce: Debouncer<ServiceStatus>,
    /// Set while an alert is held back by an internet outage: the status the operator last heard
    /// about, for the alert sent if the service is still bad when the internet returns.
    held_from: Option<ServiceStatus>,
    /// The first bad check of the current run of bad checks (its incident's start), when this
    /// engine saw it or the store remembered it.
    bad_since_ms: Option<i64>,
    /// While stable-bad: when the operator last heard of it (its alert, the last reminder, a
    /// maintenance summary). `None` while healthy or while nothing was told yet.
    told_ms: Option<i64>,
    /// A failure of it was held by a maintenance window and not told since: its recovery is
    /// silent too.
    silenced: bool,
}

#[derive(Debug, Default)]
struct Outage {
    announced: bool,
    recovered: Vec<String>,
}

/// Debounced alert decisions for every item, kept across cycles.
#[derive(Debug)]
pub struct AlertEngine {
    threshold: u32,
    services: HashMap<String, ServiceState>,
    worker: Debouncer<WorkerStatus>,
    /// [`ServiceState::bad_since_ms`] and [`ServiceState::told_ms`] of the worker.
    worker_bad_since_ms: Option<i64>,
    worker_told_ms: Option<i64>,
    worker_silenced: bool,
    outage: Option<Outage>,
    policy: AlertPolicy,
    hold: hold::HoldState,
}

impl AlertEngine {
    pub fn new(threshold: u32) -> AlertEngine {
        AlertEngine::with_policy(threshold, AlertPolicy::default())
    }

    /// An engine that also sends reminders and holds alerts in maintenance windows.
    pub fn with_policy(threshold: u32, policy: AlertPolicy) -> AlertEngine {
        AlertEngine {
            threshold,
            services: HashMap::new(),
            worker: Debouncer::new(),
            worker_bad_since_ms: None,
            worker_told_ms: None,
            worker_silenced: false,
            outage: None,
            policy,
            hold: hold::HoldState::default(),
        }
    }

    /// Starts a service from what an earlier run stored instead of from its first observation,
    /// so a restart neither hides an outage nor forgets one. Returns whether anything was
    /// known. Internet-outage holds are not restored: a service held at the crash alerts
    /// normally once its failure is confirmed again.
    pub fn resume_service(&mut self, name: &str, history: &StoredHistory) -> bool {
        let (alert, recent) = history.parsed(|t| t.parse::<ServiceStatus>().ok());
        let Some(debounce) = Debouncer::resume(alert, &recent, |s| s.is_healthy(), self.threshold)
        else {
            return false;
        };
        let bad = debounce.stable().is_some_and(|s| !s.is_healthy());
        self.services.insert(
            name.to_owned(),
            ServiceState {
                debounce,
                held_from: None,
                bad_since_ms: if bad { history.bad_since_ms } else { None },
                told_ms: if bad { told_at(history) } else { None },
                silenced: false,
            },
        );
        true
    }

    /// [`AlertEngine::resume_service`] for the worker.
    pub fn resume_worker(&mut self, history: &StoredHistory) -> bool {
        let (alert, recent) = history.parsed(WorkerStatus::parse);
        match Debouncer::resume(
            alert,
            &recent,
            |s| *s == WorkerStatus::Code(200),
            self.threshold,
        ) {
            Some(debounce) => {
                let bad = debounce
                    .stable()
                    .is_some_and(|s| *s != WorkerStatus::Code(200));
                self.worker = debounce;
                self.worker_bad_since_ms = if bad { history.bad_since_ms } else { None };
                self.worker_told_ms = if bad { told_at(history) } else { None };
                true
            }
            None => false,
        }
    }

    /// Processes one cycle; returns the alerts to record and send, in this order: a maintenance
    /// summary, internet summary, services (in input order), worker, reminders. Alerts of items
    /// in an open maintenance window are held instead (see [`AlertPolicy`]).
    pub fn process(&mut self, input: &CycleInput<'_>) -> Vec<AlertDraft> {
        let decided = self.decide(input);
        self.apply_policy(input, decided)
    }

    /// The alerts of the state changes alone, before reminders and maintenance windows.
    fn decide(&mut self, input: &CycleInput<'_>) -> Vec<AlertDraft> {
        let time = input.time_text;
        let online = input.internet_online;
        if !online && self.outage.is_none() {
            self.outage = Some(Outage::default());
        }
        let mut service_alerts = Vec::new();
        let mut newly_held = false;

        for obs in input.services {
            if obs.outcome.agent_fault {
                // Not an observation of the service: its state waits for a real one.
                continue;
            }
            let state = self.services.entry(obs.name.to_owned()).or_default();
            let status = obs.outcome.status;
            let outage_ms = match (status.is_healthy(), state.bad_since_ms) {
                (true, since) => {
                    state.bad_since_ms = None;
                    since.map(|since| input.now_ms - since)
                }
                (false, None) => {
                    state.bad_since_ms = Some(input.now_ms);
                    None
                }
                (false, Some(_)) => None,
            };
            let transition = state
                .debounce
                .observe(status, |s| s.is_healthy(), self.threshold);
            match transition {
                Transition::Initial | Transition::Quiet => {}
                Transition::Recovered { from } => {
                    if state.held_from.take().is_some() {
                        if let Some(outage) = self.outage.as_mut() {
                            outage.recovered.push(obs.name.to_owned());
                        }
                    } else {
                        service_alerts.push(service_recovered(obs, from, time, outage_ms));
                    }
                }
                Transition::Failed { from } | Transition::Changed { from } => {
                    let holdable = !online
                        && obs.internet_dependent
                        && matches!(obs.kind, ServiceKind::Http | ServiceKind::Tcp);
                    if state.held_from.is_some() {
                        // Already held: the alert goes out (or not) when the outage ends, which
                        // may be this very cycle.
                    } else if holdable {
                        state.held_from = Some(from);
                        newly_held = true;
                        if let Some(outage) = self.outage.as_mut() {
                            outage.recovered.retain(|n| n != obs.name);
                        }
                    } else {
                        service_alerts.push(service_bad(obs, from, time));
                    }
                }
            }
        }

        let mut alerts = Vec::new();
        if online {
            if let Some(outage) = self.outage.take() {
                let mut still_failing = Vec::new();
                for obs in input.services {
                    let Some(state) = self.services.get_mut(obs.name) else {
                        continue;
                    };
                    if let Some(from) = state.held_from.take() {
                        still_failing.push(obs.name.to_owned());
                        service_alerts.push(service_bad(obs, from, time));
                    }
                }
                if outage.announced {
                    alerts.push(internet_restored(&outage.recovered, &still_failing, time));
                }
            }
        } else if newly_held
            && let Some(outage) = self.outage.as_mut()
            && !outage.announced
        {
            outage.announced = true;
            let held: Vec<&ServiceObservation<'_>> = input
                .services
                .iter()
                .filter(|o| {
                    self.services
                        .get(o.name)
                        .is_some_and(|s| s.held_from.is_some())
                })
                .collect();
            alerts.push(internet_lost(&held, time));
        }
        alerts.extend(service_alerts);

        if let Some(worker) = input.worker {
            let key = match worker {
                WorkerObservation::Code(c) => WorkerStatus::Code(c),
                WorkerObservation::NoResponse { .. } => WorkerStatus::NoResponse,
            };
            if key == WorkerStatus::Code(200) {
                self.worker_bad_since_ms = None;
            } else if self.worker_bad_since_ms.is_none() {
                self.worker_bad_since_ms = Some(input.now_ms);
            }
            let transition =
                self.worker
                    .observe(key, |s| *s == WorkerStatus::Code(200), self.threshold);
            match transition {
                Transition::Initial | Transition::Quiet => {}
                Transition::Recovered { from }
                | Transition::Failed { from }
                | Transition::Changed { from } => alerts.push(worker_alert(from, worker, time)),
            }
        }
        alerts
    }
}

fn reason_of(outcome: &CheckOutcome) -> &str {
    outcome.reason.as_deref().unwrap_or("unspecified")
}

/// How a failure title reads for each bad status ("api is down", "api returns errors").
fn failure_phrase(status: ServiceStatus) -> &'static str {
    match status {
        ServiceStatus::Down => "is down",
        ServiceStatus::Error => "returns errors",
        ServiceStatus::Timeout => "timed out",
        ServiceStatus::Unknown => "cannot be checked",
        ServiceStatus::Healthy => "is healthy",
    }
}

fn service_bad(obs: &ServiceObservation<'_>, from: ServiceStatus, time: &str) -> AlertDraft {
    let status = obs.outcome.status;
    let reason = reason_of(obs.outcome);
    let (title, status_line) = if from.is_healthy() {
        (
            format!("🔴 {} {}", obs.name, failure_phrase(status)),
            format!("{status}"),
        )
    } else {
        (
            format!("🟠 {} changed: {from} → {status}", obs.name),
            format!("{from} → {status}"),
        )
    };
    AlertDraft {
        item: obs.name.to_owned(),
        old_status: Some(from.to_string()),
        new_status: status.to_string(),
        title,
        message: format!(
            "**Service:** {}\n**Status:** {status_line}\n**Reason:** {reason}\n**Time:** {time}",
            obs.name
        ),
    }
}

fn service_recovered(
    obs: &ServiceObservation<'_>,
    from: ServiceStatus,
    time: &str,
    outage_ms: Option<i64>,
) -> AlertDraft {
    let status = obs.outcome.status;
    let latency = match obs.outcome.latency_ms {
        Some(ms) => format!("{ms:.1} ms"),
        None => "n/a".to_owned(),
    };
    AlertDraft {
        item: obs.name.to_owned(),
        old_status: Some(from.to_string()),
        new_status: status.to_string(),
        title: format!("✅ {} recovered", obs.name),
        // How long it was down: from its first bad check to this one, when this run saw both.
        message: match outage_ms {
            Some(ms) => format!(
                "**Service:** {}\n**Status:** {from} → {status}\n**Latency:** {latency}\n**Outage:** {}\n**Time:** {time}",
                obs.name,
                crate::incident::format_duration(ms)
            ),
            None => format!(
                "**Service:** {}\n**Status:** {from} → {status}\n**Latency:** {latency}\n**Time:** {time}",
                obs.name
            ),
        },
    }
}

fn internet_lost(held: &[&ServiceObservation<'_>], time: &str) -> AlertDraft {
    let mut message = String::from(
        "The internet check is failing. Alerts of these internet-dependent services are held \
         back until it returns:\n",
    );
    for o in held {
        message.push_str(&format!(
            "- **{}**: {} ({})\n",
            o.name,
            o.outcome.status,
            reason_of(o.outcome)
        ));
    }
    message.push_str(&format!("**Time:** {time}"));
    AlertDraft {
        item: INTERNET_ITEM.to_owned(),
        old_status: Some("online".to_owned()),
        new_status: "offline".to_owned(),
        title: "🔴 Internet connectivity lost".to_owned(),
        message,
    }
}

fn internet_restored(recovered: &[String], still_failing: &[String], time: &str) -> AlertDraft {
    let list = |names: &[String]| {
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    AlertDraft {
        item: INTERNET_ITEM.to_owned(),
        old_status: Some("offline".to_owned()),
        new_status: "online".to_owned(),
        title: "✅ Internet connectivity restored".to_owned(),
        message: format!(
            "**Recovered:** {}\n**Still failing (alerted separately):** {}\n**Time:** {time}",
            list(recovered),
            list(still_failing)
        ),
    }
}

fn worker_alert(from: WorkerStatus, obs: WorkerObservation, time: &str) -> AlertDraft {
    let (title, detail) = match obs {
        WorkerObservation::Code(200) => (
            "✅ Worker recovered".to_owned(),
            "Heartbeat received and processed (200).".to_owned(),
        ),
        WorkerObservation::Code(220) => (
            "🟠 Worker warning: blind (220)".to_owned(),
            "Heartbeat received, but the worker does not know the previous state.".to_owned(),
        ),
        WorkerObservation::Code(221) => (
            "🟠 Worker warning: recovery update failed (221)".to_owned(),
            "The worker detected a recovery but failed to update its state.".to_owned(),
        ),
        WorkerObservation::Code(500) => (
            "🔴 Worker error (500)".to_owned(),
            "The worker failed an essential step.".to_owned(),
        ),
        WorkerObservation::Code(c) => (
            format!("🔴 Worker unexpected response (HTTP {c})"),
            format!("The worker answered with an unexpected HTTP {c}."),
        ),
        WorkerObservation::NoResponse {
            cause: NoResponseCause::NoInternet,
        } => (
            "🔴 Worker not reached: no internet".to_owned(),
            "No heartbeat could be sent: the internet check is failing.".to_owned(),
        ),
        WorkerObservation::NoResponse {
            cause: NoResponseCause::Unreachable,
        } => (
            "🔴 Worker API unreachable".to_owned(),
            "The heartbeat got no answer (timeout, connection or DNS failure).".to_owned(),
        ),
    };
    let new = match obs {
        WorkerObservation::Code(c) => WorkerStatus::Code(c),
        WorkerObservation::NoResponse { .. } => WorkerStatus::NoResponse,
    };
    AlertDraft {
        item: WORKER_ITEM.to_owned(),
        old_status: Some(from.text()),
        new_status: new.text(),
        title,
        message: format!(
            "**Item:** worker\n**Status:** {} → {}\n**Detail:** {detail}\n**Time:** {time}",
            from.text(),
            new.text()
        ),
    }
}

/// Whether a service's failures may be caused by an internet outage: http(s) and tcp only (a
/// tcp check to a public host needs the internet as much as an https one), not under the DNS
/// override (which only http(s) checks take), and the host is neither local by name (`localhost`, `*.localhost`,
/// single-label names such as Docker network aliases, `*.local`, `*.internal`, `*.lan`,
/// `*.home.arpa`) nor a non-public IP literal (loopback, RFC 1918, link-local, CGNAT
/// 100.64/10, unique-local fc00::/7, unspecified). `url_host` may carry IPv6 brackets.
pub fn internet_dependent(url_host: &str, overridden: bool, kind: ServiceKind) -> bool {
    match kind {
        ServiceKind::Http if !overridden => {}
        ServiceKind::Tcp => {}
        ServiceKind::Http | ServiceKind::Docker => return false,
    }
    let host = url_host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if host.is_empty() {
        return false;
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return !ip_is_local(ip);
    }
    if !host.contains('.') {
        return false;
    }
    const LOCAL_SUFFIXES: [&str; 5] = [".localhost", ".local", ".internal", ".lan", ".home.arpa"];
    !LOCAL_SUFFIXES.iter().any(|s| host.ends_with(s))
}

fn ip_is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_is_local(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4_is_local(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

fn v4_is_local(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || (a == 100 && (64..128).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "2026-11-29 15:41:02";

    fn outcome(status: &str) -> CheckOutcome {
        match status {
            "healthy" => CheckOutcome::healthy(Some(12.34)),
            "error" => CheckOutcome::from_http_status(500, 3.0),
            "timeout" => CheckOutcome::timeout(),
            "down" => CheckOutcome::down("Connection refused"),
            "exited" => CheckOutcome::down("Container state: exited"),
            "unknown" => CheckOutcome::unknown("Docker Socket Unavailable"),
            "fault" => CheckOutcome::agent_fault("Agent out of file descriptors"),
            other => panic!("no fixture for {other}"),
        }
    }

    /// One service `api`, one status per cycle; returns the (cycle index, title) of each alert.
    fn run_service(threshold: u32, seq: &[&str]) -> Vec<(usize, AlertDraft)> {
        let mut engine = AlertEngine::new(threshold);
        let mut out = Vec::new();
        for (i, st) in seq.iter().enumerate() {
            let o = outcome(st);
            let services = [ServiceObservation {
                name: "api",
                kind: ServiceKind::Http,
                outcome: &o,
                internet_dependent: true,
            }];
            let input = CycleInput {
                services: &services,
                worker: None,
                internet_online: true,
                time_text: T,
                now_ms: i as i64 * 10_000,
            };
            out.extend(engine.process(&input).into_iter().map(|a| (i, a)));
        }
        out
    }

    #[test]
    fn service_table() {
        // (name, threshold, observations, expected (cycle, old, new) alerts)
        type Case = (
            &'static str,
            u32,
            &'static [&'static str],
            &'static [(usize, &'static str, &'static str)],
        );
        let cases: &[Case] = &[
            ("first observation silent (healthy)", 3, &["healthy"], &[]),
            (
                "first observation silent (down)",
                3,
                &["down", "down", "down", "down"],
                &[],
            ),
            (
                "below threshold silent",
                4,
                &["healthy", "down", "down", "down", "healthy"],
                &[],
            ),
            (
                "threshold reached",
                3,
                &["healthy", "down", "down", "down", "down", "down"],
                &[(3, "healthy", "down")],
            ),
            (
                "flapping timeout/down still alerts with the latest",
                4,
                &["healthy", "timeout", "down", "timeout", "down"],
                &[(4, "healthy", "down")],
            ),
            (
                "immediate recovery",
                2,
                &["healthy", "error", "error", "healthy"],
                &[(2, "healthy", "error"), (3, "error", "healthy")],
            ),
            (
                "change between bad statuses: one alert",
                2,
                &[
                    "healthy", "down", "down", "timeout", "timeout", "timeout", "timeout",
                ],
                &[(2, "healthy", "down"), (4, "down", "timeout")],
            ),
            (
                "first bad then healthy recovers at once",
                3,
                &["down", "healthy"],
                &[(1, "down", "healthy")],
            ),
            (
                "agent faults never raise an alert",
                2,
                &["healthy", "fault", "fault", "fault", "fault", "healthy"],
                &[],
            ),
            (
                "agent faults neither count nor reset a failure",
                3,
                &["healthy", "down", "down", "fault", "fault", "down"],
                &[(5, "healthy", "down")],
            ),
            (
                "agent faults never clear an alert",
                2,
                &["healthy", "down", "down", "fault", "fault", "healthy"],
                &[(2, "healthy", "down"), (5, "down", "healthy")],
            ),
            (
                "a fault first is not the first observation",
                2,
                &["fault", "down", "down"],
                &[],
            ),
        ];
        for (name, threshold, seq, want) in cases {
            let got: Vec<(usize, String, String)> = run_service(*threshold, seq)
                .into_iter()
                .map(|(i, a)| {
                    assert_eq!(a.item, "api", "{name}");
                    (i, a.old_status.unwrap_or_default(), a.new_status)
                })
                .collect();
            let want: Vec<(usize, String, String)> = want
                .iter()
                .map(|(i, o, n)| (*i, o.to_string(), n.to_string()))
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn service_texts() {
        let alerts = run_service(
            2,
            &[
                "healthy", "timeout", "down", "down", "error", "error", "healthy",
            ],
        );
        let titles: Vec<&str> = alerts.iter().map(|(_, a)| a.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "🔴 api is down",
                "🟠 api changed: down → error",
                "✅ api recovered"
            ]
        );
        assert_eq!(
            alerts[0].1.message,
            "**Service:** api\n**Status:** down\n**Reason:** Connection refused\n**Time:** 2026-11-29 15:41:02"
        );
        assert_eq!(
            alerts[1].1.message,
            "**Service:** api\n**Status:** down → error\n**Reason:** HTTP 500\n**Time:** 2026-11-29 15:41:02"
        );
        assert_eq!(
            alerts[2].1.message,
            "**Service:** api\n**Status:** error → healthy\n**Latency:** 12.3 ms\n**Outage:** 50 s\n**Time:** 2026-11-29 15:41:02",
            "the outage: from the first bad check to the healthy one, cycles 10 s apart"
        );
    }

    /// The alert texts of the reasons issue 16 added, one service each: healthy, then the
    /// failure twice (threshold 2), then healthy again.
    #[test]
    fn texts_of_the_newer_check_reasons() {
        // (name, kind, failing outcome, failure title, failure message)
        let table: [(&str, ServiceKind, CheckOutcome, &str, &str); 5] = [
            (
                "web",
                ServiceKind::Docker,
                CheckOutcome::error("Container health: unhealthy"),
                "🔴 web returns errors",
                "**Service:** web\n**Status:** error\n**Reason:** Container health: unhealthy\n**Time:** 2026-11-29 15:41:02",
            ),
            (
                "batch",
                ServiceKind::Docker,
                CheckOutcome::down("Container state: exited (137, OOM killed)"),
                "🔴 batch is down",
                "**Service:** batch\n**Status:** down\n**Reason:** Container state: exited (137, OOM killed)\n**Time:** 2026-11-29 15:41:02",
            ),
            (
                "cache",
                ServiceKind::Docker,
                CheckOutcome::down("Container state: exited (1)"),
                "🔴 cache is down",
                "**Service:** cache\n**Status:** down\n**Reason:** Container state: exited (1)\n**Time:** 2026-11-29 15:41:02",
            ),
            (
                "pg",
                ServiceKind::Tcp,
                CheckOutcome::down("Connection refused"),
                "🔴 pg is down",
                "**Service:** pg\n**Status:** down\n**Reason:** Connection refused\n**Time:** 2026-11-29 15:41:02",
            ),
            (
                "smtp",
                ServiceKind::Tcp,
                CheckOutcome::timeout(),
                "🔴 smtp timed out",
                "**Service:** smtp\n**Status:** timeout\n**Reason:** Timeout\n**Time:** 2026-11-29 15:41:02",
            ),
        ];
        for (name, kind, bad, title, message) in table {
            let mut engine = AlertEngine::new(2);
            let healthy = CheckOutcome::healthy(Some(1.5));
            let mut alerts = Vec::new();
            for (i, o) in [&healthy, &bad, &bad, &healthy].into_iter().enumerate() {
                let services = [ServiceObservation {
                    name,
                    kind,
                    outcome: o,
                    internet_dependent: false,
                }];
                alerts.extend(engine.process(&CycleInput {
                    services: &services,
                    worker: None,
                    internet_online: true,
                    time_text: T,
                    now_ms: i as i64 * 10_000,
                }));
            }
            assert_eq!(alerts.len(), 2, "{name}: {alerts:?}");
            assert_eq!(alerts[0].title, title, "{name}");
            assert_eq!(alerts[0].message, message, "{name}");
            assert_eq!(alerts[0].new_status, bad.status.as_str(), "{name}");
            assert_eq!(alerts[1].title, format!("✅ {name} recovered"), "{name}");
            assert!(
                alerts[1].message.contains("**Latency:** 1.5 ms"),
                "{name}: {}",
                alerts[1].message
            );
        }
    }

    fn run_worker(threshold: u32, seq: &[WorkerObservation]) -> Vec<(usize, AlertDraft)> {
        let mut engine = AlertEngine::new(threshold);
        let mut out = Vec::new();
        for (i, w) in seq.iter().enumerate() {
            let input = CycleInput {
                services: &[],
                worker: Some(*w),
                internet_online: true,
                time_text: T,
                now_ms: i as i64 * 10_000,
            };
            out.extend(engine.process(&input).into_iter().map(|a| (i, a)));
        }
        out
    }

    #[test]
    fn worker_table() {
        use NoResponseCause::{NoInternet, Unreachable};
        use WorkerObservation::{Code, NoResponse};
        let unreachable = NoResponse { cause: Unreachable };
        let offline = NoResponse { cause: NoInternet };
        type Case = (
            &'static str,
            Vec<WorkerObservation>,
            Vec<(usize, &'static str, &'static str, &'static str)>,
        );
        let cases: Vec<Case> = vec![
            ("first observation silent", vec![Code(500)], vec![]),
            (
                "no response after threshold names the cause (unreachable)",
                vec![Code(200), unreachable, unreachable, unreachable],
                vec![(3, "200", "no response", "🔴 Worker API unreachable")],
            ),
            (
                "no response after threshold names the cause (no internet)",
                vec![Code(200), offline, unreachable, offline],
                vec![(
                    3,
                    "200",
                    "no response",
                    "🔴 Worker not reached: no internet",
                )],
            ),
            (
                "500 then 221 gets the title of the new code, then recovery",
                vec![
                    Code(200),
                    Code(500),
                    Code(500),
                    Code(500),
                    Code(221),
                    Code(221),
                    Code(221),
                    Code(200),
                ],
                vec![
                    (3, "200", "500", "🔴 Worker error (500)"),
                    (
                        6,
                        "500",
                        "221",
                        "🟠 Worker warning: recovery update failed (221)",
                    ),
                    (7, "221", "200", "✅ Worker recovered"),
                ],
            ),
            (
                "220 and other codes",
                vec![
                    Code(200),
                    Code(220),
                    Code(220),
                    Code(220),
                    Code(404),
                    Code(404),
                    Code(404),
                ],
                vec![
                    (3, "200", "220", "🟠 Worker warning: blind (220)"),
                    (6, "220", "404", "🔴 Worker unexpected response (HTTP 404)"),
                ],
            ),
            (
                "a cause change alone is not a status change",
                vec![
                    Code(200),
                    offline,
                    offline,
                    offline,
                    unreachable,
                    unreachable,
                    unreachable,
                    unreachable,
                ],
                vec![(
                    3,
                    "200",
                    "no response",
                    "🔴 Worker not reached: no internet",
                )],
            ),
        ];
        for (name, seq, want) in cases {
            let got: Vec<(usize, String, String, String)> = run_worker(3, &seq)
                .into_iter()
                .map(|(i, a)| {
                    assert_eq!(a.item, "worker", "{name}");
                    (i, a.old_status.unwrap_or_default(), a.new_status, a.title)
                })
                .collect();
            let want: Vec<(usize, String, String, String)> = want
                .into_iter()
                .map(|(i, o, n, t)| (i, o.to_owned(), n.to_owned(), t.to_owned()))
                .collect();
            assert_eq!(got, want, "{name}");
        }
    }

    /// Services: `web` (internet-dependent http), `lan` (private http), `db` (docker).
    fn outage_cycle(
        engine: &mut AlertEngine,
        online: bool,
        web: &str,
        lan: &str,
        db: &str,
    ) -> Vec<AlertDraft> {
        let (w, l, d) = (outcome(web), outcome(lan), outcome(db));
        let services = [
            ServiceObservation {
                name: "web",
                kind: ServiceKind::Http,
                outcome: &w,
                internet_dependent: true,
            },
            ServiceObservation {
                name: "lan",
                kind: ServiceKind::Http,
                outcome: &l,
                internet_dependent: false,
            },
            ServiceObservation {
                name: "db",
                kind: ServiceKind::Docker,
                outcome: &d,
                internet_dependent: false,
            },
        ];
        engine.process(&CycleInput {
            services: &services,
            worker: None,
            internet_online: online,
            time_text: T,
            now_ms: 0,
        })
    }

    fn items(alerts: &[AlertDraft]) -> Vec<(String, String)> {
        alerts
            .iter()
            .map(|a| (a.item.clone(), a.new_status.clone()))
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// A tcp check of a public host is held during an outage like an https one.
    #[test]
    fn tcp_services_to_public_hosts_are_held_during_an_outage() {
        let mut e = AlertEngine::new(1);
        let refused = CheckOutcome::down("Connection refused");
        let healthy = CheckOutcome::healthy(Some(2.0));
        let run = |e: &mut AlertEngine, online: bool, o: &CheckOutcome, dependent: bool| {
            let services = [ServiceObservation {
                name: "pg",
                kind: ServiceKind::Tcp,
                outcome: o,
                internet_dependent: dependent,
            }];
            e.process(&CycleInput {
                services: &services,
                worker: None,
                internet_online: online,
                time_text: T,
                now_ms: 0,
            })
        };
        assert!(run(&mut e, true, &healthy, true).is_empty());
        let lost = run(&mut e, false, &refused, true);
        assert_eq!(items(&lost), pairs(&[("internet", "offline")]));
        assert!(
            lost[0]
                .message
                .contains("- **pg**: down (Connection refused)"),
            "{}",
            lost[0].message
        );
        // A private one alerts at once.
        let mut e = AlertEngine::new(1);
        assert!(run(&mut e, true, &healthy, false).is_empty());
        let alerts = run(&mut e, false, &refused, false);
        assert_eq!(items(&alerts), pairs(&[("pg", "down")]));
    }

    #[test]
    fn internet_outage_is_grouped_and_still_bad_services_alert_after() {
        let mut e = AlertEngine::new(2);
        assert!(outage_cycle(&mut e, true, "healthy", "healthy", "healthy").is_empty());
        assert!(outage_cycle(&mut e, false, "timeout", "down", "exited").is_empty());
        // web reaches the threshold while offline: held, summarised once; the private service
        // and the container still alert normally.
        let lost = outage_cycle(&mut e, false, "down", "down", "exited");
        assert_eq!(
            items(&lost),
            pairs(&[("internet", "offline"), ("lan", "down"), ("db", "down")])
        );
        assert_eq!(lost[0].title, "🔴 Internet connectivity lost");
        assert!(
            lost[0]
                .message
                .contains("- **web**: down (Connection refused)"),
            "{}",
            lost[0].message
        );
        assert!(!lost[0].message.contains("lan"));
        assert_eq!(
            lost[2].message.lines().nth(2),
            Some("**Reason:** Container state: exited")
        );
        // More cycles offline: nothing more.
        assert!(outage_cycle(&mut e, false, "down", "down", "exited").is_empty());
        assert!(outage_cycle(&mut e, false, "timeout", "down", "exited").is_empty());
        // Internet back, web still bad: restored summary plus web's own alert.
        let back = outage_cycle(&mut e, true, "timeout", "down", "exited");
        assert_eq!(
            items(&back),
            pairs(&[("internet", "online"), ("web", "timeout")])
        );
        assert_eq!(back[0].title, "✅ Internet connectivity restored");
        assert!(
            back[0]
                .message
                .contains("**Still failing (alerted separately):** web")
        );
        assert_eq!(back[1].title, "🔴 web timed out");
        assert_eq!(back[1].old_status.as_deref(), Some("healthy"));
        // Later recovery alerts normally.
        let rec = outage_cycle(&mut e, true, "healthy", "healthy", "healthy");
        assert_eq!(
            items(&rec),
            pairs(&[("web", "healthy"), ("lan", "healthy"), ("db", "healthy")])
        );
    }

    #[test]
    fn services_recovering_with_the_internet_fold_into_the_restored_alert() {
        let mut e = AlertEngine::new(2);
        outage_cycle(&mut e, true, "healthy", "healthy", "healthy");
        outage_cycle(&mut e, false, "down", "healthy", "healthy");
        let lost = outage_cycle(&mut e, false, "down", "healthy", "healthy");
        assert_eq!(items(&lost), pairs(&[("internet", "offline")]));
        let back = outage_cycle(&mut e, true, "healthy", "healthy", "healthy");
        assert_eq!(items(&back), pairs(&[("internet", "online")]));
        assert!(
            back[0]
                .message
                .starts_with("**Recovered:** web\n**Still failing (alerted separately):** none")
        );
        // A new failure after the outage alerts normally.
        outage_cycle(&mut e, true, "error", "healthy", "healthy");
        let again = outage_cycle(&mut e, true, "error", "healthy", "healthy");
        assert_eq!(items(&again), pairs(&[("web", "error")]));
    }

    #[test]
    fn outage_without_held_alerts_is_silent() {
        let mut e = AlertEngine::new(2);
        outage_cycle(&mut e, true, "healthy", "healthy", "healthy");
        assert!(outage_cycle(&mut e, false, "healthy", "healthy", "healthy").is_empty());
        assert!(outage_cycle(&mut e, false, "down", "healthy", "healthy").is_empty());
        assert!(outage_cycle(&mut e, true, "healthy", "healthy", "healthy").is_empty());
    }

    #[test]
    fn internet_dependence() {
        use ServiceKind::{Docker, Http, Tcp};
        let table = [
            ("db.example.com", false, Tcp, true),
            ("8.8.8.8", false, Tcp, true),
            ("10.0.0.5", false, Tcp, false),
            ("postgres", false, Tcp, false),
            ("[::1]", false, Tcp, false),
            // The DNS override never applies to tcp checks: a public host still depends.
            ("db.example.com", true, Tcp, true),
            ("example.com", false, Http, true),
            ("api.example.com.", false, Http, true),
            ("8.8.8.8", false, Http, true),
            ("[2606:4700::1111]", false, Http, true),
            ("example.com", true, Http, false),
            ("example.com", false, Docker, false),
            ("localhost", false, Http, false),
            ("LOCALHOST", false, Http, false),
            ("app.localhost", false, Http, false),
            ("postgres", false, Http, false),
            ("nas.local", false, Http, false),
            ("svc.internal", false, Http, false),
            ("router.home.arpa", false, Http, false),
            ("127.0.0.1", false, Http, false),
            ("10.1.2.3", false, Http, false),
            ("172.16.0.1", false, Http, false),
            ("192.168.1.10", false, Http, false),
            ("169.254.1.1", false, Http, false),
            ("100.64.0.1", false, Http, false),
            ("100.127.255.255", false, Http, false),
            ("100.128.0.1", false, Http, true),
            ("0.0.0.0", false, Http, false),
            ("[::1]", false, Http, false),
            ("::1", false, Http, false),
            ("[fd00::1]", false, Http, false),
            ("[fe80::1]", false, Http, false),
            ("[::ffff:192.168.0.1]", false, Http, false),
        ];
        for (host, overridden, kind, want) in table {
            assert_eq!(
                internet_dependent(host, overridden, kind),
                want,
                "{host} {overridden} {kind:?}"
            );
        }
    }

    #[test]
    fn draft_becomes_record() {
        let d = AlertDraft {
            item: "api".into(),
            old_status: Some("healthy".into()),
            new_status: "down".into(),
            title: "t".into(),
            message: "m".into(),
        };
        let r = d.into_record("u1".into(), "2026-11-29T15:41:02-05:00".into());
        assert_eq!(
            (r.uid.as_str(), r.item.as_str(), r.created_at.as_str()),
            ("u1", "api", "2026-11-29T15:41:02-05:00")
        );
    }

    fn history(alert: Option<(&str, i64)>, recent: &[(&str, i64)]) -> StoredHistory {
        StoredHistory {
            last_alert: alert.map(|(s, at)| (s.to_owned(), at)),
            recent: recent
                .iter()
                .map(|(s, at)| ((*s).to_owned(), *at))
                .collect(),
            cert: None,
            bad_since_ms: None,
        }
    }

    /// Feeds `api` the observations after a restart seeded with `stored`; (cycle, old, new).
    fn resumed_service(
        threshold: u32,
        stored: &StoredHistory,
        seq: &[&str],
    ) -> (bool, Vec<(usize, String, String)>) {
        let mut engine = AlertEngine::new(threshold);
        let seeded = engine.resume_service("api", stored);
        let mut out = Vec::new();
        for (i, st) in seq.iter().enumerate() {
            let o = outcome(st);
            let services = [ServiceObservation {
                name: "api",
                kind: ServiceKind::Http,
                outcome: &o,
                internet_dependent: true,
            }];
            let input = CycleInput {
                services: &services,
                worker: None,
                internet_online: true,
                time_text: T,
                now_ms: i as i64 * 10_000,
            };
            for a in engine.process(&input) {
                out.push((i, a.old_status.unwrap_or_default(), a.new_status));
            }
        }
        (seeded, out)
    }

    #[test]
    fn resumed_service_table() {
        type Case<'a> = (
            &'a str,
            StoredHistory,
            &'a [&'a str],
            bool,
            &'a [(usize, &'a str, &'a str)],
        );
        let cases: &[Case] = &[
            (
                "down before, still down: no duplicate",
                history(Some(("error", 5)), &[("error", 6), ("error", 5)]),
                &["error", "error", "error"],
                true,
                &[],
            ),
            (
                "down before, healthy after: recovery",
                history(Some(("error", 5)), &[("error", 5)]),
                &["healthy"],
                true,
                &[(0, "error", "healthy")],
            ),
            (
                "healthy rows, never alerted, failing after: alert at the threshold",
                history(None, &[("healthy", 2), ("healthy", 1)]),
                &["down", "down"],
                true,
                &[(1, "healthy", "down")],
            ),
            (
                "one bad row below the threshold counts toward it",
                history(Some(("healthy", 1)), &[("down", 2), ("healthy", 1)]),
                &["down"],
                true,
                &[(0, "healthy", "down")],
            ),
            (
                "a transient bad row is not a stable status (no false recovery)",
                history(None, &[("down", 2), ("healthy", 1)]),
                &["healthy"],
                true,
                &[],
            ),
            (
                "nothing stored: first observation silent",
                history(None, &[]),
                &["down", "down", "down"],
                false,
                &[],
            ),
            (
                "unknown stored texts are ignored",
                history(Some(("sideways", 5)), &[("sideways", 5)]),
                &["down"],
                false,
                &[],
            ),
        ];
        for (name, stored, seq, seeded, want) in cases {
            let (got_seeded, got) = resumed_service(2, stored, seq);
            let want: Vec<(usize, String, String)> = want
                .iter()
                .map(|(i, a, b)| (*i, (*a).to_owned(), (*b).to_owned()))
                .collect();
            assert_eq!((got_seeded, got), (*seeded, want), "{name}");
        }
    }

    #[test]
    fn a_resumed_worker_reports_its_recovery() {
        let mut engine = AlertEngine::new(3);
        assert!(engine.resume_worker(&history(Some(("no response", 5)), &[("no response", 5)])));
        let input = CycleInput {
            services: &[],
            worker: Some(WorkerObservation::Code(200)),
            internet_online: true,
            time_text: T,
            now_ms: 0,
        };
        let alerts = engine.process(&input);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].title, "✅ Worker recovered");
        assert_eq!(alerts[0].old_status.as_deref(), Some("no response"));
        // Only no-response rows (a heartbeat that was disabled stores NULL): nothing known.
        let mut engine = AlertEngine::new(3);
        assert!(!engine.resume_worker(&history(None, &[("no response", 2), ("no response", 1)])));
    }
}
