//! The receiver's HTTP surface: `POST /api/heartbeat` (every answer of SPEC §7), the read side
//! (`GET /api/agents`, `/metrics`, `/health`) and the page. Handlers check the request and
//! shape the answer; the heartbeat's work is `intake`'s, on the blocking pool, under
//! [`crate::ANSWER_DEADLINE`].

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hb_core::receiver::{AgentState, Answer, agent_state};
use serde_json::{Value, json};

use crate::state::AgentRow;
use crate::{AppState, auth, intake};

/// Alerts listed per agent in `GET /api/agents`.
const ALERTS_PER_AGENT: u32 = 10;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/api/heartbeat",
            post(heartbeat).fallback(method_not_allowed),
        )
        .route("/api/agents", get(agents))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/", get(crate::page::index))
        .fallback(not_found)
        .with_state(state)
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

async fn method_not_allowed() -> Response {
    let mut r = answer(
        StatusCode::METHOD_NOT_ALLOWED,
        json!({"result": "method-not-allowed", "detail": "use POST"}),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    r
}

async fn not_found() -> Response {
    answer(StatusCode::NOT_FOUND, json!({"result": "not-found"}))
}

async fn heartbeat(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let deadline = Instant::now() + crate::ANSWER_DEADLINE;
    let inner = &app.0;
    let Some(agent) = auth::identify(&inner.agents, headers.get(header::AUTHORIZATION)) else {
        inner.counters.unauthorized.fetch_add(1, Ordering::Relaxed);
        let mut r = answer(StatusCode::UNAUTHORIZED, json!({"result": "unauthorized"}));
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    };
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let status = rejection.status();
            let word = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "too-large"
            } else {
                "bad-request"
            };
            return answer(status, json!({"result": word}));
        }
    };
    let services = match intake::parse_services(&body) {
        Ok(s) => s,
        Err(detail) => {
            inner.counters.bad_request.fetch_add(1, Ordering::Relaxed);
            return answer(
                StatusCode::BAD_REQUEST,
                json!({"result": "bad-request", "detail": detail}),
            );
        }
    };
    let now_ms = crate::now_ms();
    let job = tokio::task::spawn_blocking({
        let app = app.clone();
        move || intake::take(&app.0, agent, &services, now_ms, deadline)
    });
    let taken = match tokio::time::timeout_at(deadline.into(), job).await {
        Ok(Ok(taken)) => taken,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "heartbeat task failed");
            intake::Taken {
                answer: Answer::StoreFailed,
                alert: None,
            }
        }
        Err(_) => {
            inner.warn_store(
                &inner.agents[agent].name,
                "the heartbeat was not stored in time",
                &crate::StateError::Deadline,
            );
            intake::Taken {
                answer: Answer::StoreFailed,
                alert: None,
            }
        }
    };
    if let Some(alert) = taken.alert {
        // The receiving end only goes away at shutdown.
        let _ = inner.alerts.send(alert);
    }
    let c = &inner.counters;
    match taken.answer {
        Answer::Recorded => &c.recorded,
        Answer::Recovered => &c.recovered,
        Answer::Blind => &c.blind,
        Answer::RecoveryUpdateFailed => &c.recovery_update_failed,
        Answer::StoreFailed => &c.store_failed,
    }
    .fetch_add(1, Ordering::Relaxed);
    let name = &inner.agents[agent].name;
    tracing::debug!(agent = %name, result = taken.answer.result(), "heartbeat");
    let status = StatusCode::from_u16(taken.answer.status_code())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    answer(
        status,
        json!({"result": taken.answer.result(), "agent": name}),
    )
}

/// One configured agent as the read side shows it.
struct Shown {
    name: String,
    state: Option<AgentState>,
    grace_ms: i64,
    last_seen_ms: Option<i64>,
    services: Vec<(String, String)>,
    heartbeats: i64,
}

/// Every configured agent with its stored row (in configuration order, by name); `None` when
/// the state store cannot be read.
fn shown(app: &AppState, now_ms: i64) -> Result<Vec<Shown>, crate::StateError> {
    let inner = &app.0;
    let rows = inner.store.agents()?;
    let rows: HashMap<&str, &AgentRow> = rows.iter().map(|r| (r.name.as_str(), r)).collect();
    Ok(inner
        .agents
        .iter()
        .map(|a| {
            let grace_ms = a.grace.as_millis() as i64;
            let row = rows.get(a.name.as_str()).copied();
            let watched = row.and_then(|r| r.watched);
            Shown {
                name: a.name.clone(),
                state: watched.map(|w| agent_state(&w, now_ms, grace_ms)),
                grace_ms,
                last_seen_ms: watched.and_then(|w| w.last_seen_ms),
                services: row.map(|r| r.services.clone()).unwrap_or_default(),
                heartbeats: row.map_or(0, |r| r.heartbeats),
            }
        })
        .collect())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::StateError> + Send + 'static,
) -> Result<T, String> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

