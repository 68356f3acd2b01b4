//! The outcome of one check: a failed check is data (status + reason), never an `Err`.

use serde::{Deserialize, Serialize};

use crate::status::ServiceStatus;

/// Result of checking one service (SPEC §3.1). `latency_ms` and `status_code` are present
/// whenever a response arrived, whatever the status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckOutcome {
    pub status: ServiceStatus,
    pub status_code: Option<u16>,
    pub latency_ms: Option<f64>,
    /// Human-readable reason for anything but `healthy` (`HTTP 500`, `Timeout`, ...).
    pub reason: Option<String>,
    /// The check could not run because of the agent itself (out of file descriptors or memory,
    /// shutting down). The status is `unknown` and says nothing about the service, so such an
    /// outcome never raises or clears the service's alert.
    #[serde(default, skip_serializing_if = "is_false")]
    pub agent_fault: bool,
    /// The `notAfter` instant (epoch ms) of the leaf certificate an https answer came with;
    /// `None` for anything else (plain HTTP, no answer, tcp and docker checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_expires_ms: Option<i64>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl CheckOutcome {
    /// Classifies an HTTP response status: 2xx/3xx healthy, anything else `error` with
    /// reason `HTTP <code>`.
    pub fn from_http_status(code: u16, latency_ms: f64) -> Self {
        Self::http_answer(code, latency_ms, (200..400).contains(&code))
    }

    /// An HTTP answer judged `healthy` or not by the caller (a service's own healthy codes):
    /// else `error` with reason `HTTP <code>`.
    pub fn http_answer(code: u16, latency_ms: f64, healthy: bool) -> Self {
        CheckOutcome {
            status: if healthy {
                ServiceStatus::Healthy
            } else {
                ServiceStatus::Error
            },
            status_code: Some(code),
            latency_ms: Some(latency_ms),
            reason: (!healthy).then(|| format!("HTTP {code}")),
            agent_fault: false,
            cert_expires_ms: None,
        }
    }

    /// The same outcome with the certificate expiry the answer came with.
    pub fn with_cert(self, cert_expires_ms: Option<i64>) -> Self {
        CheckOutcome {
            cert_expires_ms,
            ..self
        }
    }

    pub fn healthy(latency_ms: Option<f64>) -> Self {
        CheckOutcome {
            status: ServiceStatus::Healthy,
            status_code: None,
            latency_ms,
            reason: None,
            agent_fault: false,
            cert_expires_ms: None,
        }
    }

    pub fn timeout() -> Self {
        Self::failed(ServiceStatus::Timeout, "Timeout")
    }

    /// The target answered and reported itself unwell without an HTTP status (a container
    /// whose own health check fails).
    pub fn error(reason: impl Into<String>) -> Self {
        Self::failed(ServiceStatus::Error, reason)
    }

    pub fn down(reason: impl Into<String>) -> Self {
        Self::failed(ServiceStatus::Down, reason)
    }

    pub fn unknown(reason: impl Into<String>) -> Self {
        Self::failed(ServiceStatus::Unknown, reason)
    }

    /// The agent itself could not run the check (see [`CheckOutcome::agent_fault`]).
    pub fn agent_fault(reason: impl Into<String>) -> Self {
        CheckOutcome {
            agent_fault: true,
            ..Self::failed(ServiceStatus::Unknown, reason)
        }
    }

    fn failed(status: ServiceStatus, reason: impl Into<String>) -> Self {
        CheckOutcome {
            status,
            status_code: None,
            latency_ms: None,
            reason: Some(reason.into()),
            agent_fault: false,
            cert_expires_ms: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_status_classification() {
        let table = [
            (200, ServiceStatus::Healthy, None),
            (204, ServiceStatus::Healthy, None),
            (301, ServiceStatus::Healthy, None),
            (302, ServiceStatus::Healthy, None),
            (399, ServiceStatus::Healthy, None),
            (400, ServiceStatus::Error, Some("HTTP 400")),
            (404, ServiceStatus::Error, Some("HTTP 404")),
            (500, ServiceStatus::Error, Some("HTTP 500")),
            (503, ServiceStatus::Error, Some("HTTP 503")),
            (199, ServiceStatus::Error, Some("HTTP 199")),
        ];
        for (code, status, reason) in table {
            let o = CheckOutcome::from_http_status(code, 1.5);
            assert_eq!(o.status, status, "code {code}");
            assert_eq!(o.reason.as_deref(), reason, "code {code}");
            assert_eq!(o.status_code, Some(code));
            assert_eq!(o.latency_ms, Some(1.5));
        }
    }
}
