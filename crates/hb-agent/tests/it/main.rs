//! Integration tests of the agent crate against real local servers and a real Docker engine.

mod notify;
mod probes;

pub use hb_testkit::require;
