//! `GET /api/hosts`: every host of a fleet dashboard with its newest cycle, whether it is
//! stale, its services by status and a sparkline of the last hour. A single host's dashboard
//! answers `{"fleet": false, "hosts": []}`, so the page knows to show that host alone.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use hb_core::ServiceStatus;
use hb_core::aggregate::status_index;
use hb_store::HostSummary;
use serde_json::{Value, json};

use crate::AppState;
use crate::api::{ApiError, blocking};
use crate::live::{num, stale_after_s};

pub(crate) async fn handler(State(state): State<AppState>) -> Result<Response, ApiError> {
    let now_ms = state.now().as_millisecond();
    let Some(hosts) = summaries(&state, now_ms).await? else {
        return Ok(Json(json!({"fleet": false, "hosts": []})).into_response());
    };
    let hosts: Vec<Value> = hosts.iter().map(|h| host_json(h, now_ms)).collect();
    Ok(Json(json!({"fleet": true, "hosts": hosts})).into_response())
}

/// Every host's summary; `None` on a single host's dashboard.
pub(crate) async fn summaries(
    state: &AppState,
    now_ms: i64,
) -> Result<Option<Vec<HostSummary>>, ApiError> {
    blocking(state, move |reader| match reader.fleet() {
        Some(fleet) => Ok(Some(fleet.hosts(now_ms)?)),
        None => Ok(None),
    })
    .await
}

/// The fleet's host names (empty on a single host's dashboard).
pub(crate) async fn names(state: &AppState) -> Result<Vec<String>, ApiError> {
    let now_ms = state.now().as_millisecond();
    Ok(summaries(state, now_ms)
        .await?
        .unwrap_or_default()
        .into_iter()
        .map(|h| h.name)
        .collect())
}

/// Whether the host's newest cycle is older than its staleness limit, and that limit (as the
/// single-host page's `freshness`, from the interval the agent announced).
pub(crate) fn staleness(h: &HostSummary, now_ms: i64) -> (bool, Option<f64>, f64) {
    let stale_after = stale_after_s(h.interval_seconds);
    let age = h
        .last_cycle_ms
        .map(|t| ((now_ms - t) as f64 / 1000.0).max(0.0));
    (age.is_none_or(|a| a > stale_after), age, stale_after)
}

fn host_json(h: &HostSummary, now_ms: i64) -> Value {
    let (stale, age, stale_after) = staleness(h, now_ms);
    let count = |s: ServiceStatus| h.statuses[status_index(s)];
    let lag = match (h.shipped_ms, h.last_cycle_ms) {
        (Some(shipped), Some(newest)) => Some((shipped - newest).max(0) as f64 / 1000.0),
        _ => None,
    };
    json!({
        "name": h.name,
        "state": if stale { "stale" } else { "up" },
        "last_cycle_ms": h.last_cycle_ms,
        "last_updated": h.last_updated,
        "age_seconds": num(age),
        "interval_seconds": h.interval_seconds,
        "stale_after_seconds": num(Some(stale_after)),
        "services": {
            "total": h.total(),
            "healthy": count(ServiceStatus::Healthy),
            "error": count(ServiceStatus::Error),
            "timeout": count(ServiceStatus::Timeout),
            "down": count(ServiceStatus::Down),
            "unknown": count(ServiceStatus::Unknown),
        },
        "worst_status": h.worst_status().map(ServiceStatus::as_str),
        "internet_status": h.internet_status,
        "worker_status": h.worker_status,
        "shipping_lag_seconds": num(lag),
        "last_shipped_age_seconds": num(h.shipped_ms.map(|t| (now_ms - t).max(0) as f64 / 1000.0)),
        "uptime_1h": h.uptime_1h.iter().map(|v| num(*v)).collect::<Vec<_>>(),
    })
}
