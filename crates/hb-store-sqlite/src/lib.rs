//! SQLite, the embedded store: the schema and its migrations as data, the read-only reader the
//! dashboard uses ([`SqliteReader`], never a statement that writes), the one read-write
//! connection of the agent ([`Writer`]: WAL, persistent WAL, one transaction per cycle, rollups,
//! and between cycles retention and the rollup backfill of older raw rows),
//! and their implementations of the store's interfaces (`hb_store::ReadStore`,
//! `hb_store::WriteStore`, `hb_store::OpenWriteStore`).

mod backfill;
mod closed;
mod error;
mod incidents;
pub mod journal;
mod maintain;
mod migrate;
mod offsets;
pub mod reader;
mod retention;
mod rollup;
pub mod schema;
mod store;
mod writer;

pub use error::SqliteError;
pub use reader::{POOL_MAX, SqliteReader, parse_instant_ms};
pub use store::SqliteStore;
pub use writer::{BUSY_TIMEOUT, JOURNAL_SIZE_LIMIT_BYTES, WAL_AUTOCHECKPOINT_PAGES, Writer};
