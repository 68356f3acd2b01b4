//! Small routes (`/`, `/health`, `/api/alerts`) and the mapping of read errors to HTTP answers.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hb_store::{ErrorKind, HostPick, ReadStore, Snapshot, StoreError};
use serde_json::json;

use crate::AppState;

/// An API failure, answered as JSON `{"detail": ...}`.
#[derive(Debug)]
pub(crate) enum ApiError {
    BadRequest(serde_json::Value),
    NotFound,
    /// A fleet dashboard was asked for a host it does not hold.
    UnknownHost(String),
    Unavailable(String),
    Internal,
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e.kind() {
            ErrorKind::Unavailable => ApiError::Unavailable(e.message().to_owned()),
            _ => {
                tracing::error!(error = %e, "database read failed");
                ApiError::Internal
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::BadRequest(body) => (StatusCode::BAD_REQUEST, Json(body)).into_response(),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                Json(json!({"detail": "No metrics found in database"})),
            )
                .into_response(),
            ApiError::UnknownHost(host) => (
                StatusCode::NOT_FOUND,
                Json(json!({
                    "detail": format!("unknown host '{host}'"),
                    "hosts": "/api/hosts",
                })),
            )
                .into_response(),
            ApiError::Unavailable(reason) => (
                StatusCode::SERVICE_UNAVAILABLE,
                [("retry-after", "5")],
                Json(json!({"detail": "Database not ready", "reason": reason})),
            )
                .into_response(),
            ApiError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"detail": "Internal error reading the database"})),
            )
                .into_response(),
        }
    }
}

/// The `range` query parameter (`default` when absent) and its length in seconds; 400 with the
/// valid values otherwise.
pub(crate) fn range_param(
    params: &HashMap<String, String>,
    default: &str,
) -> Result<(String, i64), ApiError> {
    let range = params.get("range").map_or(default, String::as_str);
    match crate::live::range_seconds(range) {
        Some(seconds) => Ok((range.to_owned(), seconds)),
        None => Err(ApiError::BadRequest(json!({
            "detail": format!("invalid range '{range}'"),
            "valid": crate::live::RANGES.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        }))),
    }
}

/// The `limit` query parameter: 1 to `max`, `default` when absent; 400 otherwise.
pub(crate) fn limit_param(
    params: &HashMap<String, String>,
    default: u32,
    max: u32,
) -> Result<u32, ApiError> {
    let Some(raw) = params.get("limit") else {
        return Ok(default);
    };
    match raw.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::BadRequest(json!({
            "detail": format!("invalid limit '{raw}': expected an integer from 1 to {max}"),
        }))),
    }
}

/// The `host` query parameter: `None` when absent; 400 when it is empty or longer than a
/// `HOST_NAME` can be. ([`read_host`] refuses it on a single host's dashboard.)
pub(crate) fn host_param(params: &HashMap<String, String>) -> Result<Option<String>, ApiError> {
    match params.get("host") {
        None => Ok(None),
        Some(h) if h.is_empty() || h.len() > 64 => Err(ApiError::BadRequest(json!({
            "detail": format!("invalid host '{h}': expected a host name from /api/hosts"),
        }))),
        Some(h) => Ok(Some(h.clone())),
    }
}

/// Runs a read on the blocking pool.
pub(crate) async fn read<T: Send + 'static>(
    state: &AppState,
    f: impl FnMut(&dyn Snapshot) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    blocking(state, move |reader| reader.query(f).map_err(ApiError::from)).await
}

/// Runs a read of one host on the blocking pool: on a fleet dashboard `host` (or the fleet's
/// only host when `None`: several make it a 400 naming the parameter, an unknown one a 404);
/// on a single host's dashboard `host` must be `None`.
pub(crate) async fn read_host<T: Send + 'static>(
    state: &AppState,
    host: Option<String>,
    mut f: impl FnMut(&dyn Snapshot) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    blocking(state, move |reader| {
        let Some(fleet) = reader.fleet() else {
            if host.is_some() {
                return Err(ApiError::BadRequest(json!({
                    "detail": "invalid host: this dashboard reads one host's database (SQLITE_DB_PATH); host is for a fleet dashboard (FLEET_DATABASE_URL)",
                })));
            }
            return reader.query(f).map_err(ApiError::from);
        };
        let mut answer = None;
        let pick = fleet.host_snapshot(host.as_deref(), &mut |s| {
            answer = Some(f(s)?);
            Ok(())
        })?;
        match pick {
            HostPick::Ran => answer.ok_or(ApiError::Internal),
            HostPick::Unknown => Err(ApiError::UnknownHost(host.unwrap_or_default())),
            HostPick::Ambiguous(0) => Err(ApiError::NotFound),
            HostPick::Ambiguous(n) => Err(ApiError::BadRequest(json!({
                "detail": format!("missing host: the fleet database holds {n} hosts; name one with ?host= (see /api/hosts)"),
            }))),
        }
    })
    .await
}

