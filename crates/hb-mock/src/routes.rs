//! The mock's HTTP routes: heartbeat receiver, simulation config, request log, simulated
//! services, alert sink and the controller page; plus the middleware writing the request log.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::sim::{Behavior, ConfigPatch, HostStatus, Mode};
use crate::{MockState, ReceivedAlert, ReceivedHeartbeat, lock, now};
use hb_serve::CloseConnection as AbortConnection;

const PAGE: &str = include_str!("page.html");

/// The note a handler leaves for the request log line.
#[derive(Debug, Clone)]
struct Note(String);

/// The mock's router. Serve it with [`crate::serve`] so `down` services can close connections
/// (and each service gets its own port); under plain `axum::serve` a `down` service answers an
/// empty 502 instead.
pub fn app(state: MockState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/heartbeat", get(heartbeat_state).post(heartbeat))
        .route("/api/config", get(get_config).post(post_config))
        .route("/api/logs", get(logs))
        .route("/api/alerts", get(list_alerts).post(receive_alert))
        .route("/svc/{name}", get(service))
        .route("/ping", get(ping))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            (state.clone(), None),
            log_requests,
        ))
        .with_state(state)
}

/// The router of one simulated service's own port: every path and method is that service. Its
/// log lines show `name:port/path`.
pub(crate) fn service_port_app(state: MockState, name: String, port: u16) -> Router {
    let label = format!("{name}:{port}");
    Router::new()
        .fallback(move |State(state): State<MockState>, method: Method| {
            let name = name.clone();
            async move { answer(state, method, name).await }
        })
        .layer(middleware::from_fn_with_state(
            (state.clone(), Some(label)),
            log_requests,
        ))
        .with_state(state)
}

/// One line per request, except the controller page's own polling reads (they would drown
/// everything else at one request per second).
async fn log_requests(
    State((state, label)): State<(MockState, Option<String>)>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let path = match label {
        Some(label) => format!("{label}{path}"),
        None => path,
    };
    let polling = method == Method::GET
        && matches!(
            path.as_str(),
            "/api/logs" | "/api/alerts" | "/api/config" | "/api/heartbeat"
        );
    let mut response = next.run(req).await;
    if !polling {
        let note = response
            .extensions_mut()
            .remove::<Note>()
            .map(|n| n.0)
            .unwrap_or_default();
        let status = if response.extensions().get::<AbortConnection>().is_some() {
            "closed".to_owned()
        } else {
            response.status().as_u16().to_string()
        };
        state.log_line(format!("{method} {path} {status} {note}").trim_end());
    }
    if response.extensions().get::<AbortConnection>().is_some() {
        *response.status_mut() = StatusCode::BAD_GATEWAY;
    }
    response
}

fn with_note(note: impl Into<String>, response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    response.extensions_mut().insert(Note(note.into()));
    response
}

/// A simulated internet check target: up while the simulation is online, 503 while it is
/// offline (so the online switch also simulates an internet outage for an agent's `PING_URL`).
async fn ping(State(state): State<MockState>) -> Response {
    if state.simulation().online {
        with_note("internet up", StatusCode::NO_CONTENT)
    } else {
        with_note("simulated internet outage", StatusCode::SERVICE_UNAVAILABLE)
    }
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn not_found() -> Response {
    with_note(
        "no such route",
        (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "no such route"})),
        ),
    )
}

fn bad_request(reasons: Vec<String>) -> Response {
    let note = reasons.join("; ");
    with_note(
        note,
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "bad request", "reasons": reasons})),
        ),
    )
}

fn heartbeat_reply(
    status: StatusCode,
    result: &str,
    detail: &str,
    services: Option<usize>,
) -> Response {
    let mut body = json!({"result": result, "detail": detail});
    if let Some(n) = services {
        body["services"] = json!(n);
    }
    with_note(result.to_owned(), (status, axum::Json(body)))
}

