//! Integration tests of the writer against real SQLite files in temporary directories.

mod alerts;
mod atomic;
mod backfill;
mod crash;
mod incidents;
mod off_grid;
mod queue;
mod retention;
mod schema;
mod support;
mod upgrade;
