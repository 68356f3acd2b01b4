//! TLS certificate expiry alerts: one alert when a service's leaf certificate falls under
//! `TLS_EXPIRY_WARN_DAYS` days, one more under [`CRITICAL_DAYS`], none again until a renewed
//! certificate (a later `notAfter`) starts over. Pure: instants are passed in.

use std::collections::HashMap;

use crate::alerting::AlertDraft;

/// The second, last threshold (days left), when the warning threshold is above it.
pub const CRITICAL_DAYS: u32 = 3;

const DAY_MS: i64 = 86_400_000;

/// How close a certificate is to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CertLevel {
    Ok,
    Warning,
    Critical,
}

impl CertLevel {
    /// The `new_status` / `old_status` text of its alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            CertLevel::Ok => "cert_ok",
            CertLevel::Warning => "cert_expiring",
            CertLevel::Critical => "cert_critical",
        }
    }
}

/// The alert item of a service's certificate: its own, so it never disturbs the service's
/// status alerts (which are resumed from the newest alert of the service's item).
pub fn cert_item(service: &str) -> String {
    format!("cert:{service}")
}

/// Whole days left at `now_ms` (rounded down; negative once expired).
pub fn days_left(not_after_ms: i64, now_ms: i64) -> i64 {
    (not_after_ms - now_ms).div_euclid(DAY_MS)
}

/// The level of a certificate ending at `not_after_ms`, seen at `now_ms`, under a warning
/// threshold of `warn_days` (0: always `Ok`).
pub fn level(warn_days: u32, not_after_ms: i64, now_ms: i64) -> CertLevel {
    if warn_days == 0 {
        return CertLevel::Ok;
    }
    let left_ms = not_after_ms - now_ms;
    let under = |days: u32| left_ms < i64::from(days) * DAY_MS;
    if !under(warn_days) {
        CertLevel::Ok
    } else if warn_days <= CRITICAL_DAYS || under(CRITICAL_DAYS) {
        // With a warning threshold of 3 days or less, that one alert is the critical one.
        CertLevel::Critical
    } else {
        CertLevel::Warning
    }
}

/// What it knows of one service's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    not_after_ms: i64,
    /// The highest level alerted (or already passed) for this certificate.
    level: CertLevel,
}

/// The expiry state of every https service.
#[derive(Debug, Clone)]
pub struct CertWatch {
    warn_days: u32,
    seen: HashMap<String, Seen>,
}

impl CertWatch {
    /// `warn_days` 0 disables the alerts (the expiry is still recorded and shown).
    pub fn new(warn_days: u32) -> Self {
        CertWatch {
            warn_days,
            seen: HashMap::new(),
        }
    }

    /// The level of a certificate ending at `not_after_ms`, seen at `now_ms`.
    pub fn level(&self, not_after_ms: i64, now_ms: i64) -> CertLevel {
        level(self.warn_days, not_after_ms, now_ms)
    }

    /// A restarted agent: the newest stored certificate of `service` and the instant of its
    /// check. The alert for the level it had then was sent then (alerts are written with their
    /// cycle), so it is not sent again.
    pub fn resume(&mut self, service: &str, not_after_ms: i64, checked_ms: i64) {
        let level = self.level(not_after_ms, checked_ms);
        self.seen.insert(
            service.to_owned(),
            Seen {
                not_after_ms,
                level,
            },
        );
    }

    /// One https answer's certificate. Returns the alert to send, if any: when the level rose
    /// above the highest already alerted for this certificate. A later `notAfter` is a renewal
    /// and starts over.
    pub fn observe(
        &mut self,
        service: &str,
        not_after_ms: i64,
        now_ms: i64,
        time_text: &str,
    ) -> Option<AlertDraft> {
        let level = self.level(not_after_ms, now_ms);
        let previous = self.seen.get(service).copied();
        let alerted = match previous {
            Some(p) if not_after_ms <= p.not_after_ms => p.level,
            // First sight, or a renewed certificate.
            _ => CertLevel::Ok,
        };
        let raised = level > alerted;
        self.seen.insert(
            service.to_owned(),
            Seen {
                not_after_ms,
                level: level.max(alerted),
            },
        );
        raised.then(|| expiry_alert(service, alerted, level, not_after_ms, now_ms, time_text))
    }
}

