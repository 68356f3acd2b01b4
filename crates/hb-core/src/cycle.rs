//! One monitoring cycle as it is persisted: host metrics, internet check, worker status and
//! the per-service results.

use serde::{Deserialize, Serialize};

use crate::check::CheckOutcome;
use crate::status::ServiceKind;

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct HostMetrics {
    pub cpu_percent: f64,
    pub ram_percent: f64,
    pub ram_used_mb: f64,
    pub disk_percent: f64,
    pub uptime_seconds: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct InternetCheck {
    pub online: bool,
    pub ping_ms: Option<f64>,
}

/// One service's result within a cycle. `url` is already free of credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceResult {
    pub name: String,
    pub kind: ServiceKind,
    pub url: String,
    #[serde(flatten)]
    pub outcome: CheckOutcome,
}

/// Everything a cycle produced, in the shape of one `monitoring_cycles` row plus its
/// `service_checks` rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CycleRecord {
    /// UUID v4.
    pub id: String,
    /// ISO-8601 with the configured zone's offset, e.g. `2026-11-29T15:41:02.123456-05:00`.
    pub timestamp: String,
    /// The same instant as `timestamp`, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub host: HostMetrics,
    /// Running containers, `-1` when the Docker socket is unavailable.
    pub container_count: i64,
    pub internet: InternetCheck,
    /// HTTP status of the heartbeat receiver's answer; `None` when no answer came or no
    /// heartbeat was sent.
    pub worker_status: Option<u16>,
    pub cycle_duration_ms: i64,
    /// Ordered with [`crate::compare_services`].
    pub services: Vec<ServiceResult>,
}
