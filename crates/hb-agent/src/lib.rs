//! The producer: the cycle loop, the probes that feed it, and the notifiers it drives.
//! Never serves HTTP and never reads the database back.

pub mod notify;
pub mod probes;
