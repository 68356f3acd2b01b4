//! Writes that never stop monitoring: a [`WriteStore`] that may be absent or failing, in front
//! of a bounded in-memory queue of operations not yet written, retried in order. Written against
//! the interface, so it behaves the same on every backend.

use std::collections::VecDeque;

use hb_core::{AlertDelivery, AlertRecord, ChannelDelivery, CycleRecord};

use crate::{Maintenance, OpenWriteStore, StoreError, WriteStore};

/// One write waiting its turn.
#[derive(Debug, Clone, PartialEq)]
pub enum PendingOp {
    /// A cycle and the alerts it created, written together.
    Cycle(CycleRecord, Vec<AlertRecord>),
    /// An alert's summed-up delivery result (its row in `alerts`).
    Delivery(AlertDelivery),
    /// One channel's delivery result.
    ChannelDelivery(ChannelDelivery),
}

impl PendingOp {
    fn describe(&self) -> (&'static str, &str) {
        match self {
            PendingOp::Cycle(cycle, _) => ("cycle", &cycle.id),
            PendingOp::Delivery(delivery) => ("alert delivery", &delivery.uid),
            PendingOp::ChannelDelivery(delivery) => ("channel delivery", &delivery.uid),
        }
    }
}

/// What one [`DurableWriter::submit`] or [`DurableWriter::flush`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Operations written by this call.
    pub written: usize,
    /// Operations the database refused for good (e.g. a constraint violation) and that were
    /// discarded so they do not block the queue; each is logged as an error.
    pub rejected: usize,
    /// Operations still queued after this call.
    pub pending: usize,
    /// Oldest operations discarded by this call because the queue exceeded its bound.
    pub dropped: usize,
    /// Why writing stopped in this call, when it did.
    pub last_error: Option<String>,
}

enum Failure {
    /// Worth retrying later; `reopen` when the connection itself may be unusable.
    Transient { reopen: bool },
    /// This operation will never be accepted.
    Permanent,
}

fn classify(error: &StoreError) -> Failure {
    if !error.is_transient() {
        Failure::Permanent
    } else {
        Failure::Transient {
            reopen: error.needs_reopen(),
        }
    }
}

/// Keeps the agent's writes flowing through locks, full disks and I/O errors: operations that
/// cannot be written yet wait in memory, in order, up to `max_pending`; past that the oldest
/// cycles are dropped (and logged) so memory stays bounded.
pub struct DurableWriter {
    opener: Box<dyn OpenWriteStore>,
    writer: Option<Box<dyn WriteStore>>,
    queue: VecDeque<PendingOp>,
    max_pending: usize,
    failing: bool,
    outage_dropped: u64,
    dropped_total: u64,
}

impl DurableWriter {
    /// Never fails: when the database cannot be opened now, the next submit or flush tries again.
    /// A `max_pending` of 0 is taken as 1.
    pub fn new(opener: Box<dyn OpenWriteStore>, max_pending: usize) -> DurableWriter {
        let max_pending = max_pending.max(1);
        tracing::info!(
            store = %opener.describe(),
            max_pending,
            "database writer keeps at most {max_pending} unwritten operations in memory"
        );
        let mut durable = DurableWriter {
            opener,
            writer: None,
            queue: VecDeque::new(),
            max_pending,
            failing: false,
            outage_dropped: 0,
            dropped_total: 0,
        };
        if let Err(error) = durable.connect() {
            durable.note_failure(&error);
        }
        durable
    }

    /// Queues `op` and writes everything queued, oldest first, until a write fails.
    pub fn submit(&mut self, op: PendingOp) -> WriteReport {
        self.queue.push_back(op);
        let mut report = self.drain();
        report.dropped = self.enforce_bound();
        report.pending = self.queue.len();
        report
    }

    /// Retries the queued operations without adding one (on a timer, and at shutdown).
    pub fn flush(&mut self) -> WriteReport {
        let mut report = self.drain();
        report.pending = self.queue.len();
        report
    }

    /// Runs `f` on the connection (opening it when needed), for the start-up work that is not a
    /// queued operation: the alert outbox and the stored state the alert engine resumes from.
    /// Call it before submitting anything, as the agent does.
    pub fn with_writer<T>(
        &mut self,
        f: impl FnOnce(&mut dyn WriteStore) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let result = self.connect().and_then(f);
        if let Err(error) = &result
            && matches!(classify(error), Failure::Transient { reopen: true })
        {
            self.writer = None;
        }
        result
    }

