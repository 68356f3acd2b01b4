//! `GET /metrics`: the newest cycle and the 24-hour uptime in the Prometheus text exposition
//! format (version 0.0.4).

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use hb_core::ServiceStatus;
use hb_core::aggregate::ServiceAcc;

use crate::AppState;
use crate::api::{ApiError, read};

const UPTIME_WINDOW_S: i64 = 86_400;

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

pub(crate) async fn handler(State(state): State<AppState>) -> Result<Response, ApiError> {
    let now_ms = state.now().as_millisecond();
    // Whole hours so the window is answered from hour rollups when they exist.
    let end_s = now_ms.div_euclid(3_600_000) * 3_600 + 3_600;
    let start_s = end_s - UPTIME_WINDOW_S - 3_600;
    let data = read(&state, move |q| {
        let latest = q.latest_cycle()?;
        let window = q.window(start_s, end_s - start_s, 1)?;
        Ok((latest, window, q.fleet_progress()?))
    })
    .await?;
    let (latest, window, fleet) = data;
    let mut out = String::new();
    family(
        &mut out,
        "heartbeat_cycles_present",
        "1 when the database holds at least one cycle.",
    );
    let _ = writeln!(
        out,
        "heartbeat_cycles_present {}",
        u8::from(latest.is_some())
    );
    let Some(latest) = latest else {
        return Ok(text(out));
    };
    let uptime: HashMap<&String, &ServiceAcc> = window
        .buckets
        .first()
        .map(|b| b.services.iter().collect())
        .unwrap_or_default();

    family(
        &mut out,
        "heartbeat_last_cycle_age_seconds",
        "Seconds since the newest cycle.",
    );
    if let Some(ts) = latest.ts_ms {
        let _ = writeln!(
            out,
            "heartbeat_last_cycle_age_seconds {}",
            (now_ms - ts) as f64 / 1000.0
        );
    }
    family(
        &mut out,
        "heartbeat_internet_up",
        "1 when the newest cycle's internet check passed.",
    );
    let _ = writeln!(
        out,
        "heartbeat_internet_up {}",
        u8::from(latest.internet_status)
    );
    family(
        &mut out,
        "heartbeat_worker_up",
        "1 when the heartbeat receiver answered 200.",
    );
    let _ = writeln!(
        out,
        "heartbeat_worker_up {}",
        u8::from(latest.worker_status == Some(200))
    );
    family(
        &mut out,
        "heartbeat_worker_status_code",
        "HTTP status of the heartbeat receiver's answer (0 when none came).",
    );
    let _ = writeln!(
        out,
        "heartbeat_worker_status_code {}",
        latest.worker_status.unwrap_or(0)
    );

    family(
        &mut out,
        "heartbeat_service_up",
        "1 when the service was healthy in the newest cycle.",
    );
    for c in &latest.checks {
        let _ = writeln!(
            out,
            "heartbeat_service_up{{service=\"{}\"}} {}",
            escape(&c.name),
            u8::from(c.status.is_healthy())
        );
    }
    family(
        &mut out,
        "heartbeat_service_status",
        "The service's status in the newest cycle (1 for the current one).",
    );
    for c in &latest.checks {
        for s in ServiceStatus::ALL {
            let _ = writeln!(
                out,
                "heartbeat_service_status{{service=\"{}\",status=\"{s}\"}} {}",
                escape(&c.name),
                u8::from(c.status == s)
            );
        }
    }
    family(
        &mut out,
        "heartbeat_service_latency_ms",
        "The service's latency in the newest cycle, ms.",
    );
    for c in &latest.checks {
        if let Some(l) = c.latency_ms {
            let _ = writeln!(
                out,
                "heartbeat_service_latency_ms{{service=\"{}\"}} {l}",
                escape(&c.name)
            );
        }
    }
    family(
        &mut out,
        "heartbeat_service_uptime_ratio",
        "Share of healthy checks over about the last 24 hours (0 to 1).",
    );
    for c in &latest.checks {
        if let Some(acc) = uptime.get(&c.name).filter(|a| a.n > 0) {
            let _ = writeln!(
                out,
                "heartbeat_service_uptime_ratio{{service=\"{}\"}} {}",
                escape(&c.name),
                acc.healthy() as f64 / acc.n as f64
            );
        }
    }
    // Only for an agent that ships to the fleet database.
    if !fleet.is_empty() {
        fleet_family(&mut out, &fleet);
    }
    // Only with an https answer, so a configuration without one exports what it did before.
    if latest.checks.iter().any(|c| c.cert_expires_ms.is_some()) {
        cert_family(&mut out, &latest.checks);
    }
    Ok(text(out))
}

fn fleet_family(out: &mut String, fleet: &[hb_store::FleetProgress]) {
    family(
        out,
        "heartbeat_fleet_lag_seconds",
        "How far the fleet database is behind this agent's newest cycle, seconds.",
    );
    for f in fleet {
        if let Some(lag) = f.lag_seconds() {
            let _ = writeln!(
                out,
                "heartbeat_fleet_lag_seconds{{host=\"{}\"}} {lag}",
                escape(&f.host)
            );
        }
    }
}

fn cert_family(out: &mut String, checks: &[hb_store::CheckRow]) {
    family(
        out,
        "heartbeat_service_cert_expiry_timestamp_seconds",
        "When the leaf certificate of the service's newest https answer expires (Unix time, s).",
    );
    for c in checks {
        if let Some(ms) = c.cert_expires_ms {
            let _ = writeln!(
                out,
                "heartbeat_service_cert_expiry_timestamp_seconds{{service=\"{}\"}} {}",
                escape(&c.name),
                ms.div_euclid(1000)
            );
        }
    }
}

fn text(body: String) -> Response {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
}
