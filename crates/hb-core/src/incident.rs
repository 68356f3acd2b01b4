//! Incidents: a run of bad checks of one service, from its first bad check to the first healthy
//! one after it, whether or not it ever raised an alert (a service failing since its first check
//! never alerts by the older tool's rules, and is still an outage). What one check does to the
//! service's incident is decided here; the store keeps the incidents.

use crate::CheckOutcome;

/// What one check does to its service's incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentStep {
    /// A bad check with no incident open: one starts at this check.
    Open,
    /// A bad check while one is open: it goes on.
    Extend,
    /// A healthy check while one is open: it ended at this check.
    Close,
    /// Nothing to record: healthy with none open, or a check that says nothing about the
    /// service (the agent's own fault).
    Nothing,
}

/// The step for `outcome` when an incident is (`open`) or is not open.
pub fn incident_step(open: bool, outcome: &CheckOutcome) -> IncidentStep {
    if outcome.agent_fault {
        return IncidentStep::Nothing;
    }
    match (open, outcome.status.is_healthy()) {
        (false, false) => IncidentStep::Open,
        (true, false) => IncidentStep::Extend,
        (true, true) => IncidentStep::Close,
        (false, true) => IncidentStep::Nothing,
    }
}

/// `2 h 10 min`, `5 min 3 s`, `42 s`: the length of an outage in words for alerts and the page.
pub fn format_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    let (d, h, m, sec) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec} s"),
        (0, 0, _) => format!("{m} min {sec} s"),
        (0, _, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServiceStatus;

    fn outcome(status: ServiceStatus, agent_fault: bool) -> CheckOutcome {
        CheckOutcome {
            status,
            status_code: None,
            latency_ms: None,
            reason: None,
            agent_fault,
            cert_expires_ms: None,
        }
    }

    #[test]
    fn steps() {
        use IncidentStep::*;
        use ServiceStatus::*;
        let table = [
            (false, Healthy, false, Nothing),
            (false, Down, false, Open),
            (false, Timeout, false, Open),
            (true, Error, false, Extend),
            (true, Unknown, false, Extend),
            (true, Healthy, false, Close),
            (true, Unknown, true, Nothing),
            (false, Unknown, true, Nothing),
        ];
        for (open, status, fault, want) in table {
            assert_eq!(
                incident_step(open, &outcome(status, fault)),
                want,
                "{open} {status} {fault}"
            );
        }
    }

    #[test]
    fn durations_in_words() {
        assert_eq!(format_duration(42_000), "42 s");
        assert_eq!(format_duration(303_000), "5 min 3 s");
        assert_eq!(format_duration(7_800_000), "2 h 10 min");
        assert_eq!(format_duration(90_000_000), "1 d 1 h");
        assert_eq!(format_duration(-5), "0 s");
    }
}
