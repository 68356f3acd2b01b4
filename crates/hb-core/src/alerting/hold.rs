//! What happens to the engine's decisions before they are sent: reminders while an item stays
//! bad (`ALERT_REMINDER_MINUTES`) and maintenance windows that hold alerts
//! (`MAINTENANCE_WINDOWS`, see [`crate::maintenance`]).
//!
//! Reminders. While an item (a service or the worker) is stable-bad and the operator has been
//! told so, a reminder goes out every interval after the last thing they heard of it (its
//! alert, a reminder, a maintenance summary); a recovery stops them. Services held back by an
//! internet outage get none (their alert itself is still to come).
//!
//! Maintenance. While a window covering an item is open, the item's alerts and reminders are
//! held: not returned, so neither recorded nor sent, while its checks and its debounced status
//! go on as usual. When the window closes, one summary alert lists what it covers that is still
//! bad (with status and reason) and what recovered inside it, and counts what it held; nothing
//! at all is sent for a window that held nothing and ends with everything good. A window that
//! closes while another open one covers all it covers hands what it held to that one. The
//! summary counts as telling: reminders of the still-bad items start from it. An engine started
//! inside a window knows nothing of what the run before it held, but its summary still lists
//! what is bad.

use super::*;
use crate::maintenance::{MaintenanceSchedule, Occurrence};

/// The item name of maintenance summaries.
pub const MAINTENANCE_ITEM: &str = "maintenance";

/// Reminders and maintenance windows.
#[derive(Debug, Clone, Default)]
pub struct AlertPolicy {
    /// Interval of reminders in milliseconds; `None`: no reminders.
    pub reminder_ms: Option<i64>,
    pub maintenance: MaintenanceSchedule,
}

/// The windows open at the last cycle, with what each held.
#[derive(Debug, Default)]
pub(super) struct HoldState {
    open: Vec<Held>,
}

#[derive(Debug)]
struct Held {
    occurrence: Occurrence,
    /// How many alerts (and reminders) it held.
    alerts: u32,
    /// Items whose recovery it held, in order.
    recovered: Vec<String>,
}

impl Held {
    fn new(occurrence: Occurrence) -> Held {
        Held {
            occurrence,
            alerts: 0,
            recovered: Vec::new(),
        }
    }

    fn hold(&mut self, draft: &AlertDraft) {
        self.alerts += 1;
        self.recovered.retain(|i| *i != draft.item);
        if is_good(draft) {
            self.recovered.push(draft.item.clone());
        }
    }

    fn absorb(&mut self, other: Held) {
        self.alerts += other.alerts;
        for item in other.recovered {
            if !self.recovered.contains(&item) {
                self.recovered.push(item);
            }
        }
    }
}

/// Whether an alert says its item is good again.
fn is_good(draft: &AlertDraft) -> bool {
    match draft.item.as_str() {
        WORKER_ITEM => draft.new_status == "200",
        INTERNET_ITEM => draft.new_status == "online",
        _ => draft
            .new_status
            .parse::<ServiceStatus>()
            .is_ok_and(|s| s.is_healthy()),
    }
}

