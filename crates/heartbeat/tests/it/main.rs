//! End-to-end tests of the `heartbeat` binary: configuration errors, the agent against real
//! local targets, webhook and heartbeat receivers, and the database it writes.

mod agent;
mod alerting;
mod certs;
mod common;
mod config;
mod dashboard;
mod demo;
mod dispatch;
mod fleet;
mod fleet_dashboard;
mod full_disk;
mod healthcheck;
mod limits;
mod options;
mod outbox;
mod receiver;
mod servers;