    /// One small step of the store's housekeeping ([`WriteStore::maintain`]), opening the store
    /// when needed. Writes come first: while any are queued (the store is failing, or a cycle
    /// waits its turn) it does nothing and reports no work. An error that means the connection
    /// may be unusable drops it, as a failed write does; the error is returned for the caller to
    /// log, and the queue is not touched.
    pub fn maintain(
        &mut self,
        now_ms: i64,
        budget: std::time::Duration,
    ) -> Result<Maintenance, StoreError> {
        if !self.queue.is_empty() || self.failing {
            return Ok(Maintenance::default());
        }
        self.with_writer(|writer| writer.maintain(now_ms, budget))
    }

    /// Operations waiting to be written.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Operations dropped because of the bound since this writer was made.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }

    /// Where the store is, for logs.
    pub fn describe(&self) -> String {
        self.opener.describe()
    }

    fn connect(&mut self) -> Result<&mut dyn WriteStore, StoreError> {
        if self.writer.is_none() {
            self.writer = Some(self.opener.open()?);
        }
        match self.writer.as_deref_mut() {
            Some(writer) => Ok(writer),
            None => Err(StoreError::new(
                crate::ErrorKind::Broken,
                "the store writer was not kept",
            )),
        }
    }

    fn drain(&mut self) -> WriteReport {
        let mut report = WriteReport::default();
        if self.failing && !self.queue.is_empty() {
            self.prepare_retry();
        }
        while let Some(op) = self.queue.pop_front() {
            let result = self.connect().and_then(|writer| match &op {
                PendingOp::Cycle(cycle, alerts) => writer.record_cycle(cycle, alerts),
                PendingOp::Delivery(delivery) => writer.record_delivery(delivery),
                PendingOp::ChannelDelivery(delivery) => writer.record_channel_delivery(delivery),
            });
            let Err(error) = result else {
                report.written += 1;
                continue;
            };
            match classify(&error) {
                Failure::Permanent if self.writer.is_some() => {
                    let (what, id) = op.describe();
                    tracing::error!(%error, id, "database refused {what}; discarding it");
                    report.rejected += 1;
                }
                failure => {
                    if matches!(failure, Failure::Transient { reopen: true }) {
                        self.writer = None;
                    }
                    self.queue.push_front(op);
                    self.note_failure(&error);
                    report.last_error = Some(error.to_string());
                    return report;
                }
            }
        }
        if self.failing {
            tracing::info!(
                written = report.written,
                dropped = self.outage_dropped,
                "database writes recovered; queued operations written"
            );
            self.failing = false;
            self.outage_dropped = 0;
        }
        report
    }

    /// A write failed last time: let the store give back what failed writes hold (on SQLite,
    /// on a full disk, the write-ahead log holds the space; see [`WriteStore::prepare_retry`]).
    fn prepare_retry(&mut self) {
        if let Ok(writer) = self.connect() {
            writer.prepare_retry();
        }
    }

    fn note_failure(&mut self, error: &StoreError) {
        if self.failing {
            tracing::debug!(%error, pending = self.queue.len(), "database write still failing");
        } else {
            tracing::warn!(
                %error,
                pending = self.queue.len(),
                max_pending = self.max_pending,
                "database writes failing; keeping unwritten operations in memory and retrying"
            );
            self.failing = true;
            self.outage_dropped = 0;
        }
    }

    fn enforce_bound(&mut self) -> usize {
        let mut dropped = 0;
        while self.queue.len() > self.max_pending {
            let oldest_cycle = self
                .queue
                .iter()
                .position(|op| matches!(op, PendingOp::Cycle(..)))
                .unwrap_or(0);
            self.queue.remove(oldest_cycle);
            dropped += 1;
        }
        if dropped > 0 {
            let before = self.outage_dropped;
            self.outage_dropped += dropped as u64;
            self.dropped_total += dropped as u64;
            // Warn at the first drop of an outage and then at doubling totals, so a long outage
            // is visible without one warning per cycle.
            let crossed_power_of_two =
                self.outage_dropped.ilog2() != before.checked_ilog2().unwrap_or(u32::MAX);
            if before == 0 || crossed_power_of_two {
                tracing::warn!(
                    dropped,
                    dropped_in_outage = self.outage_dropped,
                    max_pending = self.max_pending,
                    "unwritten-operation queue full; dropped the oldest cycles"
                );
            } else {
                tracing::debug!(
                    dropped,
                    dropped_in_outage = self.outage_dropped,
                    "dropped oldest cycles"
                );
            }
        }
        dropped
    }
}
