//! The heartbeat (SPEC §3.4): one POST of every service's status to the receiver per cycle.
//! Owns the receiver's client; reports the answer's status code and nothing else.

use std::time::Duration;

use hb_config::Secret;
use hb_core::{ServiceResult, compare_services};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::{Map, Value, json};

use super::{NotifySetupError, build_client, describe_error};

/// The receiver's timeout from SPEC §3.4.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(6);

/// Sends heartbeats to one receiver. Cheap to share: the client pools connections.
#[derive(Debug, Clone)]
pub struct HeartbeatSender {
    client: reqwest::Client,
    url: Secret,
    authorization: Option<HeaderValue>,
}

impl HeartbeatSender {
    /// A sender with the 6 s timeout, connecting over IPv4 only.
    pub fn new(url: Secret, key: Option<Secret>) -> Result<Self, NotifySetupError> {
        Self::with_options(url, key, HEARTBEAT_TIMEOUT, true)
    }

    /// A sender with another timeout (tests use a short one), IPv4 only.
    pub fn with_timeout(
        url: Secret,
        key: Option<Secret>,
        timeout: Duration,
    ) -> Result<Self, NotifySetupError> {
        Self::with_options(url, key, timeout, true)
    }

    /// A sender with every option: the timeout and whether to connect over IPv4 only.
    pub fn with_options(
        url: Secret,
        key: Option<Secret>,
        timeout: Duration,
        ipv4_only: bool,
    ) -> Result<Self, NotifySetupError> {
        let authorization = match key {
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                    .map_err(|_| {
                        NotifySetupError::Client(
                            "SECRET_KEY contains characters not allowed in a header".to_owned(),
                        )
                    })?;
                // Keeps the key out of any debug output of the request.
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(HeartbeatSender {
            client: build_client(timeout, ipv4_only)?,
            url,
            authorization,
        })
    }

    /// POSTs the payload; `Some(status code)` when a response came, `None` on timeout,
    /// network or DNS error.
    pub async fn send(&self, services: &[ServiceResult]) -> Option<u16> {
        let body = heartbeat_payload(services).to_string();
        let mut request = self
            .client
            .post(self.url.expose())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(auth) = &self.authorization {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        match request.send().await {
            Ok(response) => {
                let code = response.status().as_u16();
                tracing::debug!(code, "heartbeat answered");
                Some(code)
            }
            Err(error) => {
                tracing::warn!(error = %describe_error(&error), "heartbeat got no answer");
                None
            }
        }
    }
}

/// `{"services": {"api": {"status": "healthy"}, ...}}`, http services first then docker, each
/// group by name (case-insensitive), whatever order `services` comes in.
pub fn heartbeat_payload(services: &[ServiceResult]) -> Value {
    let mut ordered: Vec<&ServiceResult> = services.iter().collect();
    ordered.sort_by(|a, b| compare_services((a.kind, &a.name), (b.kind, &b.name)));
    let mut map = Map::new();
    for s in ordered {
        map.insert(
            s.name.clone(),
            json!({ "status": s.outcome.status.as_str() }),
        );
    }
    json!({ "services": map })
}

#[cfg(test)]
mod tests {
    use hb_core::{CheckOutcome, ServiceKind};

    use super::*;

    fn result(name: &str, kind: ServiceKind, outcome: CheckOutcome) -> ServiceResult {
        ServiceResult {
            name: name.to_owned(),
            kind,
            url: String::new(),
            outcome,
        }
    }

    #[test]
    fn payload_orders_http_first_then_name_case_insensitively() {
        let services = [
            result(
                "db",
                ServiceKind::Docker,
                CheckOutcome::down("Container state: exited"),
            ),
            result("web", ServiceKind::Http, CheckOutcome::timeout()),
            result("Api", ServiceKind::Http, CheckOutcome::healthy(Some(1.0))),
            result("cache", ServiceKind::Docker, CheckOutcome::healthy(None)),
            result(
                "beta",
                ServiceKind::Http,
                CheckOutcome::from_http_status(503, 2.0),
            ),
        ];
        assert_eq!(
            heartbeat_payload(&services).to_string(),
            r#"{"services":{"Api":{"status":"healthy"},"beta":{"status":"error"},"web":{"status":"timeout"},"cache":{"status":"healthy"},"db":{"status":"down"}}}"#
        );
        assert_eq!(heartbeat_payload(&[]).to_string(), r#"{"services":{}}"#);
    }
}