/// Constant-time for equal lengths, so response timing does not leak how much of a guess was right.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn heartbeat(State(state): State<MockState>, headers: HeaderMap, body: Bytes) -> Response {
    if !lock(&state.inner.sim).online {
        return heartbeat_reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "offline",
            "the simulated receiver is switched offline",
            None,
        );
    }
    if let Some(key) = &state.inner.secret_key {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
        let detail = match given {
            None => Some("missing Authorization: Bearer header"),
            Some(g) if !same_secret(g, key.as_bytes()) => Some("wrong bearer key"),
            Some(_) => None,
        };
        if let Some(detail) = detail {
            return heartbeat_reply(StatusCode::UNAUTHORIZED, "unauthorized", detail, None);
        }
    }
    let payload: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad_request(vec![format!("body: not JSON ({e})")]),
    };
    let Some(services) = payload.get("services").and_then(Value::as_object) else {
        return bad_request(vec!["body: expected {\"services\": {...}}".to_owned()]);
    };
    let count = services.len();

    let (status, result, detail) = {
        let mut sim = lock(&state.inner.sim);
        match sim.mode {
            Mode::Auto if sim.host_status == HostStatus::Offline => {
                sim.host_status = HostStatus::Online;
                tracing::info!("mock: simulated host back online (AUTO reported recovered)");
                (
                    StatusCode::OK,
                    "recovered",
                    "host was offline; recovery recorded",
                )
            }
            Mode::Auto | Mode::Recorded => (StatusCode::OK, "recorded", "heartbeat recorded"),
            Mode::Recovered => (StatusCode::OK, "recovered", "recovery recorded"),
            Mode::Blind => (status(220), "blind", "received; previous state unknown"),
            Mode::Partial => (
                status(221),
                "partial",
                "recovery detected; state update failed",
            ),
            Mode::Critical => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "error",
                "simulated worker error",
            ),
        }
    };
    {
        let mut hb = lock(&state.inner.heartbeat);
        hb.received += 1;
        hb.last = Some(ReceivedHeartbeat {
            received_at: now(),
            status: status.as_u16(),
            result: result.to_owned(),
            payload,
        });
    }
    let mut response = heartbeat_reply(status, result, detail, Some(count));
    response
        .extensions_mut()
        .insert(Note(format!("{result} services={count}")));
    response
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

async fn heartbeat_state(State(state): State<MockState>) -> Response {
    axum::Json(state.heartbeats()).into_response()
}

fn config_json(state: &MockState) -> Value {
    let sim = state.simulation();
    let mut services = json!(sim.services);
    for (name, addr) in state.service_addrs() {
        if let Some(svc) = services.get_mut(&name) {
            svc["port"] = json!(addr.port());
        }
    }
    json!({
        "online": sim.online,
        "mode": sim.mode,
        "host_status": sim.host_status,
        "services": services,
        "scenario": state.scenario(),
        "stalled_requests": state.inner.stalled.load(Ordering::Relaxed),
        "modes": Mode::ALL.map(Mode::as_str),
        "behaviors": Behavior::ALL.map(Behavior::as_str),
    })
}

async fn get_config(State(state): State<MockState>) -> Response {
    axum::Json(config_json(&state)).into_response()
}

async fn post_config(State(state): State<MockState>, body: Bytes) -> Response {
    let patch: ConfigPatch = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return bad_request(vec![format!("body: {e}")]),
    };
    match state.update(patch) {
        Ok(_) => with_note("updated", axum::Json(config_json(&state))),
        Err(problems) => bad_request(problems),
    }
}

async fn logs(
    State(state): State<MockState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let offset = match q.get("offset").map(|s| s.parse::<u64>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return bad_request(vec![format!(
                "offset: '{}' is not a non-negative integer",
                q.get("offset").map(String::as_str).unwrap_or_default()
            )]);
        }
    };
    let chunk = lock(&state.inner.log).read_from(offset);
    match chunk {
        Ok(chunk) => axum::Json(chunk).into_response(),
        Err(e) => bad_request(vec![format!("offset: {e}")]),
    }
}

