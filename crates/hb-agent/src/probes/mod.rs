//! Probes: one module per kind of target (http, docker, host). Each turns the world into
//! `hb_core` outcomes; none of them schedules, stores or alerts.

pub mod docker;
pub mod host;
pub mod http;
mod limits;

pub use docker::DockerProber;
pub use host::HostCollector;
pub use http::{HttpProber, HttpProberSettings, ProbeSetupError};
pub use limits::raise_nofile_limit;
