//! The rows and aggregates a store returns, the same for every backend. Statuses are the core
//! taxonomy; the aggregates are the core's mergeable ones (`hb_core::aggregate`).

use std::collections::HashMap;

use hb_core::ServiceStatus;
use hb_core::aggregate::{CycleAcc, ServiceAcc};

/// How far shipping to the fleet database got (the agent's local record of it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FleetProgress {
    pub host: String,
    /// The instant of the newest cycle shipped (before the first shipment: the oldest cycle's,
    /// since the whole journal is behind).
    pub shipped_cycle_ms: Option<i64>,
    /// When the last batch was committed (`None`: nothing shipped yet).
    pub updated_ms: Option<i64>,
    /// The instant of the newest cycle in the journal.
    pub newest_cycle_ms: Option<i64>,
}

impl FleetProgress {
    /// How far the fleet database is behind the journal, in seconds (0 when caught up).
    pub fn lag_seconds(&self) -> Option<f64> {
        let newest = self.newest_cycle_ms?;
        let shipped = self.shipped_cycle_ms.unwrap_or(i64::MIN);
        Some((newest.saturating_sub(shipped)).max(0) as f64 / 1000.0)
    }
}

/// One check of the newest cycle, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRow {
    pub name: String,
    pub url: Option<String>,
    /// A stored status outside the taxonomy reads as `unknown`.
    pub status: ServiceStatus,
    pub status_code: Option<i64>,
    pub latency_ms: Option<f64>,
    pub error_message: Option<String>,
    /// The leaf certificate's expiry (epoch ms) of the service's newest https answer (it may
    /// be older than this check, which may have failed); `None` for other services and on
    /// databases from before it was recorded.
    pub cert_expires_ms: Option<i64>,
}

/// The newest cycle and its checks.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestCycle {
    pub id: String,
    pub timestamp: String,
    /// The instant of `timestamp`, when it parses.
    pub ts_ms: Option<i64>,
    pub cpu_percent: f64,
    pub ram_percent: f64,
    pub ram_used_mb: f64,
    pub disk_percent: f64,
    pub uptime_seconds: Option<f64>,
    pub container_count: i64,
    pub internet_status: bool,
    pub ping_ms: Option<f64>,
    pub worker_status: Option<i64>,
    pub cycle_duration_ms: Option<i64>,
    pub checks: Vec<CheckRow>,
}

/// One alert row. `old_status`/`new_status` stay text: the worker's statuses are HTTP codes and
/// `no response`, not service statuses.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertRow {
    pub id: i64,
    pub created_at: Option<String>,
    pub item: Option<String>,
    pub old_status: Option<String>,
    pub new_status: Option<String>,
    pub title: Option<String>,
    pub message: Option<String>,
    pub attempts: Option<i64>,
    pub delivered_at: Option<String>,
    pub last_error: Option<String>,
    /// `pending` (waiting, or left by a crash until the agent's next start), `delivered`,
    /// `failed` (every attempt failed) or `given_up` (too old to send after a restart; the
    /// reason is in `last_error`). See the core crate's `DeliveryState`.
    pub delivery_state: String,
    /// Set when a restarted agent re-sent it: the delivery was late.
    pub redelivered_at: Option<String>,
    /// One result per channel it was sent through, by channel name (empty for alerts written
    /// before per-channel records, and on a fleet database, which does not ship them).
    pub deliveries: Vec<ChannelRow>,
}

/// An alert's delivery through one channel.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChannelRow {
    pub channel: String,
    pub attempts: i64,
    pub delivered_at: Option<String>,
    pub last_error: Option<String>,
    /// `pending`, `delivered`, `failed` or `given_up`.
    pub state: String,
}

/// The aggregates of one bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BucketAcc {
    pub cycles: CycleAcc,
    pub services: HashMap<String, ServiceAcc>,
}

impl BucketAcc {
    /// The service's aggregate in this bucket, made empty on first use (no allocation when it
    /// exists: readers call this for thousands of rows).
    pub fn service(&mut self, name: &str) -> Option<&mut ServiceAcc> {
        if !self.services.contains_key(name) {
            self.services.insert(name.to_owned(), ServiceAcc::default());
        }
        self.services.get_mut(name)
    }
}

