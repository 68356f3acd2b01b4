//! The development mock (SPEC §5): a simulated heartbeat receiver, simulated services whose
//! behaviour is switched live, an alert sink for webhook posts, a request log for tailing, and the
//! controller page, and a scripted outage for the demo. State lives in memory only; nothing here
//! touches the database.

mod ports;
pub mod reqlog;
mod routes;
pub mod scenario;
mod server;
pub mod sim;

use std::collections::VecDeque;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use hb_serve::Limits;
pub use reqlog::{DEFAULT_CAP_BYTES, LogChunk, RequestLog};
pub use routes::app;
pub use scenario::{Scenario, ScenarioState};
pub use server::{serve, serve_with};
pub use sim::{Behavior, ConfigPatch, HostStatus, Mode, ServiceSim, Simulation};

/// How many received alerts are kept (the oldest go first).
pub const MAX_ALERTS: usize = 1_000;

/// Shared state of one mock instance; cheap to clone.
#[derive(Clone)]
pub struct MockState {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None`: the receiver accepts any request (a warning is logged at start-up by the caller).
    secret_key: Option<String>,
    sim: Mutex<Simulation>,
    log: Mutex<RequestLog>,
    heartbeat: Mutex<HeartbeatLog>,
    alerts: Mutex<AlertSink>,
    /// Requests currently parked by a `timeout` service.
    stalled: AtomicU64,
    shutdown: CancellationToken,
    /// Each simulated service's own listener.
    ports: ports::Ports,
    /// The scripted outage, if any; locked before `sim` wherever both are.
    scenario: Mutex<Option<(Scenario, ScenarioState)>>,
    scenario_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The most recent accepted heartbeat, as `GET /api/heartbeat` shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HeartbeatLog {
    /// Heartbeats that passed the online switch and the key check.
    pub received: u64,
    pub last: Option<ReceivedHeartbeat>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReceivedHeartbeat {
    pub received_at: String,
    pub status: u16,
    pub result: String,
    pub payload: serde_json::Value,
}

/// One webhook post received by the sink.
#[derive(Debug, Clone, Serialize)]
pub struct ReceivedAlert {
    /// 1, 2, 3, ... in arrival order; never reused.
    pub id: u64,
    pub received_at: String,
    pub title: String,
    pub message: String,
}

#[derive(Debug, Default)]
struct AlertSink {
    next_id: u64,
    alerts: VecDeque<ReceivedAlert>,
}

impl fmt::Debug for MockState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MockState")
            .field("secret_key", &self.inner.secret_key.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl MockState {
    /// A fresh simulation (`Simulation::default()`) checking heartbeats against `secret_key`.
    pub fn new(secret_key: Option<String>) -> Self {
        Self::with_log_cap(secret_key, DEFAULT_CAP_BYTES)
    }

    /// As `new`, keeping only the newest `cap_bytes` of the request log.
    pub fn with_log_cap(secret_key: Option<String>, cap_bytes: usize) -> Self {
        MockState {
            inner: Arc::new(Inner {
                secret_key,
                sim: Mutex::new(Simulation::default()),
                log: Mutex::new(RequestLog::new(cap_bytes)),
                heartbeat: Mutex::new(HeartbeatLog::default()),
                alerts: Mutex::new(AlertSink::default()),
                stalled: AtomicU64::new(0),
                shutdown: CancellationToken::new(),
                ports: ports::Ports::default(),
                scenario: Mutex::new(None),
                scenario_task: Mutex::new(None),
            }),
        }
    }

    /// Cancelling it ends `serve` and releases every parked request.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// A copy of the current simulation.
    pub fn simulation(&self) -> Simulation {
        lock(&self.inner.sim).clone()
    }

    /// Applies a checked partial update (what `POST /api/config` does). A change of the
    /// scenario's service stops the scenario: a manual choice wins over the script.
    pub fn update(&self, patch: ConfigPatch) -> Result<Simulation, Vec<String>> {
        let touched: Vec<String> = patch
            .services
            .as_ref()
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default();
        let mut scenario = lock(&self.inner.scenario);
        let mut sim = lock(&self.inner.sim);
        let changes = sim.apply(patch)?;
        if let Some((_, st)) = scenario.as_mut()
            && st.active
            && touched.contains(&st.service)
        {
            st.active = false;
            tracing::info!(service = %st.service, "mock scenario stopped: the service was changed by hand");
            self.log_line(&format!("scenario stopped: {} changed by hand", st.service));
        }
        if !changes.is_empty() {
            let text = changes.join(", ");
            tracing::info!(changes = %text, "mock simulation changed");
            self.log_line(&format!("config {text}"));
            self.inner.ports.changed.notify_one();
        }
        Ok(sim.clone())
    }

    /// A change made by the scenario; false (and nothing applied) once the script was stopped.
    pub(crate) fn apply_scripted(&self, patch: ConfigPatch) -> bool {
        let scenario = lock(&self.inner.scenario);
        if !scenario.as_ref().is_some_and(|(_, st)| st.active) {
            return false;
        }
        let changes = lock(&self.inner.sim).apply(patch);
        match changes {
            Ok(changes) if !changes.is_empty() => {
                let text = changes.join(", ");
                tracing::info!(changes = %text, "mock scenario changed the simulation");
                self.log_line(&format!("scenario {text}"));
                self.inner.ports.changed.notify_one();
            }
            Ok(_) => {}
            Err(problems) => {
                tracing::warn!(problems = ?problems, "mock scenario change rejected");
            }
        }
        true
    }

    /// Scripts an outage (`serve` runs it): the service is created healthy when missing. Replaces
    /// a scenario set before.
    pub fn set_scenario(&self, scenario: Scenario) {
        let mut current = lock(&self.inner.scenario);
        {
            let mut sim = lock(&self.inner.sim);
            if !sim.services.contains_key(&scenario.service) {
                let patch = ConfigPatch {
                    services: Some(std::collections::BTreeMap::from([(
                        scenario.service.clone(),
                        Some(sim::ServicePatch::default()),
                    )])),
                    ..ConfigPatch::default()
                };
                if let Err(problems) = sim.apply(patch) {
                    tracing::warn!(problems = ?problems, "mock scenario service not added");
                }
            }
        }
        let st = ScenarioState::new(&scenario);
        *current = Some((scenario, st));
    }

    /// The scenario as `GET /api/config` shows it.
    pub fn scenario(&self) -> Option<ScenarioState> {
        lock(&self.inner.scenario)
            .as_ref()
            .map(|(_, st)| st.clone())
    }

    /// Binds a listener of its own for every simulated service on `ip` (closed while the service
    /// is `down`, so it refuses connections), kept in step with the simulation until shutdown.
    /// `serve` calls it with its listener's address; call it first to know the ports sooner.
    /// Does nothing the second time.
    pub async fn bind_service_ports(&self, ip: IpAddr, limits: Limits) -> std::io::Result<()> {
        ports::start(self, ip, limits).await
    }

    /// Each simulated service's own address (also while it is down: it refuses there).
    pub fn service_addrs(&self) -> std::collections::BTreeMap<String, SocketAddr> {
        self.inner.ports.addrs()
    }

    /// Received alerts, oldest first.
    pub fn alerts(&self) -> Vec<ReceivedAlert> {
        lock(&self.inner.alerts).alerts.iter().cloned().collect()
    }

    pub fn heartbeats(&self) -> HeartbeatLog {
        lock(&self.inner.heartbeat).clone()
    }

    fn log_line(&self, text: &str) {
        let line = format!("{} {text}", now());
        tracing::debug!(line = %line, "mock request");
        lock(&self.inner.log).push_line(&line);
    }
}

/// A poisoned lock only means another request panicked mid-update; the simulation data is still
/// usable, and a mock that keeps answering is more useful than one that cascades the panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// UTC with milliseconds: the mock has no time zone of its own.
fn now() -> String {
    format!("{:.3}", jiff::Timestamp::now())
}
