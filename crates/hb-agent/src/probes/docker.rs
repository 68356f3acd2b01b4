//! `docker:<container>` checks and the running-container count through the Docker Engine API
//! (SPEC §3.1, §3.3). Owns the (re)connection to `DOCKER_HOST`; never starts or stops anything.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerState, ContainerStateStatusEnum, HealthStatusEnum};
use bollard::query_parameters::ListContainersOptions;
use hb_core::CheckOutcome;

const SOCKET_UNAVAILABLE: &str = "Docker Socket Unavailable";

/// Checks containers. Never fails to build: the socket may be absent at start-up and appear
/// later, so the client is (re)created on demand. Cheap to clone; clones share the client.
#[derive(Debug, Clone)]
pub struct DockerProber {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    docker_host: String,
    timeout: Duration,
    client: Mutex<Option<Docker>>,
    negotiated: AtomicBool,
}

impl DockerProber {
    /// `docker_host` is the configured `DOCKER_HOST` (`unix://…`, a bare socket path, or
    /// `tcp://`/`http://host:port`). The process environment is deliberately not consulted.
    pub fn new(docker_host: &str, timeout: Duration) -> DockerProber {
        DockerProber {
            inner: Arc::new(Inner {
                docker_host: docker_host.to_string(),
                timeout,
                client: Mutex::new(None),
                negotiated: AtomicBool::new(false),
            }),
        }
    }

    /// `running` is healthy unless the container's own health check reports `unhealthy`
    /// (`error`, `Container health: unhealthy`); any other state is down with
    /// `Container state: <state>` (an exited one with its exit code, and `OOM killed` when the
    /// engine says so); a missing container is down with `Container not found`.
    pub async fn check(&self, container: &str) -> CheckOutcome {
        if !is_valid_container_ref(container) {
            return CheckOutcome::unknown("Invalid container name");
        }
        let Some(docker) = self.client() else {
            return CheckOutcome::unknown(SOCKET_UNAVAILABLE);
        };
        let call = docker.inspect_container(container, None);
        let inspected = match tokio::time::timeout(self.inner.timeout, call).await {
            Err(_elapsed) => return CheckOutcome::timeout(),
            Ok(Ok(inspected)) => inspected,
            Ok(Err(e)) => return self.classify(&e),
        };
        judge(inspected.state.as_ref())
    }

    /// Running containers, or -1 when the API cannot be reached (SPEC §3.3).
    pub async fn running_count(&self) -> i64 {
        self.running_names()
            .await
            .map_or(-1, |names| i64::try_from(names.len()).unwrap_or(i64::MAX))
    }

    /// Names of the running containers (without the leading `/`), `None` when the Docker API
    /// is unavailable.
    pub async fn running_names(&self) -> Option<Vec<String>> {
        let docker = self.client()?;
        self.negotiate_once(&docker).await;
        let options = ListContainersOptions {
            all: false,
            ..Default::default()
        };
        let call = docker.list_containers(Some(options));
        match tokio::time::timeout(self.inner.timeout, call).await {
            Ok(Ok(list)) => Some(
                list.into_iter()
                    .map(|c| {
                        c.names
                            .and_then(|n| n.into_iter().next())
                            .map(|n| n.trim_start_matches('/').to_owned())
                            .unwrap_or_default()
                    })
                    .collect(),
            ),
            Ok(Err(e)) => {
                let outcome = self.classify(&e);
                tracing::debug!(reason = ?outcome.reason, "listing containers failed");
                None
            }
            Err(_elapsed) => {
                tracing::debug!("listing containers timed out");
                None
            }
        }
    }

    /// The cached client, or a new one when the socket exists now. Constructing one only checks
    /// that the socket path exists; every request opens its own connection.
    fn client(&self) -> Option<Docker> {
        let mut slot = match self.inner.client.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(docker) = slot.as_ref() {
            return Some(docker.clone());
        }
        match connect(&self.inner.docker_host, self.inner.timeout) {
            Ok(docker) => {
                tracing::info!("connected to the Docker API");
                *slot = Some(docker.clone());
                self.inner.negotiated.store(false, Ordering::Relaxed);
                Some(docker)
            }
            Err(e) => {
                tracing::debug!(error = %e, "Docker API not available");
                None
            }
        }
    }

