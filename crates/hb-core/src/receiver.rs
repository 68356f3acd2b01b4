//! The heartbeat receiver's decisions (SPEC §7 "Receiver"): what a heartbeat means given the
//! agent's previous state, which answer it gets, when the watchdog raises "agent silent", the
//! state an agent is shown in, and the alert texts. No I/O and no clock: instants are epoch
//! milliseconds passed in, and times shown in texts arrive already formatted in `TZ`.

use crate::alerting::AlertDraft;

/// What the receiver remembers of one agent between heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Watched {
    /// The last heartbeat recorded; `None` while the agent was never seen.
    pub last_seen_ms: Option<i64>,
    /// An "agent silent" alarm was raised and the agent has not come back since.
    pub alarmed: bool,
}

/// How an agent is shown (`GET /api/agents`, `/metrics`, the page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentState {
    Up,
    Silent,
    NeverSeen,
}

impl AgentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Up => "up",
            AgentState::Silent => "silent",
            AgentState::NeverSeen => "never seen",
        }
    }
}

/// The state shown now: silent as soon as the grace is over, even before the watchdog's next
/// tick raises the alarm.
pub fn agent_state(w: &Watched, now_ms: i64, grace_ms: i64) -> AgentState {
    match w.last_seen_ms {
        None => AgentState::NeverSeen,
        Some(t) if w.alarmed || now_ms - t > grace_ms => AgentState::Silent,
        Some(_) => AgentState::Up,
    }
}

/// What an arriving heartbeat is, from the agent's previous state (`None`: it could not be read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The previous state is unknown: record it, but no recovery can be detected.
    Blind,
    /// An ordinary heartbeat.
    Recorded,
    /// The agent had been declared silent and is back; `last_seen_ms` is its heartbeat before
    /// the silence (`None`: it had never been seen).
    Recovered { last_seen_ms: Option<i64> },
}

pub fn arrival(previous: Option<&Watched>) -> Arrival {
    match previous {
        None => Arrival::Blind,
        Some(w) if w.alarmed => Arrival::Recovered {
            last_seen_ms: w.last_seen_ms,
        },
        Some(_) => Arrival::Recorded,
    }
}

/// The answer to one heartbeat (the codes the agent stores as `worker_status`, SPEC §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Recorded,
    Recovered,
    Blind,
    RecoveryUpdateFailed,
    /// Nothing could be stored.
    StoreFailed,
}

impl Answer {
    /// From what the heartbeat was and which writes succeeded: the heartbeat itself, then (for a
    /// recovery) the recovery.
    pub fn of(arrival: Arrival, heartbeat_stored: bool, recovery_stored: bool) -> Answer {
        match (arrival, heartbeat_stored) {
            (_, false) => Answer::StoreFailed,
            (Arrival::Blind, true) => Answer::Blind,
            (Arrival::Recorded, true) => Answer::Recorded,
            (Arrival::Recovered { .. }, true) if recovery_stored => Answer::Recovered,
            (Arrival::Recovered { .. }, true) => Answer::RecoveryUpdateFailed,
        }
    }

    pub fn status_code(self) -> u16 {
        match self {
            Answer::Recorded | Answer::Recovered => 200,
            Answer::Blind => 220,
            Answer::RecoveryUpdateFailed => 221,
            Answer::StoreFailed => 500,
        }
    }

    /// The `result` word of the JSON answer.
    pub fn result(self) -> &'static str {
        match self {
            Answer::Recorded => "recorded",
            Answer::Recovered => "recovered",
            Answer::Blind => "blind",
            Answer::RecoveryUpdateFailed => "recovery-update-failed",
            Answer::StoreFailed => "store-failed",
        }
    }
}

/// A silence the watchdog must raise an alarm for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Silence {
    /// The last heartbeat, or (never seen) when the receiver started watching.
    pub since_ms: i64,
    pub never_seen: bool,
    pub silent_for_ms: i64,
}

