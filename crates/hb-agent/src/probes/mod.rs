//! Probes: one module per kind of target (http, tcp, docker, host). Each turns the world into
//! `hb_core` outcomes; none of them schedules, stores or alerts.

pub mod docker;
pub mod host;
pub mod http;
pub mod limits;
pub mod tcp;

pub use docker::DockerProber;
pub use host::HostCollector;
pub use http::{HttpProber, HttpProberSettings, ProbeSetupError};
pub use limits::{NofileLimit, agent_fault_of, raise_nofile_limit};
pub use tcp::TcpProber;