/// Runs `f` with the store on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&dyn ReadStore) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    // Bounded so that at most the store's pool of connections and blocking threads exist: more
    // would only queue on two cores and cost memory.
    let Ok(_permit) = state.reads.acquire().await else {
        return Err(ApiError::Internal);
    };
    let reader = state.reader.clone();
    match tokio::task::spawn_blocking(move || f(reader.as_ref())).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "database read task failed");
            Err(ApiError::Internal)
        }
    }
}

pub(crate) async fn index() -> impl IntoResponse {
    Json(json!({
        "name": "heartbeat dashboard",
        "routes": ["/api/live?range=1h", "/api/alerts?limit=50", "/api/incidents?range=24h", "/api/hosts", "/metrics", "/health"],
    }))
}

/// Liveness: always 200 while the process serves; says whether the database answers, how old
/// its newest cycle is, and how far the agent's rollup backfill of an older database has got.
pub(crate) async fn health(State(state): State<AppState>) -> Response {
    let now_ms = state.now().as_millisecond();
    if state.reader.fleet().is_some() {
        return fleet_health(&state, now_ms).await;
    }
    let db = read(&state, |q| {
        Ok((
            q.latest_cycle()?.and_then(|c| c.ts_ms),
            q.backfill()?,
            q.fleet_progress()?,
        ))
    })
    .await;
    let (database, age, backfill, fleet) = match db {
        Ok((Some(ts), backfill, fleet)) => {
            ("ok", Some((now_ms - ts) as f64 / 1000.0), backfill, fleet)
        }
        Ok((None, backfill, fleet)) => ("empty", None, backfill, fleet),
        Err(ApiError::Unavailable(_)) => ("unavailable", None, None, Vec::new()),
        Err(_) => ("error", None, None, Vec::new()),
    };
    let mut body = json!({
        "status": "ok",
        "database": database,
        "last_cycle_age_seconds": age,
        "backfill": backfill,
    });
    // Only for an agent that ships to the fleet database: a single host answers as before.
    if !fleet.is_empty()
        && let Some(object) = body.as_object_mut()
    {
        let shipping: Vec<_> = fleet
            .iter()
            .map(|f| {
                json!({
                    "host": f.host,
                    "lag_seconds": f.lag_seconds(),
                    "last_shipped_age_seconds": f.updated_ms.map(|t| (now_ms - t) as f64 / 1000.0),
                })
            })
            .collect();
        object.insert("fleet".into(), json!(shipping));
    }
    Json(body).into_response()
}

/// `/health` of a fleet dashboard: whether the fleet database answers, its hosts, how many are
/// stale, and the age of the newest cycle of any host.
async fn fleet_health(state: &AppState, now_ms: i64) -> Response {
    let hosts = crate::hosts::summaries(state, now_ms).await;
    let (database, hosts) = match hosts {
        Ok(Some(h)) if h.iter().any(|h| h.last_cycle_ms.is_some()) => ("ok", h),
        Ok(h) => ("empty", h.unwrap_or_default()),
        Err(ApiError::Unavailable(_)) => ("unavailable", Vec::new()),
        Err(_) => ("error", Vec::new()),
    };
    let newest = hosts.iter().filter_map(|h| h.last_cycle_ms).max();
    let stale = hosts
        .iter()
        .filter(|h| crate::hosts::staleness(h, now_ms).0)
        .count();
    Json(json!({
        "status": "ok",
        "database": database,
        "last_cycle_age_seconds": newest.map(|t| (now_ms - t) as f64 / 1000.0),
        "backfill": null,
        "hosts": hosts.len(),
        "stale_hosts": stale,
    }))
    .into_response()
}

const ALERTS_DEFAULT: u32 = 50;
const ALERTS_MAX: u32 = 1000;

/// Alert history, newest first.
pub(crate) async fn alerts(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let limit = limit_param(&params, ALERTS_DEFAULT, ALERTS_MAX)?;
    let host = host_param(&params)?;
    if state.reader.fleet().is_none() {
        let rows = read_host(&state, host, move |q| q.alerts(limit)).await?;
        return Ok(Json(json!({ "alerts": rows })).into_response());
    }
    // Every host's (or the one asked for), each alert with its host.
    let asked = host.clone();
    let rows = blocking(&state, move |reader| match reader.fleet() {
        Some(fleet) => Ok(fleet.alerts(asked.as_deref(), limit)?),
        None => Ok(None),
    })
    .await?
    .ok_or_else(|| ApiError::UnknownHost(host.unwrap_or_default()))?;
    let rows: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|a| {
            let mut v = json!(a.alert);
            if let Some(o) = v.as_object_mut() {
                o.insert("host".into(), json!(a.host));
            }
            v
        })
        .collect();
    Ok(Json(json!({ "alerts": rows })).into_response())
}
