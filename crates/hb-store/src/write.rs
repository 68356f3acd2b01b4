//! The write interface: what the agent does to its store. Cycles are written whole or not at
//! all, a cycle already stored is not stored twice, and the reads here are only what the agent
//! resumes from at start-up.

use hb_core::{AlertDelivery, AlertRecord, ChannelDelivery, CycleRecord, StoredHistory};

use crate::StoreError;

/// What [`WriteStore::claim_outbox`] found at start-up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outbox {
    /// Undelivered alerts young enough to send now, oldest first, now marked redelivered.
    pub redeliver: Vec<PendingAlert>,
    /// Undelivered alerts too old to send, now marked given up.
    pub given_up: usize,
}

/// An alert to redeliver, with the channels that already have a final result for it (they are
/// not sent to again; the alert's summed-up result includes them).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingAlert {
    pub alert: AlertRecord,
    pub done: Vec<ChannelDelivery>,
}

/// What one [`WriteStore::maintain`] step did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maintenance {
    /// Raw cycles deleted for retention.
    pub cycles_pruned: u64,
    /// Service checks deleted with them.
    pub checks_pruned: u64,
    /// Rollup blocks deleted for their tier's retention.
    pub rollups_pruned: u64,
    /// Alerts deleted (older than their retention).
    pub alerts_pruned: u64,
    /// Raw cycles whose rollups this step built (backfill).
    pub cycles_backfilled: u64,
    /// Whether more work is waiting (call again soon rather than at the next idle moment).
    pub more: bool,
}

impl Maintenance {
    pub fn is_empty(&self) -> bool {
        self.cycles_pruned == 0
            && self.checks_pruned == 0
            && self.rollups_pruned == 0
            && self.alerts_pruned == 0
            && self.cycles_backfilled == 0
    }
}

/// A store the agent writes. Blocking: the agent owns it on its writer thread.
pub trait WriteStore: Send {
    /// Writes one cycle, its service rows and the alerts it created in one transaction.
    /// A cycle whose id is stored already changes nothing.
    fn record_cycle(
        &mut self,
        cycle: &CycleRecord,
        alerts: &[AlertRecord],
    ) -> Result<(), StoreError>;

    /// Writes many cycles in one transaction (bulk loads).
    fn record_cycles(&mut self, cycles: &[CycleRecord]) -> Result<(), StoreError>;

    /// Records how delivering an alert went. An unknown uid is not an error.
    fn record_delivery(&mut self, delivery: &AlertDelivery) -> Result<(), StoreError>;

    /// Records how delivering an alert through one channel went (a row per alert and channel,
    /// replaced by a later result of the same pair). An unknown uid is not an error.
    fn record_channel_delivery(&mut self, delivery: &ChannelDelivery) -> Result<(), StoreError>;

    /// Called before retrying writes that failed: gives back what failed writes hold on to
    /// (SQLite merges and empties its write-ahead log, which is what fills a full disk).
    /// Its failure is not reported: the retry that follows says whether writing works.
    fn prepare_retry(&mut self) {}

    /// The alert outbox at start-up, in one transaction: pending alerts created before
    /// `now_ms - max_age_ms` are marked given up with `give_up_reason`; the younger ones are
    /// marked redelivered at `now_text` and returned, oldest first.
    fn claim_outbox(
        &mut self,
        now_ms: i64,
        now_text: &str,
        max_age_ms: i64,
        give_up_reason: &str,
    ) -> Result<Outbox, StoreError>;

    /// What the store remembers of a service: its newest alert and its `window` newest checks.
    fn service_history(&mut self, name: &str, window: u32) -> Result<StoredHistory, StoreError>;

    /// [`WriteStore::service_history`] of the heartbeat receiver (the `worker` item).
    fn worker_history(&mut self, window: u32) -> Result<StoredHistory, StoreError>;

    /// One small step of housekeeping (retention, rollup backfill) at `now_ms`, taking about
    /// `budget` at most, between cycles. A store with nothing to do returns an empty report.
    fn maintain(
        &mut self,
        _now_ms: i64,
        _budget: std::time::Duration,
    ) -> Result<Maintenance, StoreError> {
        Ok(Maintenance::default())
    }
}

/// Opens the store a [`WriteStore`] writes, again after a failure that needs it.
pub trait OpenWriteStore: Send {
    fn open(&self) -> Result<Box<dyn WriteStore>, StoreError>;

    /// Where the store is, for logs: no credentials.
    fn describe(&self) -> String;
}