fn expiry_alert(
    service: &str,
    from: CertLevel,
    level: CertLevel,
    not_after_ms: i64,
    now_ms: i64,
    time_text: &str,
) -> AlertDraft {
    let left = days_left(not_after_ms, now_ms);
    let left_text = match left {
        1 => "1 day".to_owned(),
        n => format!("{n} days"),
    };
    let icon = match level {
        CertLevel::Critical => "🔴",
        _ => "🟠",
    };
    let expires = jiff::Timestamp::from_millisecond(not_after_ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|_| not_after_ms.to_string());
    AlertDraft {
        item: cert_item(service),
        old_status: Some(from.as_str().to_owned()),
        new_status: level.as_str().to_owned(),
        title: format!("{icon} {service} certificate expires in {left_text}"),
        message: format!(
            "**Service:** {service}\n**Certificate expires:** {expires} ({left_text} left)\n**Time:** {time_text}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "2026-11-29 15:41:02";
    /// 2026-12-01 00:00:00 UTC.
    const NOW: i64 = 1_796_083_200_000;

    fn days(n: f64) -> i64 {
        (n * DAY_MS as f64) as i64
    }

    /// One service's certificates over time: (notAfter, now) pairs, the titles of the alerts.
    fn run(warn_days: u32, steps: &[(i64, i64)]) -> Vec<String> {
        let mut watch = CertWatch::new(warn_days);
        steps
            .iter()
            .filter_map(|&(not_after, now)| watch.observe("web", not_after, now, T))
            .map(|a| a.title)
            .collect()
    }

    #[test]
    fn expiry_alert_table() {
        let expires = NOW + days(20.0);
        let renewed = NOW + days(90.0);
        // (what, TLS_EXPIRY_WARN_DAYS, (notAfter, now) steps, the alert titles)
        type Row = (&'static str, u32, Vec<(i64, i64)>, &'static [&'static str]);
        let table: &[Row] = &[
            (
                "40 days left: nothing",
                14,
                vec![(NOW + days(40.0), NOW)],
                &[],
            ),
            (
                "first seen at 10 days: the warning, once",
                14,
                vec![(NOW + days(10.5), NOW), (NOW + days(10.5), NOW + days(1.0))],
                &["🟠 web certificate expires in 10 days"],
            ),
            (
                "first seen at 2 days: straight to critical",
                14,
                vec![(NOW + days(2.5), NOW)],
                &["🔴 web certificate expires in 2 days"],
            ),
            (
                "crossing both thresholds over the days, one alert each",
                14,
                (0..20)
                    .map(|d| (expires, NOW + days(f64::from(d))))
                    .collect(),
                &[
                    "🟠 web certificate expires in 13 days",
                    "🔴 web certificate expires in 2 days",
                ],
            ),
            (
                "renewed: quiet again, and a new certificate alerts afresh",
                14,
                vec![
                    (NOW + days(10.5), NOW),
                    (renewed, NOW + days(1.0)),
                    (renewed, NOW + days(80.0)),
                ],
                &[
                    "🟠 web certificate expires in 10 days",
                    "🟠 web certificate expires in 10 days",
                ],
            ),
            ("0 disables", 0, vec![(NOW + days(1.0), NOW)], &[]),
            (
                "a threshold of 3 days or less is the only alert",
                2,
                vec![
                    (NOW + days(2.5), NOW),
                    (NOW + days(1.5), NOW),
                    (NOW + days(1.5), NOW + days(1.0)),
                ],
                &["🔴 web certificate expires in 1 day"],
            ),
        ];
        for (what, warn, steps, want) in table {
            assert_eq!(run(*warn, steps), *want, "{what}");
        }
    }

    #[test]
    fn the_alert_text_and_its_item() {
        let mut watch = CertWatch::new(14);
        let a = watch
            .observe("web", NOW + days(10.0) + 3_600_000, NOW, T)
            .expect("alert");
        assert_eq!(a.item, "cert:web");
        assert_eq!(a.old_status.as_deref(), Some("cert_ok"));
        assert_eq!(a.new_status, "cert_expiring");
        assert_eq!(
            a.message,
            "**Service:** web\n**Certificate expires:** 2026-12-11 01:00:00 UTC (10 days left)\n**Time:** 2026-11-29 15:41:02"
        );
        let b = watch
            .observe("web", NOW + days(10.0), NOW + days(8.0), T)
            .expect("critical");
        assert_eq!(b.old_status.as_deref(), Some("cert_expiring"));
        assert_eq!(b.new_status, "cert_critical");
        assert_eq!(b.title, "🔴 web certificate expires in 2 days");
    }

    #[test]
    fn a_resumed_watch_does_not_repeat_the_alert_of_the_stored_level() {
        let not_after = NOW + days(10.0);
        let mut watch = CertWatch::new(14);
        watch.resume("web", not_after, NOW - days(1.0));
        assert_eq!(watch.observe("web", not_after, NOW, T), None);
        // It still goes on to the next threshold.
        assert!(
            watch
                .observe("web", not_after, NOW + days(7.5), T)
                .is_some()
        );
        // Stored while still fine: the warning comes when the threshold is crossed.
        let mut watch = CertWatch::new(14);
        watch.resume("web", NOW + days(14.5), NOW);
        assert!(
            watch
                .observe("web", NOW + days(14.5), NOW + days(1.0), T)
                .is_some()
        );
    }
}
