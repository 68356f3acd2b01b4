//! The producer: the cycle loop, the probes that feed it, and the notifiers it drives.
//! Never serves HTTP; reads the database back only at start-up (the alert outbox and the
//! stored item states the alert engine resumes from).

pub mod agent;
pub mod cycle;
pub mod notify;
pub mod probes;
mod store_task;

pub use agent::{AgentError, CycleObserver, RunOptions, run};
