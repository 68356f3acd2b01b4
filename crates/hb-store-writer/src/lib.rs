//! The only code that writes the database: opening read-write, migrations, one transaction per
//! cycle, and the queue of cycles not yet written.

mod durable;
mod migrate;
mod rollup;
mod writer;

pub use durable::{DurableWriter, PendingOp, WriteReport};
pub use hb_store::StoreError;
pub use writer::{
    BUSY_TIMEOUT, JOURNAL_SIZE_LIMIT_BYTES, Outbox, WAL_AUTOCHECKPOINT_PAGES, Writer,
};