#[derive(Debug, Deserialize)]
struct AlertPost {
    title: String,
    message: String,
}

async fn receive_alert(State(state): State<MockState>, body: Bytes) -> Response {
    let post: AlertPost = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return bad_request(vec![format!(
                "body: expected {{\"title\", \"message\"}}: {e}"
            )]);
        }
    };
    let alert = {
        let mut sink = lock(&state.inner.alerts);
        sink.next_id += 1;
        let alert = ReceivedAlert {
            id: sink.next_id,
            received_at: now(),
            title: post.title,
            message: post.message,
        };
        sink.alerts.push_back(alert.clone());
        while sink.alerts.len() > crate::MAX_ALERTS {
            sink.alerts.pop_front();
        }
        alert
    };
    tracing::info!(id = alert.id, title = %alert.title, "mock: alert received");
    let note = format!("alert #{} {}", alert.id, alert.title);
    with_note(
        note,
        (
            StatusCode::OK,
            axum::Json(json!({"result": "received", "id": alert.id})),
        ),
    )
}

async fn list_alerts(State(state): State<MockState>) -> Response {
    let alerts = state.alerts();
    axum::Json(json!({"count": alerts.len(), "alerts": alerts})).into_response()
}

/// Decrements the parked-request count however the parked request ends (shutdown or the client
/// going away, which drops the handler's future).
struct StalledGuard(MockState);

impl Drop for StalledGuard {
    fn drop(&mut self) {
        self.0.inner.stalled.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn service(
    State(state): State<MockState>,
    method: Method,
    Path(name): Path<String>,
) -> Response {
    answer(state, method, name).await
}

/// What simulated service `name` answers (on `/svc/{name}` or on its own port).
async fn answer(state: MockState, method: Method, name: String) -> Response {
    let decision = {
        let mut sim = lock(&state.inner.sim);
        sim.services.get_mut(&name).map(|svc| {
            let n = svc.requests;
            svc.requests += 1;
            (svc.behavior, svc.delay_ms, n)
        })
    };
    let Some((behavior, delay_ms, n)) = decision else {
        return with_note(
            "unknown service",
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"error": "no such simulated service"})),
            ),
        );
    };
    let shutdown = state.shutdown_token();
    match behavior {
        Behavior::Down => {
            let mut response = with_note("down: connection closed", ());
            response.extensions_mut().insert(AbortConnection);
            return response;
        }
        Behavior::Timeout => {
            state.inner.stalled.fetch_add(1, Ordering::Relaxed);
            let _guard = StalledGuard(state.clone());
            state.log_line(&format!(
                "{method} /svc/{name} - timeout: holding the request"
            ));
            shutdown.cancelled().await;
            return with_note(
                "timeout: released at shutdown",
                (StatusCode::SERVICE_UNAVAILABLE, "mock shutting down\n"),
            );
        }
        _ => {}
    }
    if delay_ms > 0 {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(delay_ms)) => {}
            () = shutdown.cancelled() => {
                return with_note(
                    "released at shutdown",
                    (StatusCode::SERVICE_UNAVAILABLE, "mock shutting down\n"),
                );
            }
        }
    }
    let (code, text) = match behavior {
        Behavior::Error500 => (StatusCode::INTERNAL_SERVER_ERROR, "error500"),
        Behavior::NotFound => (StatusCode::NOT_FOUND, "notfound"),
        Behavior::Flapping if n % 2 == 1 => (StatusCode::INTERNAL_SERVER_ERROR, "flapping: down"),
        Behavior::Flapping => (StatusCode::OK, "flapping: up"),
        Behavior::Slow => (StatusCode::OK, "slow"),
        _ => (StatusCode::OK, "healthy"),
    };
    let note = if delay_ms > 0 {
        format!("{text} after {delay_ms} ms")
    } else {
        text.to_owned()
    };
    with_note(note, (code, format!("{text}\n")))
}
