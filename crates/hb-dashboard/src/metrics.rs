//! `GET /metrics`: the newest cycle and the 24-hour uptime in the Prometheus text exposition
//! format (version 0.0.4).

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use hb_core::ServiceStatus;
use hb_core::aggregate::ServiceAcc;

use crate::AppState;
use crate::api::{ApiError, host_param, read_host};

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

/// One host's newest cycle and 24-hour uptime; `host` is its label on a fleet dashboard.
struct HostMetrics {
    host: Option<String>,
    latest: Option<hb_store::LatestCycle>,
    uptime: HashMap<String, ServiceAcc>,
}

impl HostMetrics {
    /// `{host="…",k="v",…}`, or without the host on a single host's dashboard; empty without
    /// labels.
    fn labels(&self, pairs: &[(&str, &str)]) -> String {
        let all: Vec<String> = self
            .host
            .iter()
            .map(|h| format!("host=\"{}\"", escape(h)))
            .chain(pairs.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))))
            .collect();
        if all.is_empty() {
            String::new()
        } else {
            format!("{{{}}}", all.join(","))
        }
    }
}

pub(crate) async fn handler(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let now_ms = state.now().as_millisecond();
    // Whole hours so the window is answered from hour rollups when they exist.
    let end_s = now_ms.div_euclid(3_600_000) * 3_600 + 3_600;
    let start_s = end_s - UPTIME_WINDOW_S - 3_600;
    let read_one = move |q: &dyn hb_store::Snapshot| {
        let latest = q.latest_cycle()?;
        let window = q.window(start_s, end_s - start_s, 1)?;
        let uptime = window
            .buckets
            .into_iter()
            .next()
            .unwrap_or_default()
            .services;
        Ok((latest, uptime, q.fleet_progress()?))
    };
    let host = host_param(&params)?;
    let (hosts, fleet) = if state.reader.fleet().is_some() {
        // Every host (or the one asked for), each with its label.
        let names = match host {
            Some(h) => vec![h],
            None => crate::hosts::names(&state).await?,
        };
        let mut hosts = Vec::with_capacity(names.len());
        for name in names {
            let (latest, uptime, _) = read_host(&state, Some(name.clone()), read_one).await?;
            hosts.push(HostMetrics {
                host: Some(name),
                latest,
                uptime,
            });
        }
        (hosts, Vec::new())
    } else {
        let (latest, uptime, fleet) = read_host(&state, host, read_one).await?;
        let one = HostMetrics {
            host: None,
            latest,
            uptime,
        };
        (vec![one], fleet)
    };
    let mut out = String::new();
    family(
        &mut out,
        "heartbeat_cycles_present",
        "1 when the database holds at least one cycle.",
    );
    for h in &hosts {
        let _ = writeln!(
            out,
            "heartbeat_cycles_present{} {}",
            h.labels(&[]),
            u8::from(h.latest.is_some())
        );
    }
    let present: Vec<(&HostMetrics, &hb_store::LatestCycle)> = hosts
        .iter()
        .filter_map(|h| h.latest.as_ref().map(|l| (h, l)))
        .collect();
    if present.is_empty() {
        return Ok(text(out));
    }
    family(
        &mut out,
        "heartbeat_last_cycle_age_seconds",
        "Seconds since the newest cycle.",
    );
    for (h, latest) in &present {
        if let Some(ts) = latest.ts_ms {
            let _ = writeln!(
                out,
                "heartbeat_last_cycle_age_seconds{} {}",
                h.labels(&[]),
                (now_ms - ts) as f64 / 1000.0
            );
        }
    }
    let per_host = |out: &mut String,
                    name: &str,
                    help: &str,
                    value: &dyn Fn(&hb_store::LatestCycle) -> String| {
        family(out, name, help);
        for (h, latest) in &present {
            let _ = writeln!(out, "{name}{} {}", h.labels(&[]), value(latest));
        }
    };
    per_host(
        &mut out,
        "heartbeat_internet_up",
        "1 when the newest cycle's internet check passed.",
        &|l| u8::from(l.internet_status).to_string(),
    );
    per_host(
        &mut out,
        "heartbeat_worker_up",
        "1 when the heartbeat receiver answered 200.",
        &|l| u8::from(l.worker_status == Some(200)).to_string(),
    );
    per_host(
        &mut out,
        "heartbeat_worker_status_code",
        "HTTP status of the heartbeat receiver's answer (0 when none came).",
        &|l| l.worker_status.unwrap_or(0).to_string(),
    );

    family(
        &mut out,
        "heartbeat_service_up",
        "1 when the service was healthy in the newest cycle.",
    );
    for (h, latest) in &present {
        for c in &latest.checks {
            let _ = writeln!(
                out,
                "heartbeat_service_up{} {}",
                h.labels(&[("service", &c.name)]),
                u8::from(c.status.is_healthy())
            );
        }
    }
    family(
        &mut out,
        "heartbeat_service_status",
        "The service's status in the newest cycle (1 for the current one).",
    );
    for (h, latest) in &present {
        for c in &latest.checks {
            for s in ServiceStatus::ALL {
                let _ = writeln!(
                    out,
                    "heartbeat_service_status{} {}",
                    h.labels(&[("service", &c.name), ("status", s.as_str())]),
                    u8::from(c.status == s)
                );
            }
        }
    }
    family(
        &mut out,
        "heartbeat_service_latency_ms",
        "The service's latency in the newest cycle, ms.",
    );
    for (h, latest) in &present {
        for c in &latest.checks {
            if let Some(l) = c.latency_ms {
                let _ = writeln!(
                    out,
                    "heartbeat_service_latency_ms{} {l}",
                    h.labels(&[("service", &c.name)])
                );
            }
        }
    }
    family(
        &mut out,
        "heartbeat_service_uptime_ratio",
        "Share of healthy checks over about the last 24 hours (0 to 1).",
    );
    for (h, latest) in &present {
        for c in &latest.checks {
            if let Some(acc) = h.uptime.get(&c.name).filter(|a| a.n > 0) {
                let _ = writeln!(
                    out,
                    "heartbeat_service_uptime_ratio{} {}",
                    h.labels(&[("service", &c.name)]),
                    acc.healthy() as f64 / acc.n as f64
                );
            }
        }
    }
    // Only for an agent that ships to the fleet database.
    if !fleet.is_empty() {
        fleet_family(&mut out, &fleet);
    }
    // Only with an https answer, so a configuration without one exports what it did before.
    if present
        .iter()
        .any(|(_, l)| l.checks.iter().any(|c| c.cert_expires_ms.is_some()))
    {
        cert_family(&mut out, &present);
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

fn cert_family(out: &mut String, hosts: &[(&HostMetrics, &hb_store::LatestCycle)]) {
    family(
        out,
        "heartbeat_service_cert_expiry_timestamp_seconds",
        "When the leaf certificate of the service's newest https answer expires (Unix time, s).",
    );
    for (h, latest) in hosts {
        for c in &latest.checks {
            if let Some(ms) = c.cert_expires_ms {
                let _ = writeln!(
                    out,
                    "heartbeat_service_cert_expiry_timestamp_seconds{} {}",
                    h.labels(&[("service", &c.name)]),
                    ms.div_euclid(1000)
                );
            }
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