async fn agents(State(app): State<AppState>) -> Response {
    let now_ms = crate::now_ms();
    let result = blocking({
        let app = app.clone();
        move || {
            let shown = shown(&app, now_ms)?;
            let mut out = Vec::with_capacity(shown.len());
            for s in shown {
                let alerts = app.0.store.recent_alerts(&s.name, ALERTS_PER_AGENT)?;
                out.push((s, alerts));
            }
            Ok(out)
        }
    })
    .await;
    let tz = &app.0.tz;
    match result {
        Ok(list) => {
            let agents: Vec<Value> = list
                .into_iter()
                .map(|(s, alerts)| {
                    let since = s
                        .last_seen_ms
                        .map(|ms| (now_ms - ms).max(0) as f64 / 1000.0);
                    let silent_for = match s.state {
                        Some(AgentState::Silent) => since,
                        _ => None,
                    };
                    let services: serde_json::Map<String, Value> = s
                        .services
                        .into_iter()
                        .map(|(n, st)| (n, Value::from(st)))
                        .collect();
                    json!({
                        "name": s.name,
                        "state": s.state.map_or("unreadable", AgentState::as_str),
                        "last_seen": s.last_seen_ms.map(|ms| crate::iso(ms, tz)),
                        "last_seen_ms": s.last_seen_ms,
                        "seconds_since_heartbeat": since,
                        "silent_for_seconds": silent_for,
                        "grace_seconds": s.grace_ms as f64 / 1000.0,
                        "heartbeats": s.heartbeats,
                        "services": services,
                        "alerts": alerts,
                    })
                })
                .collect();
            answer(
                StatusCode::OK,
                json!({"now": crate::iso(now_ms, tz), "agents": agents}),
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the agents' state");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"result": "store-unreadable"}),
            )
        }
    }
}

/// A label value as the exposition format needs it.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn metrics(State(app): State<AppState>) -> Response {
    let now_ms = crate::now_ms();
    let result = blocking({
        let app = app.clone();
        move || shown(&app, now_ms)
    })
    .await;
    let mut out = String::new();
    let store_ok = result.is_ok();
    if let Ok(list) = &result {
        out.push_str("# HELP heartbeat_receiver_agent_up 1 while the agent heartbeats within its grace, else 0.\n# TYPE heartbeat_receiver_agent_up gauge\n");
        for s in list {
            let up = u8::from(s.state == Some(AgentState::Up));
            let _ = writeln!(
                out,
                "heartbeat_receiver_agent_up{{agent=\"{}\"}} {up}",
                label(&s.name)
            );
        }
        out.push_str("# HELP heartbeat_receiver_seconds_since_heartbeat Seconds since the agent's last heartbeat (absent while never seen).\n# TYPE heartbeat_receiver_seconds_since_heartbeat gauge\n");
        for s in list {
            if let Some(ms) = s.last_seen_ms {
                let _ = writeln!(
                    out,
                    "heartbeat_receiver_seconds_since_heartbeat{{agent=\"{}\"}} {:.3}",
                    label(&s.name),
                    (now_ms - ms).max(0) as f64 / 1000.0
                );
            }
        }
        out.push_str("# HELP heartbeat_receiver_agent_grace_seconds Silence allowed before the alarm.\n# TYPE heartbeat_receiver_agent_grace_seconds gauge\n");
        for s in list {
            let _ = writeln!(
                out,
                "heartbeat_receiver_agent_grace_seconds{{agent=\"{}\"}} {}",
                label(&s.name),
                s.grace_ms as f64 / 1000.0
            );
        }
    }
    let c = &app.0.counters;
    out.push_str("# HELP heartbeat_receiver_heartbeats_total Heartbeat requests answered since start, by result.\n# TYPE heartbeat_receiver_heartbeats_total counter\n");
    for (word, n) in [
        ("recorded", &c.recorded),
        ("recovered", &c.recovered),
        ("blind", &c.blind),
        ("recovery-update-failed", &c.recovery_update_failed),
        ("store-failed", &c.store_failed),
        ("unauthorized", &c.unauthorized),
        ("bad-request", &c.bad_request),
    ] {
        let _ = writeln!(
            out,
            "heartbeat_receiver_heartbeats_total{{result=\"{word}\"}} {}",
            n.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP heartbeat_receiver_store_readable 1 when the state store could be read for this answer.\n# TYPE heartbeat_receiver_store_readable gauge\nheartbeat_receiver_store_readable {}",
        u8::from(store_ok)
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

async fn health(State(app): State<AppState>) -> Response {
    answer(
        StatusCode::OK,
        json!({"status": "ok", "role": "receiver", "agents": app.0.agents.len()}),
    )
}