/// Which rows answered a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Raw cycles and checks only.
    Raw,
    /// Rollup blocks only.
    Rollup,
    /// Raw rows for the part the rollups do not cover yet, rollups for the rest.
    Mixed,
}

impl Source {
    /// The parts of a window `[start_s, end_s)` split at `split_s`: `[start_s, split_s)` read
    /// from `older` rows (raw or rollups), `[split_s, end_s)` from the other kind; and what
    /// answered the whole (a part left empty does not count). Every backend reads its windows
    /// so, which keeps their answers the same.
    pub fn split(
        older: Source,
        start_s: i64,
        split_s: i64,
        end_s: i64,
    ) -> ([(Source, i64, i64); 2], Source) {
        let newer = if older == Source::Raw {
            Source::Rollup
        } else {
            Source::Raw
        };
        let whole = if split_s == end_s {
            older
        } else if split_s == start_s {
            newer
        } else {
            Source::Mixed
        };
        ([(older, start_s, split_s), (newer, split_s, end_s)], whole)
    }

    /// Where rollups that cover every cycle from `rollups_from_ms` on take over a window of
    /// whole minutes `[start_s, end_s)`: at the first whole minute they cover.
    pub fn rollup_split_s(rollups_from_ms: i64, start_s: i64, end_s: i64) -> i64 {
        let from_s = (rollups_from_ms + 59_999).div_euclid(60_000) * 60;
        from_s.clamp(start_s, end_s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Raw => "raw",
            Source::Rollup => "rollup",
            Source::Mixed => "mixed",
        }
    }
}

/// Buckets `[start_s + i*width_s, start_s + (i+1)*width_s)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub start_s: i64,
    pub width_s: i64,
    pub buckets: Vec<BucketAcc>,
    pub source: Source,
}

/// How far the writer's rollup backfill of an older database has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BackfillProgress {
    /// No raw cycle older than the rollups' start is left to roll up.
    pub done: bool,
    /// Raw cycles still to roll up.
    pub remaining_cycles: u64,
    /// Raw cycles to roll up when the backfill started.
    pub total_cycles: u64,
    /// Every cycle from this instant (epoch ms) on is in the rollups.
    pub covered_from_ms: i64,
}

/// What the store holds beyond its rows, for `/health` and the choice of a read path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreInfo {
    /// `Some(ms)` when rollups exist and cover every cycle from `ms` on.
    pub rollups_from_ms: Option<i64>,
}

/// One incident: a run of bad checks of a service (see `hb_core::incident`).
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRow {
    pub id: i64,
    pub service: String,
    pub started_ms: i64,
    /// As stored: ISO-8601 in the agent's `TZ`.
    pub started_at: String,
    /// The last bad check.
    pub last_bad_ms: i64,
    /// The first healthy check after it; `None` while it goes on.
    pub ended_ms: Option<i64>,
    pub ended_at: Option<String>,
    /// Bad checks, and how many of each bad status.
    pub checks: u64,
    pub error: u64,
    pub timeout: u64,
    pub down: u64,
    pub unknown: u64,
    pub first_status: ServiceStatus,
    pub last_status: ServiceStatus,
    pub first_code: Option<i64>,
    pub last_code: Option<i64>,
    /// Raw reasons: mask them before showing them (they may name internal hosts).
    pub first_reason: Option<String>,
    pub last_reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_splits_into_older_and_newer_rows() {
        let parts = |older, split| Source::split(older, 0, split, 600);
        assert_eq!(
            parts(Source::Raw, 240),
            (
                [(Source::Raw, 0, 240), (Source::Rollup, 240, 600)],
                Source::Mixed
            )
        );
        assert_eq!(parts(Source::Raw, 600).1, Source::Raw, "all older");
        assert_eq!(parts(Source::Raw, 0).1, Source::Rollup, "all newer");
        assert_eq!(parts(Source::Rollup, 0).1, Source::Raw);
        // Rollups take over at the first whole minute they cover, inside the window.
        assert_eq!(Source::rollup_split_s(120_000, 0, 600), 120);
        assert_eq!(Source::rollup_split_s(120_001, 0, 600), 180);
        assert_eq!(Source::rollup_split_s(0, 60, 600), 60);
        assert_eq!(Source::rollup_split_s(10_000_000, 0, 600), 600);
    }
}
