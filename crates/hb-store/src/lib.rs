//! Storage of Heartbeat Monitor: the schema and its migrations as data, the error type, and
//! (read-only) queries. Nothing in this crate issues a statement that writes: the only writer is
//! `hb-store-writer`, so a process that depends on this crate alone cannot change the database.

pub mod error;
pub mod reader;
pub mod rollup_schema;
pub mod schema;

pub use error::StoreError;
