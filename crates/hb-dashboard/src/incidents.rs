//! `GET /api/incidents?range=R&limit=N`: the outages that overlap the range, newest first, from
//! the store's incidents (runs of bad checks, whether or not they alerted), with their length
//! and masked reasons.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use hb_core::incident::format_duration;
use hb_store::IncidentRow;
use serde_json::{Value, json};

use crate::AppState;
use crate::api::{ApiError, host_param, limit_param, range_param, read_host};
use crate::live::service_type;
use crate::mask::mask_error;

const LIMIT_DEFAULT: u32 = 100;
const LIMIT_MAX: u32 = 1000;

pub(crate) async fn handler(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (range, range_s) = range_param(&params, "24h")?;
    let limit = limit_param(&params, LIMIT_DEFAULT, LIMIT_MAX)?;
    let now_ms = state.now().as_millisecond();
    let from_ms = now_ms - range_s * 1000;
    let host = host_param(&params)?;
    let (latest, incidents) = read_host(&state, host, move |q| {
        Ok((q.latest_cycle()?, q.incidents(from_ms, now_ms + 1, limit)?))
    })
    .await?;
    // The services of the newest cycle, with their kind: an open incident of a service no
    // longer checked has no known end.
    let checked: HashMap<String, &'static str> = latest
        .iter()
        .flat_map(|c| c.checks.iter())
        .map(|c| (c.name.clone(), service_type(c.url.as_deref())))
        .collect();
    let mask = state.settings.mask_errors;
    let list: Vec<Value> = incidents
        .iter()
        .map(|i| incident_json(i, checked.get(&i.service).copied(), now_ms, mask))
        .collect();
    Ok(Json(json!({"range": range, "count": list.len(), "incidents": list})).into_response())
}

fn incident_json(i: &IncidentRow, kind: Option<&str>, now_ms: i64, mask: bool) -> Value {
    let checked = kind.is_some();
    let ongoing = i.ended_ms.is_none() && checked;
    let end_ms = match i.ended_ms {
        Some(ms) => ms,
        None if ongoing => now_ms,
        None => i.last_bad_ms,
    };
    let duration_ms = (end_ms - i.started_ms).max(0);
    let kind = kind.unwrap_or("unknown");
    let reason = |status: hb_core::ServiceStatus, code: Option<i64>, text: Option<&str>| {
        mask_error(mask, kind, status.as_str(), code, text)
    };
    let mut statuses = serde_json::Map::new();
    for (name, n) in [
        ("error", i.error),
        ("timeout", i.timeout),
        ("down", i.down),
        ("unknown", i.unknown),
    ] {
        if n > 0 {
            statuses.insert(name.to_owned(), json!(n));
        }
    }
    json!({
        "id": i.id,
        "service": i.service,
        "started_at": i.started_at,
        "started": i.started_ms as f64 / 1000.0,
        "ended_at": i.ended_at,
        "ended": i.ended_ms.map(|ms| ms as f64 / 1000.0),
        "ongoing": ongoing,
        "checked": checked,
        "duration_seconds": duration_ms as f64 / 1000.0,
        "duration": format_duration(duration_ms),
        "checks": i.checks,
        "statuses": statuses,
        "first_status": i.first_status,
        "last_status": i.last_status,
        "first_reason": reason(i.first_status, i.first_code, i.first_reason.as_deref()),
        "last_reason": reason(i.last_status, i.last_code, i.last_reason.as_deref()),
    })
}
