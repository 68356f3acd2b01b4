//! The interfaces on SQLite: [`SqliteStore`] opens the agent's [`Writer`] (again after a
//! failure) and the dashboard's [`SqliteReader`] from the configured path, and maps SQLite's
//! errors onto the store's kinds at the boundary.

use std::path::{Path, PathBuf};

use hb_core::{AlertDelivery, AlertRecord, ChannelDelivery, CycleRecord, StoredHistory};
use hb_store::{Maintenance, OpenWriteStore, Outbox, Retention, StoreError, WriteStore};

use crate::reader::SqliteReader;
use crate::writer::Writer;

/// A SQLite database file: what the configuration names (`SQLITE_DB_PATH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteStore {
    path: PathBuf,
    retention: Retention,
}

impl SqliteStore {
    /// The file at `path`, its writer applying the default [`Retention`].
    pub fn new(path: impl Into<PathBuf>) -> SqliteStore {
        SqliteStore {
            path: path.into(),
            retention: Retention::default(),
        }
    }

    /// The same store, its writer applying `retention` in `maintain`.
    pub fn with_retention(mut self, retention: Retention) -> SqliteStore {
        self.retention = retention;
        self
    }

    pub fn retention(&self) -> Retention {
        self.retention
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The read-only reader of this file. Opening never fails: a missing or empty database
    /// shows up as `Unavailable` on the first read.
    pub fn reader(&self) -> SqliteReader {
        SqliteReader::new(self.path.clone())
    }
}

impl OpenWriteStore for SqliteStore {
    fn open(&self) -> Result<Box<dyn WriteStore>, StoreError> {
        Ok(Box::new(
            Writer::open(&self.path)?.with_retention(self.retention),
        ))
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
}

impl WriteStore for Writer {
    fn record_cycle(
        &mut self,
        cycle: &CycleRecord,
        alerts: &[AlertRecord],
    ) -> Result<(), StoreError> {
        Ok(Writer::record_cycle(self, cycle, alerts)?)
    }

    fn record_cycles(&mut self, cycles: &[CycleRecord]) -> Result<(), StoreError> {
        Ok(Writer::record_cycles(self, cycles)?)
    }

    fn record_delivery(&mut self, delivery: &AlertDelivery) -> Result<(), StoreError> {
        Ok(Writer::record_delivery(self, delivery)?)
    }

    fn record_channel_delivery(&mut self, delivery: &ChannelDelivery) -> Result<(), StoreError> {
        Ok(Writer::record_channel_delivery(self, delivery)?)
    }

    /// On a full disk the write-ahead log is what holds the space (each cycle appends every
    /// page it touched, the main file needs them once), and a write that fails does not merge
    /// it; merging and emptying it first means the retry needs only the room the queued cycles
    /// take. Its own failure is not an error: the disk may still be full.
    fn prepare_retry(&mut self) {
        match self.checkpoint_truncate() {
            Ok(true) => tracing::debug!("write-ahead log merged and emptied before retrying"),
            Ok(false) => tracing::debug!("write-ahead log partly merged (a reader holds the rest)"),
            Err(error) => tracing::debug!(%error, "write-ahead log checkpoint failed"),
        }
    }

    fn claim_outbox(
        &mut self,
        now_ms: i64,
        now_text: &str,
        max_age_ms: i64,
        give_up_reason: &str,
    ) -> Result<Outbox, StoreError> {
        Ok(Writer::claim_outbox(
            self,
            now_ms,
            now_text,
            max_age_ms,
            give_up_reason,
        )?)
    }

    fn service_history(&mut self, name: &str, window: u32) -> Result<StoredHistory, StoreError> {
        Ok(Writer::service_history(self, name, window)?)
    }

    fn worker_history(&mut self, window: u32) -> Result<StoredHistory, StoreError> {
        Ok(Writer::worker_history(self, window)?)
    }

    fn maintain(
        &mut self,
        now_ms: i64,
        budget: std::time::Duration,
    ) -> Result<Maintenance, StoreError> {
        Ok(Writer::maintain(self, now_ms, budget)?)
    }
}
