//! One listener per simulated service, so that `down` refuses connections like a stopped
//! service does: while a service is down its listener and every connection on it are closed,
//! and when it comes back it listens again on the same port. One task keeps the listeners in
//! step with the simulation; it ends on the mock's shutdown.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use hb_serve::Limits;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::sim::Behavior;
use crate::{MockState, lock};

/// How soon a port that could not be bound again (taken by someone else meanwhile) is retried.
const REBIND_RETRY: Duration = Duration::from_secs(1);

/// The ports part of a mock's state.
#[derive(Default)]
pub(crate) struct Ports {
    /// The address of every service: kept while it is down (it refuses there) so the URL the
    /// agent was given stays valid; forgotten when the service is removed.
    addrs: Mutex<BTreeMap<String, SocketAddr>>,
    /// Set by every simulation change.
    pub(crate) changed: Notify,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Ports {
    pub(crate) fn addrs(&self) -> BTreeMap<String, SocketAddr> {
        lock(&self.addrs).clone()
    }

    /// The keeper task, once: `serve` waits for it after shutdown.
    pub(crate) fn take_task(&self) -> Option<JoinHandle<()>> {
        lock(&self.task).take()
    }
}

/// The listener of one service that is up.
struct Running {
    task: JoinHandle<std::io::Result<()>>,
}

/// Binds every service's port on `ip` (an error if one cannot be bound), then keeps them in step
/// with the simulation. Does nothing when the ports were bound already.
pub(crate) async fn start(state: &MockState, ip: IpAddr, limits: Limits) -> std::io::Result<()> {
    let ports = &state.inner.ports;
    if lock(&ports.task).is_some() || !lock(&ports.addrs).is_empty() {
        return Ok(());
    }
    let mut running = BTreeMap::new();
    let mut warned = BTreeSet::new();
    let failed = reconcile(state, ip, limits, &mut running, &mut warned).await;
    if let Some(name) = failed.first() {
        for (_, r) in running {
            r.task.abort();
        }
        return Err(std::io::Error::other(format!(
            "cannot bind a port for simulated service '{name}' on {ip}"
        )));
    }
    let task = tokio::spawn(keep_in_step(state.clone(), ip, limits, running, warned));
    *lock(&ports.task) = Some(task);
    Ok(())
}

async fn keep_in_step(
    state: MockState,
    ip: IpAddr,
    limits: Limits,
    mut running: BTreeMap<String, Running>,
    mut warned: BTreeSet<String>,
) {
    let token = state.shutdown_token();
    let mut retry = false;
    loop {
        tokio::select! {
            () = token.cancelled() => break,
            () = state.inner.ports.changed.notified() => {}
            () = tokio::time::sleep(REBIND_RETRY), if retry => {}
        }
        retry = !reconcile(&state, ip, limits, &mut running, &mut warned)
            .await
            .is_empty();
    }
    // Each port's server drains on the same token (parked requests are released by it).
    for (_, r) in running {
        if let Ok(Err(e)) = r.task.await {
            tracing::warn!(error = %e, "mock service port ended with an error");
        }
    }
}

/// Makes the listeners match the simulation; returns the services whose port could not be bound.
async fn reconcile(
    state: &MockState,
    ip: IpAddr,
    limits: Limits,
    running: &mut BTreeMap<String, Running>,
    warned: &mut BTreeSet<String>,
) -> Vec<String> {
    let sim = state.simulation();
    let stop: Vec<String> = running
        .keys()
        .filter(|n| {
            sim.services
                .get(n.as_str())
                .is_none_or(|s| s.behavior == Behavior::Down)
        })
        .cloned()
        .collect();
    for name in stop {
        if let Some(r) = running.remove(&name) {
            // Aborting drops the listener and every connection at once, as a killed process would.
            r.task.abort();
            let _ = r.task.await;
            tracing::info!(service = %name, "mock service port closed (down)");
        }
    }
    lock(&state.inner.ports.addrs).retain(|n, _| sim.services.contains_key(n));

    let mut failed = Vec::new();
    for (name, svc) in &sim.services {
        if running.contains_key(name) {
            continue;
        }
        let known = lock(&state.inner.ports.addrs).get(name).copied();
        let down = svc.behavior == Behavior::Down;
        if down && known.is_some() {
            continue;
        }
        let listener = match TcpListener::bind(known.unwrap_or(SocketAddr::new(ip, 0))).await {
            Ok(l) => l,
            Err(e) => {
                if warned.insert(name.clone()) {
                    tracing::warn!(service = %name, error = %e, "mock service port cannot be bound; retrying");
                }
                failed.push(name.clone());
                continue;
            }
        };
        warned.remove(name);
        let addr = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(service = %name, error = %e, "mock service port has no address");
                failed.push(name.clone());
                continue;
            }
        };
        lock(&state.inner.ports.addrs).insert(name.clone(), addr);
        if down {
            // A service that starts down gets its port reserved and closed at once.
            drop(listener);
            continue;
        }
        let app = crate::routes::service_port_app(state.clone(), name.clone(), addr.port());
        let stop = state.shutdown_token().cancelled_owned();
        let task = tokio::spawn(hb_serve::serve(listener, app, limits, stop));
        running.insert(name.clone(), Running { task });
        tracing::debug!(service = %name, %addr, "mock service port listening");
    }
    failed
}
