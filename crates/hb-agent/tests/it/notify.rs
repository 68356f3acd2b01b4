//! Notifier tests: the heartbeat sender and the webhook dispatcher against real HTTP servers
//! on 127.0.0.1.

// A failed unwrap is a failed test, which is what these are for.
#![allow(clippy::unwrap_used)]

mod heartbeat;
mod receiver;
mod webhook;
