//! The service status taxonomy (SPEC §3.1) and the service ordering used everywhere.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Semantic status of one check. The string forms are stored in the database and are a contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceStatus {
    Healthy,
    Error,
    Timeout,
    Down,
    Unknown,
}

impl ServiceStatus {
    pub const ALL: [ServiceStatus; 5] = [
        ServiceStatus::Healthy,
        ServiceStatus::Error,
        ServiceStatus::Timeout,
        ServiceStatus::Down,
        ServiceStatus::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceStatus::Healthy => "healthy",
            ServiceStatus::Error => "error",
            ServiceStatus::Timeout => "timeout",
            ServiceStatus::Down => "down",
            ServiceStatus::Unknown => "unknown",
        }
    }

    pub fn is_healthy(self) -> bool {
        self == ServiceStatus::Healthy
    }
}

impl fmt::Display for ServiceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown service status '{0}'")]
pub struct UnknownStatus(pub String);

impl FromStr for ServiceStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ServiceStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// What kind of target a service is. Http covers both `http://` and `https://`; Tcp is a bare
/// connection check (`tcp://host:port`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    Http,
    Docker,
    Tcp,
}

impl ServiceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Http => "http",
            ServiceKind::Docker => "docker",
            ServiceKind::Tcp => "tcp",
        }
    }

    /// Classifies a stored URL by its prefix (`docker:`, `http(s)://`, `tcp://`).
    pub fn of_url(url: &str) -> Option<ServiceKind> {
        if url.starts_with("docker:") {
            Some(ServiceKind::Docker)
        } else if url.starts_with("http://") || url.starts_with("https://") {
            Some(ServiceKind::Http)
        } else if url.starts_with("tcp://") {
            Some(ServiceKind::Tcp)
        } else {
            None
        }
    }

    /// The group a kind is ordered in: network checks (http and tcp, mixed by name) before
    /// docker containers.
    pub fn order_group(self) -> u8 {
        match self {
            ServiceKind::Http | ServiceKind::Tcp => 0,
            ServiceKind::Docker => 1,
        }
    }
}

/// The one ordering of services used in payloads, logs and the API: http (and tcp) services
/// first, then docker services, each group by name compared case-insensitively (ties broken by
/// exact name so the order is total).
pub fn compare_services(a: (ServiceKind, &str), b: (ServiceKind, &str)) -> Ordering {
    a.0.order_group()
        .cmp(&b.0.order_group())
        .then_with(|| a.1.to_lowercase().cmp(&b.1.to_lowercase()))
        .then_with(|| a.1.cmp(b.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_round_trips_through_its_string() {
        for st in ServiceStatus::ALL {
            assert_eq!(st.as_str().parse::<ServiceStatus>(), Ok(st));
        }
        assert!("Healthy".parse::<ServiceStatus>().is_err());
    }

    #[test]
    fn services_order_http_first_then_case_insensitive_name() {
        let mut v = vec![
            (ServiceKind::Docker, "alpha"),
            (ServiceKind::Http, "beta"),
            (ServiceKind::Http, "Alpha"),
            (ServiceKind::Http, "alpha"),
            (ServiceKind::Docker, "Zed"),
            (ServiceKind::Http, "Gamma"),
            (ServiceKind::Tcp, "Betamax"),
            (ServiceKind::Tcp, "aardvark"),
        ];
        v.sort_by(|a, b| compare_services(*a, *b));
        assert_eq!(
            v,
            vec![
                (ServiceKind::Tcp, "aardvark"),
                (ServiceKind::Http, "Alpha"),
                (ServiceKind::Http, "alpha"),
                (ServiceKind::Http, "beta"),
                (ServiceKind::Tcp, "Betamax"),
                (ServiceKind::Http, "Gamma"),
                (ServiceKind::Docker, "alpha"),
                (ServiceKind::Docker, "Zed"),
            ]
        );
    }

    #[test]
    fn kind_of_url() {
        assert_eq!(ServiceKind::of_url("docker:db"), Some(ServiceKind::Docker));
        assert_eq!(ServiceKind::of_url("https://x"), Some(ServiceKind::Http));
        assert_eq!(ServiceKind::of_url("tcp://db:5432"), Some(ServiceKind::Tcp));
        assert_eq!(ServiceKind::of_url("ftp://x"), None);
        assert_eq!(ServiceKind::Tcp.as_str(), "tcp");
    }
}