/// The watchdog's decision for one agent: an alarm once its silence exceeds `grace_ms`, and
/// none while one is already raised. A never-seen agent's silence counts from `started_ms`,
/// the receiver's start.
pub fn watch(w: &Watched, now_ms: i64, grace_ms: i64, started_ms: i64) -> Option<Silence> {
    if w.alarmed {
        return None;
    }
    let since_ms = w.last_seen_ms.unwrap_or(started_ms);
    let silent_for_ms = now_ms - since_ms;
    (silent_for_ms > grace_ms).then_some(Silence {
        since_ms,
        never_seen: w.last_seen_ms.is_none(),
        silent_for_ms,
    })
}

/// `2h 5m 3s`, `45s`, `0s` (whole seconds; negative counts as zero).
pub fn format_duration(ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3_600,
        secs % 3_600 / 60,
        secs % 60,
    );
    let mut parts = Vec::new();
    if d > 0 {
        parts.push(format!("{d}d"));
    }
    if d > 0 || h > 0 {
        parts.push(format!("{h}h"));
    }
    if d > 0 || h > 0 || m > 0 {
        parts.push(format!("{m}m"));
    }
    parts.push(format!("{s}s"));
    parts.join(" ")
}

/// The agent's last reported services as `name status` pairs, in the order it sent them.
fn services_text(services: &[(String, String)]) -> String {
    if services.is_empty() {
        return "none reported".to_owned();
    }
    services
        .iter()
        .map(|(name, status)| format!("{name} {status}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the texts of one agent's alarm need; times in `TZ` as `YYYY-MM-DD HH:MM:SS`.
#[derive(Debug, Clone, Copy)]
pub struct AlarmContext<'a> {
    pub agent: &'a str,
    /// The last heartbeat's time; `None`: never seen.
    pub last_seen_text: Option<&'a str>,
    pub services: &'a [(String, String)],
    pub time_text: &'a str,
}

/// "agent silent": the agent, when it was last seen, for how long, its last known services.
pub fn silent_alert(ctx: &AlarmContext<'_>, silence: &Silence, grace_ms: i64) -> AlertDraft {
    let (title, old, last_seen) = match ctx.last_seen_text {
        Some(t) if !silence.never_seen => (
            format!("🔴 Agent silent: {}", ctx.agent),
            "up",
            t.to_owned(),
        ),
        _ => (
            format!("🔴 Agent never seen: {}", ctx.agent),
            "never seen",
            "never (no heartbeat since the receiver started watching)".to_owned(),
        ),
    };
    AlertDraft {
        item: ctx.agent.to_owned(),
        old_status: Some(old.to_owned()),
        new_status: "silent".to_owned(),
        title,
        message: format!(
            "**Agent:** {}\n**Last seen:** {last_seen}\n**Silent for:** {} (grace {})\n**Last services:** {}\n**Time:** {}",
            ctx.agent,
            format_duration(silence.silent_for_ms),
            format_duration(grace_ms),
            services_text(ctx.services),
            ctx.time_text
        ),
    }
}

/// "agent back": the outage's length (from its last heartbeat before the silence to now).
pub fn back_alert(ctx: &AlarmContext<'_>, outage_ms: Option<i64>) -> AlertDraft {
    let outage = match outage_ms {
        Some(ms) => format_duration(ms),
        None => "unknown (first heartbeat ever)".to_owned(),
    };
    AlertDraft {
        item: ctx.agent.to_owned(),
        old_status: Some("silent".to_owned()),
        new_status: "up".to_owned(),
        title: format!("✅ Agent back: {}", ctx.agent),
        message: format!(
            "**Agent:** {}\n**Outage:** {outage}\n**Last seen before:** {}\n**Services:** {}\n**Time:** {}",
            ctx.agent,
            ctx.last_seen_text.unwrap_or("never"),
            services_text(ctx.services),
            ctx.time_text
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: i64 = 60_000;

    fn seen(at: i64, alarmed: bool) -> Watched {
        Watched {
            last_seen_ms: Some(at),
            alarmed,
        }
    }

    #[test]
    fn the_watchdog_alarms_once_past_the_grace() {
        let never = Watched::default();
        // (state, now, started, expected alarm: since, never seen)
        type Case = (Watched, i64, i64, Option<(i64, bool)>);
        let cases: [Case; 7] = [
            (seen(1_000, false), 61_000, 0, None),
            (seen(1_000, false), 61_001, 0, Some((1_000, false))),
            (seen(1_000, true), 900_000, 0, None),
            (never, 60_000, 0, None),
            (never, 70_001, 10_000, Some((10_000, true))),
            (
                Watched {
                    alarmed: true,
                    ..never
                },
                900_000,
                0,
                None,
            ),
            // A clock step back never alarms.
            (seen(100_000, false), 50_000, 0, None),
        ];
        for (w, now, started, want) in cases {
            let got = watch(&w, now, GRACE, started).map(|s| (s.since_ms, s.never_seen));
            assert_eq!(got, want, "{w:?} at {now}");
        }
    }

    #[test]
    fn heartbeats_and_their_answers() {
        use Answer::*;
        let recovered = Arrival::Recovered {
            last_seen_ms: Some(5),
        };
        // (previous, heartbeat stored, recovery stored, answer, code)
        let cases = [
            (None, true, true, Blind, 220),
            (None, false, true, StoreFailed, 500),
            (Some(seen(5, false)), true, true, Recorded, 200),
            (Some(seen(5, false)), false, true, StoreFailed, 500),
            (Some(seen(5, true)), true, true, Recovered, 200),
            (Some(seen(5, true)), true, false, RecoveryUpdateFailed, 221),
            (Some(seen(5, true)), false, false, StoreFailed, 500),
        ];
        for (previous, hb, rec, want, code) in cases {
            let a = arrival(previous.as_ref());
            if previous.is_some_and(|w| w.alarmed) {
                assert_eq!(a, recovered);
            }
            let got = Answer::of(a, hb, rec);
            assert_eq!(
                (got, got.status_code()),
                (want, code),
                "{previous:?} {hb} {rec}"
            );
        }
        assert_eq!(RecoveryUpdateFailed.result(), "recovery-update-failed");
    }

    #[test]
    fn shown_states() {
        let cases = [
            (Watched::default(), AgentState::NeverSeen),
            (seen(0, false), AgentState::Up),
            (seen(-1, false), AgentState::Silent),
            (seen(50_000, true), AgentState::Silent),
        ];
        for (w, want) in cases {
            assert_eq!(agent_state(&w, GRACE, GRACE), want, "{w:?}");
        }
        assert_eq!(AgentState::NeverSeen.as_str(), "never seen");
    }

    #[test]
    fn durations_read_like_the_dashboard() {
        for (ms, want) in [
            (0, "0s"),
            (-5, "0s"),
            (59_999, "59s"),
            (61_000, "1m 1s"),
            (3_600_000, "1h 0m 0s"),
            (90_061_000, "1d 1h 1m 1s"),
        ] {
            assert_eq!(format_duration(ms), want);
        }
    }

    #[test]
    fn alarm_texts_name_the_agent_its_silence_and_services() {
        let services = vec![
            ("api".to_owned(), "healthy".to_owned()),
            ("db".to_owned(), "down".to_owned()),
        ];
        let ctx = AlarmContext {
            agent: "web-1",
            last_seen_text: Some("2026-12-02 10:00:00"),
            services: &services,
            time_text: "2026-12-02 10:01:05",
        };
        let silence = Silence {
            since_ms: 0,
            never_seen: false,
            silent_for_ms: 65_000,
        };
        let a = silent_alert(&ctx, &silence, GRACE);
        assert_eq!(a.title, "🔴 Agent silent: web-1");
        assert_eq!(
            a.message,
            "**Agent:** web-1\n**Last seen:** 2026-12-02 10:00:00\n**Silent for:** 1m 5s (grace 1m 0s)\n**Last services:** api healthy, db down\n**Time:** 2026-12-02 10:01:05"
        );
        assert_eq!(
            (a.old_status.as_deref(), a.new_status.as_str()),
            (Some("up"), "silent")
        );
        let b = back_alert(&ctx, Some(125_000));
        assert_eq!(b.title, "✅ Agent back: web-1");
        assert!(b.message.contains("**Outage:** 2m 5s"), "{}", b.message);
        let never = AlarmContext {
            last_seen_text: None,
            services: &[],
            ..ctx
        };
        let n = silent_alert(
            &never,
            &Silence {
                never_seen: true,
                ..silence
            },
            GRACE,
        );
        assert_eq!(n.title, "🔴 Agent never seen: web-1");
        assert!(n.message.contains("none reported"), "{}", n.message);
    }
}
