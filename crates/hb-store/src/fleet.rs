//! The fleet read interface: a store that holds many hosts (the fleet database) answers each
//! host's questions through the same [`Snapshot`] as a single-host store, plus a summary of
//! every host. A single-host store is not a fleet ([`crate::ReadStore::fleet`] is `None`).

use crate::{AlertRow, Snapshot, StoreError};

/// The bad statuses first: the worst status of a set is the first of these present.
pub const SEVERITY: [hb_core::ServiceStatus; 5] = [
    hb_core::ServiceStatus::Down,
    hb_core::ServiceStatus::Error,
    hb_core::ServiceStatus::Timeout,
    hb_core::ServiceStatus::Unknown,
    hb_core::ServiceStatus::Healthy,
];

/// One host as the fleet overview shows it: its newest cycle and how it got there.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSummary {
    pub name: String,
    /// The agent's `LOOP_INTERVAL_SECONDS`, as it last said.
    pub interval_seconds: Option<f64>,
    /// The newest cycle's instant and text; `None` before the first cycle arrived.
    pub last_cycle_ms: Option<i64>,
    pub last_updated: Option<String>,
    /// Checks of the newest cycle by status, in [`hb_core::ServiceStatus::ALL`] order
    /// ([`hb_core::aggregate::status_index`]).
    pub statuses: [u64; 5],
    pub internet_status: Option<bool>,
    pub worker_status: Option<i64>,
    /// When the agent's last batch was committed.
    pub shipped_ms: Option<i64>,
    /// The percentage of healthy checks per six-minute block of the last hour, oldest first
    /// (`None`: no check in that block).
    pub uptime_1h: Vec<Option<f64>>,
}

impl HostSummary {
    /// The worst status among the newest cycle's checks; `None` without checks.
    pub fn worst_status(&self) -> Option<hb_core::ServiceStatus> {
        SEVERITY
            .into_iter()
            .find(|s| self.statuses[hb_core::aggregate::status_index(*s)] > 0)
    }

    pub fn total(&self) -> u64 {
        self.statuses.iter().sum()
    }
}

/// An alert with the host that raised it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostAlert {
    pub host: String,
    pub alert: AlertRow,
}

/// What [`FleetStore::host_snapshot`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPick {
    /// `f` ran on the host's snapshot.
    Ran,
    /// No host has that name.
    Unknown,
    /// No host was named and the fleet has this many (not one).
    Ambiguous(usize),
}

/// A store of many hosts. Blocking, as [`crate::ReadStore`]: call it from a blocking thread.
pub trait FleetStore: Send + Sync {
    /// Every host, by name.
    fn hosts(&self, now_ms: i64) -> Result<Vec<HostSummary>, StoreError>;

    /// Runs `f` inside one consistent snapshot of `host`'s data (`None`: the fleet's only
    /// host). As [`crate::ReadStore::snapshot`], `f` may run more than once.
    fn host_snapshot(
        &self,
        host: Option<&str>,
        f: &mut dyn FnMut(&dyn Snapshot) -> Result<(), StoreError>,
    ) -> Result<HostPick, StoreError>;

    /// Newest alerts first across the hosts (or of `host` only), at most `limit`; `None` when
    /// `host` is unknown.
    fn alerts(&self, host: Option<&str>, limit: u32) -> Result<Option<Vec<HostAlert>>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_core::ServiceStatus;

    fn with(statuses: [u64; 5]) -> HostSummary {
        HostSummary {
            name: "h".into(),
            interval_seconds: Some(10.0),
            last_cycle_ms: Some(0),
            last_updated: None,
            statuses,
            internet_status: None,
            worker_status: None,
            shipped_ms: None,
            uptime_1h: Vec::new(),
        }
    }

    #[test]
    fn the_worst_status_is_the_most_severe_present() {
        // healthy, error, timeout, down, unknown
        assert_eq!(
            with([3, 0, 0, 0, 0]).worst_status(),
            Some(ServiceStatus::Healthy)
        );
        assert_eq!(
            with([3, 1, 0, 0, 1]).worst_status(),
            Some(ServiceStatus::Error)
        );
        assert_eq!(
            with([0, 1, 2, 1, 0]).worst_status(),
            Some(ServiceStatus::Down)
        );
        assert_eq!(
            with([1, 0, 1, 0, 0]).worst_status(),
            Some(ServiceStatus::Timeout)
        );
        assert_eq!(
            with([1, 0, 0, 0, 2]).worst_status(),
            Some(ServiceStatus::Unknown)
        );
        assert_eq!(with([0; 5]).worst_status(), None);
        assert_eq!(with([1, 2, 3, 4, 5]).total(), 15);
    }
}
