//! The read interface: everything the dashboard asks, inside one consistent snapshot per
//! request. No method here writes, and nothing that holds only a [`ReadStore`] can reach a write.

use crate::{
    AlertRow, BackfillProgress, FleetProgress, IncidentRow, LatestCycle, StoreError, StoreInfo,
    Window,
};

/// The queries of one snapshot: every answer within one call of [`ReadStore::snapshot`] sees
/// the same state of the store.
pub trait Snapshot {
    fn info(&self) -> StoreInfo;

    /// The rollup backfill's progress; `None` when the store has no rollups (an older
    /// database the agent has not upgraded) or keeps no such record.
    fn backfill(&self) -> Result<Option<BackfillProgress>, StoreError> {
        Ok(None)
    }

    /// How far the agent's shipping to the fleet database got, per host name it shipped as;
    /// empty when it does not ship (or the store keeps no such record).
    fn fleet_progress(&self) -> Result<Vec<FleetProgress>, StoreError> {
        Ok(Vec::new())
    }

    /// The newest cycle (by instant, whatever offsets the rows carry), `None` when there is none.
    fn latest_cycle(&self) -> Result<Option<LatestCycle>, StoreError>;

    /// Newest alerts first, at most `limit`; empty when the store predates alerts.
    fn alerts(&self, limit: u32) -> Result<Vec<AlertRow>, StoreError>;

    /// Aggregates `count` buckets of `width_s` seconds from `start_s` (epoch seconds).
    fn window(&self, start_s: i64, width_s: i64, count: usize) -> Result<Window, StoreError>;

    /// The instants (epoch ms) of the newest `limit` cycles, newest first: the dashboard
    /// derives the agent's cycle interval from their spacing.
    fn recent_cycle_instants_ms(&self, limit: usize) -> Result<Vec<i64>, StoreError>;

    /// Incidents that overlap `[from_ms, to_ms)` (ongoing ones included), newest start first,
    /// at most `limit`; empty when the store predates incidents.
    fn incidents(
        &self,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<IncidentRow>, StoreError>;
}

/// A store the dashboard reads. Blocking: call it from a blocking thread.
pub trait ReadStore: Send + Sync {
    /// Runs `f` inside one consistent snapshot. `f` may run more than once (a backend may find
    /// its snapshot was void and take another); only the last run's outcome counts.
    fn snapshot(
        &self,
        f: &mut dyn FnMut(&dyn Snapshot) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// How many reads may usefully run at once (a connection pool's size).
    fn max_concurrent_reads(&self) -> usize;

    /// Where the store is, for logs: no credentials.
    fn describe(&self) -> String;

    /// The store's hosts when it holds many (the fleet database); `None` for one host's store,
    /// whose [`ReadStore::snapshot`] answers everything.
    fn fleet(&self) -> Option<&dyn crate::FleetStore> {
        None
    }
}

impl dyn ReadStore + '_ {
    /// [`ReadStore::snapshot`] returning what `f` returns.
    pub fn query<T>(
        &self,
        mut f: impl FnMut(&dyn Snapshot) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut answer = None;
        self.snapshot(&mut |s| {
            answer = Some(f(s)?);
            Ok(())
        })?;
        answer.ok_or_else(|| {
            StoreError::new(
                crate::ErrorKind::Broken,
                "the store ended a read without running it",
            )
        })
    }
}