    fn forget_client(&self) {
        let mut slot = match self.inner.client.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = None;
    }

    /// bollard 0.21 sends unversioned paths, which every daemon accepts. Should a later bollard
    /// send versioned ones, an old daemon (e.g. API 1.41) would reject its default version; the
    /// negotiated version is shared by all clones of the client.
    async fn negotiate_once(&self, docker: &Docker) {
        if self.inner.negotiated.load(Ordering::Relaxed) {
            return;
        }
        let call = docker.clone().negotiate_version();
        match tokio::time::timeout(self.inner.timeout, call).await {
            Ok(Ok(d)) => {
                self.inner.negotiated.store(true, Ordering::Relaxed);
                tracing::debug!(version = %d.client_version(), "negotiated the Docker API version");
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "Docker API version negotiation failed"),
            Err(_elapsed) => tracing::debug!("Docker API version negotiation timed out"),
        }
    }

    fn classify(&self, e: &DockerError) -> CheckOutcome {
        if let Some(fault) = super::limits::agent_fault_of(e) {
            return CheckOutcome::agent_fault(fault);
        }
        match e {
            DockerError::DockerResponseServerError {
                status_code: 404, ..
            } => CheckOutcome::down("Container not found"),
            DockerError::DockerResponseServerError { status_code, .. } => {
                CheckOutcome::unknown(format!("Docker API error: HTTP {status_code}"))
            }
            DockerError::RequestTimeoutError => CheckOutcome::timeout(),
            DockerError::JsonDataError { .. } | DockerError::JsonSerdeError { .. } => {
                CheckOutcome::unknown("Docker API error: unexpected response")
            }
            _ => {
                // The socket may have been removed; the next call looks for it afresh.
                self.forget_client();
                CheckOutcome::unknown(SOCKET_UNAVAILABLE)
            }
        }
    }
}

/// The check's verdict on an inspected container's `State`. Only `unhealthy` overrides a
/// running state: `starting` (the first probes have not run yet) counts as healthy, and a
/// container without a health check (no `State.Health`, or podman's empty status) is judged by
/// its state alone, as before health checks were considered.
fn judge(state: Option<&ContainerState>) -> CheckOutcome {
    let Some(state) = state else {
        return CheckOutcome::down("Container state: unknown");
    };
    let health = state.health.as_ref().and_then(|h| h.status);
    match state.status {
        Some(ContainerStateStatusEnum::RUNNING) => match health {
            Some(HealthStatusEnum::UNHEALTHY) => CheckOutcome::error("Container health: unhealthy"),
            _ => CheckOutcome::healthy(None),
        },
        Some(ContainerStateStatusEnum::EXITED) => CheckOutcome::down(exited_reason(
            state.exit_code,
            state.oom_killed.unwrap_or(false),
        )),
        Some(other) => CheckOutcome::down(format!("Container state: {other}")),
        None => CheckOutcome::down("Container state: unknown"),
    }
}

/// `Container state: exited (137, OOM killed)`, `Container state: exited (1)`; without an exit
/// code from the engine, the plain `Container state: exited`.
fn exited_reason(exit_code: Option<i64>, oom_killed: bool) -> String {
    match (exit_code, oom_killed) {
        (Some(code), true) => format!("Container state: exited ({code}, OOM killed)"),
        (Some(code), false) => format!("Container state: exited ({code})"),
        (None, true) => "Container state: exited (OOM killed)".to_owned(),
        (None, false) => "Container state: exited".to_owned(),
    }
}