impl AlertEngine {
    /// Reminders and maintenance holds applied to the alerts [`AlertEngine::decide`] made.
    pub(super) fn apply_policy(
        &mut self,
        input: &CycleInput<'_>,
        decided: Vec<AlertDraft>,
    ) -> Vec<AlertDraft> {
        let now = input.now_ms;
        let active = self.policy.maintenance.active_at(now);
        let mut ended = std::mem::take(&mut self.hold.open);
        let mut open: Vec<Held> = active
            .iter()
            .map(
                |occ| match ended.iter().position(|h| h.occurrence == *occ) {
                    Some(i) => ended.remove(i),
                    None => Held::new(*occ),
                },
            )
            .collect();

        let decided_items: Vec<String> = decided.iter().map(|d| d.item.clone()).collect();
        let mut out = Vec::new();
        let mut quiet_recoveries = Vec::new();
        for draft in decided {
            self.route(draft, &mut open, &mut out, &mut quiet_recoveries, now);
        }

        let mut summaries = Vec::new();
        for mut closed in ended {
            let windows = self.policy.maintenance.windows();
            let window = &windows[closed.occurrence.window];
            for item in quiet_recoveries.iter().filter(|i| window.covers(i)) {
                closed.recovered.retain(|r| r != item);
                closed.recovered.push(item.clone());
            }
            let covers_all = |h: &Held| {
                let wide = &windows[h.occurrence.window];
                wide.items.is_empty()
                    || (!window.items.is_empty() && window.items.iter().all(|i| wide.covers(i)))
            };
            if let Some(wider) = open.iter_mut().find(|h| covers_all(h)) {
                wider.absorb(closed);
            } else if let Some(summary) = self.summary(&closed, &open, input) {
                summaries.push(summary);
            }
        }

        // After the summaries: they count as telling.
        for reminder in self.reminders(input, &decided_items) {
            self.route(reminder, &mut open, &mut out, &mut quiet_recoveries, now);
        }
        self.hold.open = open;
        summaries.extend(out);
        summaries
    }

    /// Holds `draft` in the first open window covering its item, drops it when it is the
    /// recovery of a failure the operator never heard of (a held one), or passes it to `out`.
    fn route(
        &mut self,
        draft: AlertDraft,
        open: &mut [Held],
        out: &mut Vec<AlertDraft>,
        quiet_recoveries: &mut Vec<String>,
        now: i64,
    ) {
        let good = is_good(&draft);
        let windows = self.policy.maintenance.windows();
        if let Some(held) = open
            .iter_mut()
            .find(|h| windows[h.occurrence.window].covers(&draft.item))
        {
            held.hold(&draft);
            if let Some(silenced) = self.silenced_mut(&draft.item) {
                *silenced = !good;
            }
        } else if good && self.silenced_mut(&draft.item).is_some_and(|s| *s) {
            self.note_told(&draft.item, false, now);
            quiet_recoveries.push(draft.item);
        } else {
            self.note_told(&draft.item, !good, now);
            out.push(draft);
        }
    }

    fn silenced_mut(&mut self, item: &str) -> Option<&mut bool> {
        if item == WORKER_ITEM {
            Some(&mut self.worker_silenced)
        } else {
            self.services.get_mut(item).map(|s| &mut s.silenced)
        }
    }

    /// Records that the operator heard of `item` at `now`: bad (reminders count from here) or
    /// good (reminders stop).
    fn note_told(&mut self, item: &str, bad: bool, now: i64) {
        if let Some(silenced) = self.silenced_mut(item) {
            *silenced = false;
        }
        let told = bad.then_some(now);
        if item == WORKER_ITEM {
            self.worker_told_ms = told;
        } else if let Some(state) = self.services.get_mut(item) {
            state.told_ms = told;
        }
    }

    fn reminders(&self, input: &CycleInput<'_>, decided: &[String]) -> Vec<AlertDraft> {
        let Some(every) = self.policy.reminder_ms else {
            return Vec::new();
        };
        let now = input.now_ms;
        let due = |told: Option<i64>| told.is_some_and(|t| now.saturating_sub(t) >= every);
        let alerted = |item: &str| decided.iter().any(|d| d == item);
        let mut out = Vec::new();
        for obs in input.services {
            let Some(state) = self.services.get(obs.name) else {
                continue;
            };
            let Some(&status) = state.debounce.stable() else {
                continue;
            };
            if obs.outcome.agent_fault
                || status.is_healthy()
                || state.held_from.is_some()
                || !due(state.told_ms)
                || alerted(obs.name)
            {
                continue;
            }
            // The reason of the latest check, when it is of the same kind of trouble.
            let reason = if obs.outcome.status.is_healthy() {
                "unspecified"
            } else {
                reason_of(obs.outcome)
            };
            out.push(AlertDraft {
                item: obs.name.to_owned(),
                old_status: Some(status.to_string()),
                new_status: status.to_string(),
                title: format!("🔁 {} {}", obs.name, still_phrase(status)),
                message: format!(
                    "**Service:** {}\n**Status:** {status}\n**Reason:** {reason}\n**Still down for:** {}\n**Time:** {}",
                    obs.name,
                    bad_for(state.bad_since_ms, now),
                    input.time_text
                ),
            });
        }
        if input.worker.is_some()
            && let Some(&status) = self.worker.stable()
            && status != WorkerStatus::Code(200)
            && due(self.worker_told_ms)
            && !alerted(WORKER_ITEM)
        {
            let text = status.text();
            out.push(AlertDraft {
                item: WORKER_ITEM.to_owned(),
                old_status: Some(text.clone()),
                new_status: text.clone(),
                title: format!("🔁 Worker still failing ({text})"),
                message: format!(
                    "**Item:** worker\n**Status:** {text}\n**Still down for:** {}\n**Time:** {}",
                    bad_for(self.worker_bad_since_ms, now),
                    input.time_text
                ),
            });
        }
        out
    }

