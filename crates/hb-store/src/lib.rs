//! The store's interfaces, backend-neutral: what the dashboard reads ([`ReadStore`], one
//! consistent [`Snapshot`] per request), what the agent writes ([`WriteStore`], opened through
//! [`OpenWriteStore`]), their row and aggregate types, and one error type that says whether
//! trying again can help. No driver lives here: SQLite is `hb-store-sqlite`. The queue that keeps
//! the agent's writes through store outages ([`DurableWriter`]) is written against the
//! interface, so every backend gets it.
//!
//! The read-only guarantee is structural: [`ReadStore`] and [`Snapshot`] have no method that
//! writes, and the dashboard's crate depends on this crate only, never on a backend.

mod durable;
mod error;
mod fleet;
pub mod journal;
mod read;
mod retention;
mod rows;
mod write;

pub use durable::{DurableWriter, PendingOp, WriteReport};
pub use error::{ErrorKind, StoreError};
pub use fleet::{FleetStore, HostAlert, HostPick, HostSummary, SEVERITY};
pub use journal::{
    JournalAlert, JournalBatch, JournalCertificate, JournalCheck, JournalCursor, JournalCycle,
    JournalSource,
};
pub use read::{ReadStore, Snapshot};
pub use retention::{DAY_MS, Retention};
pub use rows::{
    AlertRow, BackfillProgress, BucketAcc, ChannelRow, CheckRow, FleetProgress, IncidentRow,
    LatestCycle, Source, StoreInfo, Window,
};
pub use write::{Maintenance, OpenWriteStore, Outbox, PendingAlert, WriteStore};
