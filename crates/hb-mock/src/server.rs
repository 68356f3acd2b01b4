//! Serving the mock: its main port (every route) and one port per simulated service, all through
//! `hb_serve` (so the shared limits apply, and a `down` service on the main port can hang up
//! without an answer via `hb_serve::CloseConnection`). It also owns shutdown: stop accepting,
//! release requests parked by `timeout` and `slow` services, let in-flight answers finish.

use std::future::Future;

use hb_serve::Limits;
use tokio::net::TcpListener;

use crate::MockState;

/// [`serve_with`] with the default server limits.
pub async fn serve<F>(listener: TcpListener, state: MockState, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    serve_with(listener, state, Limits::default(), shutdown).await
}

/// Serves `app(state)` on `listener`, and each simulated service on a port of its own (bound on
/// the listener's address unless [`MockState::bind_service_ports`] was called before), and runs
/// the scenario if one was set; until `shutdown` resolves or `state`'s shutdown token is
/// cancelled. Then it stops accepting, releases parked requests, and returns once every
/// connection has finished (or `limits.shutdown_grace` has passed).
pub async fn serve_with<F>(
    listener: TcpListener,
    state: MockState,
    limits: Limits,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    let token = state.shutdown_token();
    state
        .bind_service_ports(listener.local_addr()?.ip(), limits)
        .await?;
    let scenario = crate::lock(&state.inner.scenario)
        .as_ref()
        .map(|(s, _)| s.clone());
    if let Some(scenario) = scenario {
        let task = tokio::spawn(crate::scenario::run(state.clone(), scenario));
        *crate::lock(&state.inner.scenario_task) = Some(task);
    }
    let stop = {
        let token = token.clone();
        async move {
            tokio::select! {
                () = shutdown => {}
                () = token.cancelled() => {}
            }
            // Parked handlers wait on the token: cancelling it lets them answer and the
            // connections drain.
            token.cancel();
        }
    };
    let result = hb_serve::serve(listener, crate::app(state.clone()), limits, stop).await;
    token.cancel();
    let scenario_task = crate::lock(&state.inner.scenario_task).take();
    if let Some(task) = scenario_task {
        let _ = task.await;
    }
    let ports_task = state.inner.ports.take_task();
    if let Some(task) = ports_task {
        let _ = task.await;
    }
    result
}