    /// The summary of a window that closed: what it covers that is still bad (leaving out what
    /// a window still open covers), what recovered inside it, how many alerts it held. `None`
    /// when it held nothing and nothing is bad.
    fn summary(
        &mut self,
        closed: &Held,
        still_open: &[Held],
        input: &CycleInput<'_>,
    ) -> Option<AlertDraft> {
        let windows = self.policy.maintenance.windows();
        let window = &windows[closed.occurrence.window];
        let in_scope = |item: &str| {
            window.covers(item)
                && !still_open
                    .iter()
                    .any(|h| windows[h.occurrence.window].covers(item))
        };
        let mut still_bad: Vec<(String, String)> = Vec::new();
        for obs in input.services {
            let Some(status) = self
                .services
                .get(obs.name)
                .and_then(|s| s.debounce.stable())
            else {
                continue;
            };
            if status.is_healthy() || !in_scope(obs.name) {
                continue;
            }
            let reason = if obs.outcome.status.is_healthy() || obs.outcome.agent_fault {
                String::new()
            } else {
                format!(" ({})", reason_of(obs.outcome))
            };
            still_bad.push((obs.name.to_owned(), format!("{status}{reason}")));
        }
        if input.worker.is_some()
            && in_scope(WORKER_ITEM)
            && let Some(status) = self.worker.stable()
            && *status != WorkerStatus::Code(200)
        {
            still_bad.push((WORKER_ITEM.to_owned(), status.text()));
        }
        let recovered: Vec<String> = closed
            .recovered
            .iter()
            .filter(|r| !still_bad.iter().any(|(b, _)| b == *r))
            .cloned()
            .collect();
        if still_bad.is_empty() && closed.alerts == 0 {
            return None;
        }
        let mut message = format!("**Window:** {}\n", window.text);
        for (item, _) in &still_bad {
            self.note_told(item, true, input.now_ms);
        }
        if still_bad.is_empty() {
            message.push_str("**Still bad:** none\n");
        } else {
            message.push_str("**Still bad:**\n");
            for (item, status) in &still_bad {
                message.push_str(&format!("- **{item}**: {status}\n"));
            }
        }
        if !recovered.is_empty() {
            message.push_str(&format!(
                "**Recovered during the window:** {}\n",
                recovered.join(", ")
            ));
        }
        message.push_str(&format!(
            "**Alerts held:** {}\n**Time:** {}",
            closed.alerts, input.time_text
        ));
        Some(AlertDraft {
            item: MAINTENANCE_ITEM.to_owned(),
            old_status: Some("maintenance".to_owned()),
            new_status: if still_bad.is_empty() { "clear" } else { "bad" }.to_owned(),
            title: match still_bad.len() {
                0 => "🛠 Maintenance over: all clear".to_owned(),
                n => format!("🛠 Maintenance over: {n} still bad"),
            },
            message,
        })
    }
}

/// How a reminder title reads for each bad status ("api is still down").
fn still_phrase(status: ServiceStatus) -> &'static str {
    match status {
        ServiceStatus::Down => "is still down",
        ServiceStatus::Error => "still returns errors",
        ServiceStatus::Timeout => "still times out",
        ServiceStatus::Unknown => "still cannot be checked",
        ServiceStatus::Healthy => "is healthy",
    }
}

