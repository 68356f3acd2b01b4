//! The producer: the cycle loop, the probes that feed it, and the notifiers it drives.
//! Never serves HTTP and never reads the database back.

pub mod agent;
pub mod cycle;
pub mod notify;
pub mod probes;
mod store_task;

pub use agent::{AgentError, CycleObserver, RunOptions, run};
