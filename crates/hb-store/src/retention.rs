//! How long a store keeps what it holds, backend-neutral: raw cycles (with their checks), each
//! rollup tier and alerts, in whole days where 0 keeps everything. Plain data: the agent's
//! configuration fills it in, a backend's housekeeping applies it.

/// A day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// Days each kind of row is kept; `0` keeps it forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw cycles and their service checks (`RETENTION_DAYS`).
    pub raw_days: u32,
    /// Minute rollup blocks (`RETENTION_MINUTE_ROLLUPS_DAYS`).
    pub minute_rollup_days: u32,
    /// Six-minute rollup blocks (`RETENTION_6MIN_ROLLUPS_DAYS`).
    pub six_minute_rollup_days: u32,
    /// Hour rollup blocks (`RETENTION_HOUR_ROLLUPS_DAYS`).
    pub hour_rollup_days: u32,
    /// Day rollup blocks (`RETENTION_DAY_ROLLUPS_DAYS`).
    pub day_rollup_days: u32,
    /// Alerts, by creation instant (`RETENTION_ALERTS_DAYS`).
    pub alert_days: u32,
}

impl Default for Retention {
    /// The configuration's defaults: raw rows a month, minute blocks two days, six-minute blocks
    /// 35 days (the 30d range reads them), hour blocks 400 days (the 1y range reads them), day
    /// blocks forever, alerts 400 days.
    fn default() -> Self {
        Retention {
            raw_days: 30,
            minute_rollup_days: 2,
            six_minute_rollup_days: 35,
            hour_rollup_days: 400,
            day_rollup_days: 0,
            alert_days: 400,
        }
    }
}

impl Retention {
    /// Keeps everything (what the older tool did).
    pub const KEEP_ALL: Retention = Retention {
        raw_days: 0,
        minute_rollup_days: 0,
        six_minute_rollup_days: 0,
        hour_rollup_days: 0,
        day_rollup_days: 0,
        alert_days: 0,
    };

    /// Rows created before this instant are past `days` at `now_ms`; `None` when kept forever.
    pub fn cutoff_ms(days: u32, now_ms: i64) -> Option<i64> {
        (days > 0).then(|| now_ms.saturating_sub(i64::from(days) * DAY_MS))
    }

    /// The retention in days of the rollup tier `tier_s` seconds wide (`None` for an unknown
    /// tier, which is never pruned).
    pub fn rollup_days(&self, tier_s: i64) -> Option<u32> {
        match tier_s {
            60 => Some(self.minute_rollup_days),
            360 => Some(self.six_minute_rollup_days),
            3_600 => Some(self.hour_rollup_days),
            86_400 => Some(self.day_rollup_days),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_keeps_and_tiers_map() {
        assert_eq!(Retention::cutoff_ms(0, 10 * DAY_MS), None);
        assert_eq!(Retention::cutoff_ms(2, 10 * DAY_MS), Some(8 * DAY_MS));
        let r = Retention::default();
        assert_eq!(r.rollup_days(60), Some(2));
        assert_eq!(r.rollup_days(360), Some(35));
        assert_eq!(r.rollup_days(3_600), Some(400));
        assert_eq!(r.rollup_days(86_400), Some(0));
        assert_eq!(r.rollup_days(7), None);
    }
}