fn connect(docker_host: &str, timeout: Duration) -> Result<Docker, DockerError> {
    // bollard's own timeout has whole-second granularity; ours (applied around each call) is
    // the precise one, so bollard's only has to be no shorter.
    let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
    let secs = secs.max(1);
    let version = bollard::API_DEFAULT_VERSION;
    let docker = if docker_host.starts_with("tcp://") || docker_host.starts_with("http://") {
        Docker::connect_with_http(docker_host, secs, version)?
    } else if let Some(path) = docker_host.strip_prefix("unix://") {
        Docker::connect_with_unix(path, secs, version)?
    } else {
        Docker::connect_with_unix(docker_host, secs, version)?
    };
    Ok(docker)
}

/// Container names and ids as Docker allows them; anything else could change the API path.
fn is_valid_container_ref(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    use bollard::models::Health;

    fn state(
        status: ContainerStateStatusEnum,
        health: Option<HealthStatusEnum>,
        exit_code: Option<i64>,
        oom_killed: Option<bool>,
    ) -> ContainerState {
        ContainerState {
            status: Some(status),
            health: health.map(|h| Health {
                status: Some(h),
                ..Default::default()
            }),
            exit_code,
            oom_killed,
            ..Default::default()
        }
    }

    /// OOM kills cannot be provoked on a test engine without memory cgroups, so the verdict on
    /// the engine's `OOMKilled` flag is checked here on the pure function.
    #[test]
    fn verdicts_on_inspected_states() {
        use ContainerStateStatusEnum as S;
        use HealthStatusEnum as H;
        use hb_core::ServiceStatus as St;
        let table = [
            (state(S::RUNNING, None, Some(0), None), St::Healthy, None),
            (
                state(S::RUNNING, Some(H::EMPTY), None, None),
                St::Healthy,
                None,
            ),
            (
                state(S::RUNNING, Some(H::NONE), None, None),
                St::Healthy,
                None,
            ),
            (
                state(S::RUNNING, Some(H::STARTING), None, None),
                St::Healthy,
                None,
            ),
            (
                state(S::RUNNING, Some(H::HEALTHY), None, None),
                St::Healthy,
                None,
            ),
            (
                state(S::RUNNING, Some(H::UNHEALTHY), None, None),
                St::Error,
                Some("Container health: unhealthy"),
            ),
            (
                state(S::EXITED, None, Some(137), Some(true)),
                St::Down,
                Some("Container state: exited (137, OOM killed)"),
            ),
            (
                state(S::EXITED, None, Some(137), Some(false)),
                St::Down,
                Some("Container state: exited (137)"),
            ),
            (
                state(S::EXITED, Some(H::UNHEALTHY), Some(1), None),
                St::Down,
                Some("Container state: exited (1)"),
            ),
            (
                state(S::EXITED, None, None, None),
                St::Down,
                Some("Container state: exited"),
            ),
            (
                state(S::PAUSED, Some(H::UNHEALTHY), Some(0), Some(false)),
                St::Down,
                Some("Container state: paused"),
            ),
            (
                state(S::RESTARTING, None, Some(1), None),
                St::Down,
                Some("Container state: restarting"),
            ),
            (
                state(S::CREATED, None, Some(0), None),
                St::Down,
                Some("Container state: created"),
            ),
        ];
        for (st, status, reason) in table {
            let o = judge(Some(&st));
            assert_eq!(o.status, status, "{st:?}");
            assert_eq!(o.reason.as_deref(), reason, "{st:?}");
            assert_eq!(o.latency_ms, None);
        }
        assert_eq!(
            judge(None).reason.as_deref(),
            Some("Container state: unknown")
        );
        assert_eq!(
            judge(Some(&ContainerState::default())).reason.as_deref(),
            Some("Container state: unknown")
        );
    }

    #[test]
    fn container_refs() {
        for ok in ["web", "my_app-1.2", "0123abcd", "A"] {
            assert!(is_valid_container_ref(ok), "{ok}");
        }
        for bad in ["", "-web", "a/b", "../x", "a?b", "a b", ".x"] {
            assert!(!is_valid_container_ref(bad), "{bad}");
        }
    }
}