fn bad_for(since: Option<i64>, now: i64) -> String {
    match since {
        Some(since) => crate::incident::format_duration(now - since),
        None => "unknown (since before the agent started)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::tz::TimeZone;

    const MIN: i64 = 60_000;

    fn outcome(status: &str) -> CheckOutcome {
        match status {
            "healthy" => CheckOutcome::healthy(Some(5.0)),
            "down" => CheckOutcome::down("Connection refused"),
            "error" => CheckOutcome::from_http_status(503, 2.0),
            "fault" => CheckOutcome::agent_fault("Agent out of file descriptors"),
            other => panic!("no fixture for {other}"),
        }
    }

    fn at(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>()
            .expect("instant")
            .as_millisecond()
    }

    /// Runs `api` and `db` through the cycles `(instant, api, db)`; returns `(instant, title)`
    /// of every alert.
    fn run(
        policy: AlertPolicy,
        threshold: u32,
        cycles: &[(&str, &str, &str)],
    ) -> Vec<(String, String)> {
        let mut engine = AlertEngine::with_policy(threshold, policy);
        let mut out = Vec::new();
        for (when, api, db) in cycles {
            let (a, d) = (outcome(api), outcome(db));
            let services = [
                ServiceObservation {
                    name: "api",
                    kind: ServiceKind::Http,
                    outcome: &a,
                    internet_dependent: false,
                },
                ServiceObservation {
                    name: "db",
                    kind: ServiceKind::Docker,
                    outcome: &d,
                    internet_dependent: false,
                },
            ];
            let drafts = engine.process(&CycleInput {
                services: &services,
                worker: None,
                internet_online: true,
                time_text: when,
                now_ms: at(when),
            });
            out.extend(drafts.into_iter().map(|d| ((*when).to_owned(), d.title)));
        }
        out
    }

    fn reminders_every(minutes: i64) -> AlertPolicy {
        AlertPolicy {
            reminder_ms: Some(minutes * MIN),
            ..AlertPolicy::default()
        }
    }

    fn windows(raw: &str, tz: &str) -> AlertPolicy {
        AlertPolicy {
            reminder_ms: None,
            maintenance: MaintenanceSchedule::parse(raw, TimeZone::get(tz).expect("zone"))
                .expect("windows"),
        }
    }

    fn titles(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn reminder_table() {
        type Case = (
            &'static str,
            AlertPolicy,
            &'static [(&'static str, &'static str, &'static str)],
            &'static [(&'static str, &'static str)],
        );
        let cases: Vec<Case> = vec![
            (
                "off by default: one alert, then silence",
                AlertPolicy::default(),
                &[
                    ("2026-12-03T10:00:00Z", "healthy", "healthy"),
                    ("2026-12-03T10:01:00Z", "down", "healthy"),
                    ("2026-12-03T11:01:00Z", "down", "healthy"),
                    ("2026-12-03T12:01:00Z", "down", "healthy"),
                ],
                &[("2026-12-03T10:01:00Z", "🔴 api is down")],
            ),
            (
                "every 60 min after the alert, stopping at recovery",
                reminders_every(60),
                &[
                    ("2026-12-03T10:00:00Z", "healthy", "healthy"),
                    ("2026-12-03T10:01:00Z", "down", "healthy"),
                    ("2026-12-03T11:00:00Z", "down", "healthy"),
                    ("2026-12-03T11:01:00Z", "down", "healthy"),
                    ("2026-12-03T11:30:00Z", "down", "healthy"),
                    ("2026-12-03T12:01:00Z", "down", "healthy"),
                    ("2026-12-03T12:30:00Z", "healthy", "healthy"),
                    ("2026-12-03T14:00:00Z", "healthy", "healthy"),
                ],
                &[
                    ("2026-12-03T10:01:00Z", "🔴 api is down"),
                    ("2026-12-03T11:01:00Z", "🔁 api is still down"),
                    ("2026-12-03T12:01:00Z", "🔁 api is still down"),
                    ("2026-12-03T12:30:00Z", "✅ api recovered"),
                ],
            ),
            (
                "a change of bad status resets the count",
                reminders_every(30),
                &[
                    ("2026-12-03T10:00:00Z", "healthy", "healthy"),
                    ("2026-12-03T10:00:10Z", "down", "healthy"),
                    ("2026-12-03T10:20:00Z", "error", "healthy"),
                    ("2026-12-03T10:30:10Z", "error", "healthy"),
                    ("2026-12-03T10:50:00Z", "error", "healthy"),
                ],
                &[
                    ("2026-12-03T10:00:10Z", "🔴 api is down"),
                    ("2026-12-03T10:20:00Z", "🟠 api changed: down → error"),
                    ("2026-12-03T10:50:00Z", "🔁 api still returns errors"),
                ],
            ),
            (
                "nothing before the failure is confirmed (threshold 2)",
                AlertPolicy {
                    reminder_ms: Some(MIN),
                    ..AlertPolicy::default()
                },
                &[
                    ("2026-12-03T10:00:00Z", "healthy", "healthy"),
                    ("2026-12-03T10:05:00Z", "down", "healthy"),
                    ("2026-12-03T10:10:00Z", "healthy", "healthy"),
                    ("2026-12-03T10:15:00Z", "down", "healthy"),
                    ("2026-12-03T10:20:00Z", "down", "healthy"),
                    ("2026-12-03T10:20:30Z", "down", "healthy"),
                    ("2026-12-03T10:21:00Z", "fault", "healthy"),
                    ("2026-12-03T10:22:00Z", "down", "healthy"),
                ],
                &[
                    ("2026-12-03T10:20:00Z", "🔴 api is down"),
                    ("2026-12-03T10:22:00Z", "🔁 api is still down"),
                ],
            ),
        ];
        for (name, policy, cycles, want) in cases {
            let threshold = if name.contains("threshold 2") { 2 } else { 1 };
            assert_eq!(run(policy, threshold, cycles), titles(want), "{name}");
        }
    }

    #[test]
    fn a_reminder_says_how_long() {
        let mut engine = AlertEngine::with_policy(1, reminders_every(60));
        let (good, bad) = (outcome("healthy"), outcome("down"));
        let mut last = Vec::new();
        for (when, o) in [
            ("2026-12-03T10:00:00Z", &good),
            ("2026-12-03T10:01:00Z", &bad),
            ("2026-12-03T12:11:00Z", &bad),
        ] {
            let services = [ServiceObservation {
                name: "api",
                kind: ServiceKind::Http,
                outcome: o,
                internet_dependent: false,
            }];
            last = engine.process(&CycleInput {
                services: &services,
                worker: None,
                internet_online: true,
                time_text: "2026-12-03 12:11:00",
                now_ms: at(when),
            });
        }
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].old_status.as_deref(), Some("down"));
        assert_eq!(last[0].new_status, "down");
        assert_eq!(
            last[0].message,
            "**Service:** api\n**Status:** down\n**Reason:** Connection refused\n\
             **Still down for:** 2 h 10 min\n**Time:** 2026-12-03 12:11:00"
        );
    }

    #[test]
    fn a_resumed_outage_reminds_from_its_last_alert() {
        let mut engine = AlertEngine::with_policy(2, reminders_every(60));
        let resumed = engine.resume_service(
            "api",
            &StoredHistory {
                last_alert: Some(("down".to_owned(), at("2026-12-03T09:30:00Z"))),
                recent: vec![("down".to_owned(), at("2026-12-03T09:59:00Z"))],
                cert: None,
                bad_since_ms: Some(at("2026-12-03T09:00:00Z")),
            },
        );
        assert!(resumed);
        let bad = outcome("down");
        let services = [ServiceObservation {
            name: "api",
            kind: ServiceKind::Http,
            outcome: &bad,
            internet_dependent: false,
        }];
        let mut input = CycleInput {
            services: &services,
            worker: None,
            internet_online: true,
            time_text: "t",
            now_ms: at("2026-12-03T10:29:00Z"),
        };
        assert!(engine.process(&input).is_empty());
        input.now_ms = at("2026-12-03T10:30:00Z");
        let reminder = engine.process(&input);
        assert_eq!(reminder.len(), 1);
        assert!(
            reminder[0]
                .message
                .contains("**Still down for:** 1 h 30 min")
        );
    }

    #[test]
    fn maintenance_table() {
        type Case = (
            &'static str,
            AlertPolicy,
            &'static [(&'static str, &'static str, &'static str)],
            &'static [(&'static str, &'static str)],
        );
        let cases: Vec<Case> = vec![
            (
                "a failure inside is held, the summary comes at the end",
                windows("daily 02:00-03:00", "UTC"),
                &[
                    ("2026-12-03T01:59:00Z", "healthy", "healthy"),
                    ("2026-12-03T02:00:00Z", "down", "healthy"),
                    ("2026-12-03T02:30:00Z", "down", "healthy"),
                    ("2026-12-03T03:00:00Z", "down", "healthy"),
                    ("2026-12-03T03:01:00Z", "healthy", "healthy"),
                ],
                &[
                    ("2026-12-03T03:00:00Z", "🛠 Maintenance over: 1 still bad"),
                    ("2026-12-03T03:01:00Z", "✅ api recovered"),
                ],
            ),
            (
                "a failure and its recovery inside are silent but counted",
                windows("daily 02:00-03:00", "UTC"),
                &[
                    ("2026-12-03T01:59:00Z", "healthy", "healthy"),
                    ("2026-12-03T02:10:00Z", "down", "healthy"),
                    ("2026-12-03T02:20:00Z", "healthy", "healthy"),
                    ("2026-12-03T03:00:00Z", "healthy", "healthy"),
                ],
                &[("2026-12-03T03:00:00Z", "🛠 Maintenance over: all clear")],
            ),
            (
                "a window that held nothing ends quietly",
                windows("daily 02:00-03:00", "UTC"),
                &[
                    ("2026-12-03T01:59:00Z", "healthy", "healthy"),
                    ("2026-12-03T02:30:00Z", "healthy", "healthy"),
                    ("2026-12-03T03:00:00Z", "healthy", "healthy"),
                ],
                &[],
            ),
            (
                "@db limits it: api alerts as usual",
                windows("daily 02:00-03:00 @db", "UTC"),
                &[
                    ("2026-12-03T01:59:00Z", "healthy", "healthy"),
                    ("2026-12-03T02:10:00Z", "down", "down"),
                    ("2026-12-03T03:10:00Z", "down", "down"),
                ],
                &[
                    ("2026-12-03T02:10:00Z", "🔴 api is down"),
                    ("2026-12-03T03:10:00Z", "🛠 Maintenance over: 1 still bad"),
                ],
            ),
            (
                "crossing midnight",
                windows("Wed 23:30-00:30", "UTC"),
                &[
                    ("2026-12-02T23:00:00Z", "healthy", "healthy"),
                    ("2026-12-02T23:45:00Z", "down", "healthy"),
                    ("2026-12-03T00:15:00Z", "down", "healthy"),
                    ("2026-12-03T00:30:00Z", "down", "healthy"),
                ],
                &[("2026-12-03T00:30:00Z", "🛠 Maintenance over: 1 still bad")],
            ),
            (
                // Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST. 01:30-02:30 local ends at
                // 03:30 CEST (01:30 UTC), an hour after it began.
                "a DST change in TZ keeps the window's hour",
                windows("daily 01:30-02:30", "Europe/Berlin"),
                &[
                    ("2026-03-29T00:00:00Z", "healthy", "healthy"),
                    ("2026-03-29T00:40:00Z", "down", "healthy"),
                    ("2026-03-29T01:20:00Z", "down", "healthy"),
                    ("2026-03-29T01:30:00Z", "down", "healthy"),
                ],
                &[("2026-03-29T01:30:00Z", "🛠 Maintenance over: 1 still bad")],
            ),
            (
                "a one-off window",
                windows("2026-12-03T10:00/2026-12-03T10:05", "America/Lima"),
                &[
                    ("2026-12-03T14:59:00Z", "healthy", "healthy"),
                    ("2026-12-03T15:01:00Z", "down", "down"),
                    ("2026-12-03T15:05:00Z", "down", "healthy"),
                ],
                &[("2026-12-03T15:05:00Z", "🛠 Maintenance over: 1 still bad")],
            ),
            (
                "reminders are held inside and start again from the summary",
                AlertPolicy {
                    reminder_ms: Some(30 * MIN),
                    ..windows("daily 02:00-03:00", "UTC")
                },
                &[
                    ("2026-12-03T01:00:00Z", "healthy", "healthy"),
                    ("2026-12-03T01:10:00Z", "down", "healthy"),
                    ("2026-12-03T01:40:00Z", "down", "healthy"),
                    ("2026-12-03T02:10:00Z", "down", "healthy"),
                    ("2026-12-03T02:40:00Z", "down", "healthy"),
                    ("2026-12-03T03:00:00Z", "down", "healthy"),
                    ("2026-12-03T03:20:00Z", "down", "healthy"),
                    ("2026-12-03T03:30:00Z", "down", "healthy"),
                ],
                &[
                    ("2026-12-03T01:10:00Z", "🔴 api is down"),
                    ("2026-12-03T01:40:00Z", "🔁 api is still down"),
                    ("2026-12-03T03:00:00Z", "🛠 Maintenance over: 1 still bad"),
                    ("2026-12-03T03:30:00Z", "🔁 api is still down"),
                ],
            ),
            (
                "a window inside a wider one hands its holds over",
                windows(
                    "2026-12-03T02:00Z/2026-12-03T03:00Z; 2026-12-03T02:10Z/2026-12-03T02:20Z @api",
                    "UTC",
                ),
                &[
                    ("2026-12-03T01:59:00Z", "healthy", "healthy"),
                    ("2026-12-03T02:15:00Z", "down", "healthy"),
                    ("2026-12-03T02:25:00Z", "healthy", "healthy"),
                    ("2026-12-03T03:00:00Z", "healthy", "healthy"),
                ],
                &[("2026-12-03T03:00:00Z", "🛠 Maintenance over: all clear")],
            ),
        ];
        for (name, policy, cycles, want) in cases {
            assert_eq!(run(policy, 1, cycles), titles(want), "{name}");
        }
    }

    #[test]
    fn a_summary_lists_what_is_bad_and_what_recovered() {
        let mut engine = AlertEngine::with_policy(1, windows("daily 02:00-03:00", "UTC"));
        let mut last = Vec::new();
        for (when, api, db) in [
            ("2026-12-03T01:59:00Z", "down", "healthy"),
            ("2026-12-03T02:00:00Z", "down", "healthy"),
            ("2026-12-03T02:10:00Z", "healthy", "error"),
            ("2026-12-03T03:00:00Z", "healthy", "error"),
        ] {
            let (a, d) = (outcome(api), outcome(db));
            let services = [
                ServiceObservation {
                    name: "api",
                    kind: ServiceKind::Http,
                    outcome: &a,
                    internet_dependent: false,
                },
                ServiceObservation {
                    name: "db",
                    kind: ServiceKind::Docker,
                    outcome: &d,
                    internet_dependent: false,
                },
            ];
            last = engine.process(&CycleInput {
                services: &services,
                worker: Some(WorkerObservation::Code(200)),
                internet_online: true,
                time_text: "2026-12-03 03:00:00",
                now_ms: at(when),
            });
        }
        assert_eq!(last.len(), 1);
        let summary = &last[0];
        assert_eq!(summary.item, MAINTENANCE_ITEM);
        assert_eq!(summary.new_status, "bad");
        assert_eq!(
            summary.message,
            "**Window:** daily 02:00-03:00\n**Still bad:**\n- **db**: error (HTTP 503)\n\
             **Recovered during the window:** api\n**Alerts held:** 2\n**Time:** 2026-12-03 03:00:00"
        );
    }
}
