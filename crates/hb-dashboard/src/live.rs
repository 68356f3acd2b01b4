//! `GET /api/live?range=R`: the JSON contract of SPEC §4.1 (field names are read by the original
//! tool's page), built from the newest cycle and the bucketed aggregates of the range.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use hb_core::ServiceStatus;
use hb_core::aggregate::{CycleAcc, ServiceAcc, Stat};
use hb_store::{LatestCycle, Window};
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::api::{ApiError, host_param, range_param, read_host};
use crate::mask::mask_error;

/// The accepted ranges and their length in seconds: the older tool's eight, then `90d` and
/// `1y`, which only rollups can answer once retention has pruned the raw rows.
pub const RANGES: [(&str, i64); 10] = [
    ("live", 300),
    ("1h", 3_600),
    ("3h", 10_800),
    ("6h", 21_600),
    ("12h", 43_200),
    ("24h", 86_400),
    ("7d", 604_800),
    ("30d", 2_592_000),
    ("90d", 7_776_000),
    ("1y", 31_536_000),
];

pub fn range_seconds(name: &str) -> Option<i64> {
    RANGES.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// Bucket layout of a range at `now_s`: `points + 1` buckets of `width` seconds aligned to
/// multiples of the width, the last one holding now.
pub(crate) fn layout(range_s: i64, points: u32, now_s: i64) -> (i64, i64, usize) {
    let points = i64::from(points.max(1));
    let width = (range_s / points).max(1);
    let last = now_s.div_euclid(width) * width;
    let start = last - points * width;
    (start, width, usize::try_from(points + 1).unwrap_or(1))
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

pub(crate) fn num(v: Option<f64>) -> Value {
    v.map_or(Value::Null, |x| json!(round2(x)))
}

fn pct(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        round2(part as f64 * 100.0 / total as f64)
    }
}

pub(crate) fn service_type(url: Option<&str>) -> &'static str {
    match url.and_then(hb_core::ServiceKind::of_url) {
        Some(k) => k.as_str(),
        None => "unknown",
    }
}

/// Http and tcp services are ordered together, as everywhere (`hb_core::compare_services`).
fn type_rank(t: &str) -> u8 {
    match t {
        "http" | "tcp" => 0,
        "docker" => 1,
        _ => 2,
    }
}

fn format_uptime(seconds: Option<f64>) -> String {
    let Some(s) = seconds.filter(|s| s.is_finite() && *s >= 0.0) else {
        return "N/A".into();
    };
    let s = s as u64;
    format!(
        "{}d {}h {}m {}s",
        s / 86_400,
        s % 86_400 / 3_600,
        s % 3_600 / 60,
        s % 60
    )
}

fn stats(stat: &Stat) -> Value {
    json!({
        "max": round2(stat.max_opt().unwrap_or(0.0)),
        "avg": round2(stat.avg().unwrap_or(0.0)),
        "min": round2(stat.min_opt().unwrap_or(0.0)),
        "jitter": round2(stat.jitter().unwrap_or(0.0)),
        // The contract's numbers are 0 without data; this tells "no data" from a real 0.
        "samples": stat.n,
    })
}

/// How many of the newest cycles the interval is estimated from (their spacings' median).
pub(crate) const INTERVAL_SAMPLE: usize = 6;
/// The interval assumed while fewer than two cycles exist: SPEC's `LOOP_INTERVAL_SECONDS` default.
const FALLBACK_INTERVAL_S: f64 = 10.0;
/// Slack beyond one interval before data counts as stale, for the write and a busy host.
const STALE_SLACK_S: f64 = 5.0;

/// The agent's cycle interval from the newest cycles' instants (newest first): the lower
/// median of their spacings, so one restart gap among them does not stretch it. `None` with
/// fewer than two distinct instants.
pub(crate) fn interval_s(recent_ms: &[i64]) -> Option<f64> {
    let mut gaps: Vec<i64> = recent_ms
        .windows(2)
        .map(|w| w[0] - w[1])
        .filter(|g| *g > 0)
        .collect();
    gaps.sort_unstable();
    gaps.get(gaps.len().checked_sub(1)? / 2)
        .map(|g| *g as f64 / 1000.0)
}

/// Seconds after which the newest cycle of an agent cycling every `interval` seconds is stale:
/// three intervals, at least one interval plus a few seconds (the default interval if unknown).
pub(crate) fn stale_after_s(interval: Option<f64>) -> f64 {
    let basis = interval.unwrap_or(FALLBACK_INTERVAL_S);
    (3.0 * basis).max(basis + STALE_SLACK_S)
}

/// `freshness`: whether the newest cycle is recent enough for its statuses to be current. It
/// is stale when older than three intervals (at least one interval plus a few seconds).
pub(crate) fn freshness(now_ms: i64, newest_ms: Option<i64>, recent_ms: &[i64]) -> Value {
    let interval = interval_s(recent_ms);
    let stale_after = stale_after_s(interval);
    let age = newest_ms.map(|t| ((now_ms - t) as f64 / 1000.0).max(0.0));
    json!({
        "last_cycle_ms": newest_ms,
        "age_seconds": num(age),
        "interval_seconds": num(interval),
        "stale_after_seconds": round2(stale_after),
        // An unparsable newest timestamp cannot be shown as current either.
        "stale": age.is_none_or(|a| a > stale_after),
    })
}

/// `{status: count}` of the statuses present, as `stats.distribution`.
fn status_counts(acc: &ServiceAcc) -> Value {
    let mut counts = Map::new();
    for status in ServiceStatus::ALL {
        let n = acc.count(status);
        if n > 0 {
            counts.insert(status.as_str().to_owned(), json!(n));
        }
    }
    Value::Object(counts)
}

pub(crate) async fn handler(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (range, range_s) = range_param(&params, "1h")?;
    let host = host_param(&params)?;
    let now_s = state.now().as_second();
    let (start, width, count) = layout(range_s, state.settings.target_data_points, now_s);
    let data = read_host(&state, host, move |q| {
        let Some(latest) = q.latest_cycle()? else {
            return Ok(None);
        };
        let window = q.window(start, width, count)?;
        let recent = q.recent_cycle_instants_ms(INTERVAL_SAMPLE)?;
        Ok(Some((latest, window, recent)))
    })
    .await?;
    let Some((latest, window, recent)) = data else {
        return Err(ApiError::NotFound);
    };
    let source = window.source.as_str();
    // Says which rows answered, for operators and tests; the body is the same either way.
    Ok((
        [("x-heartbeat-source", source)],
        Json(build(&state, &range, &latest, &window, &recent)),
    )
        .into_response())
}

/// The keys only some services have, added only when known, so a service without them (every
/// service of a configuration from before them) answers exactly as before:
/// `cert_expires_at`, `cert_days_left` and `cert_expiring` for an https answer's certificate,
/// `health` for a container whose own health check fails.
fn add_service_facts(
    service: &mut Value,
    c: &hb_store::CheckRow,
    kind: &str,
    now_ms: i64,
    warn_days: u32,
) {
    let Some(object) = service.as_object_mut() else {
        return;
    };
    if let Some(ms) = c.cert_expires_ms {
        object.insert("cert_expires_at".into(), json!(iso_utc(ms)));
        object.insert(
            "cert_days_left".into(),
            json!(hb_core::cert::days_left(ms, now_ms)),
        );
        let expiring = hb_core::cert::level(warn_days, ms, now_ms) != hb_core::cert::CertLevel::Ok;
        object.insert("cert_expiring".into(), json!(expiring));
    }
    if let Some(health) = container_health(kind, c.error_message.as_deref()) {
        object.insert("health".into(), json!(health));
    }
}

/// `2026-12-13T10:00:00Z`.
fn iso_utc(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// A container's own health check, when the stored reason says it failed (`Container health:
/// unhealthy`): `unhealthy`; `None` for anything else. Only the word is shown, so masking has
/// nothing to hide.
fn container_health(kind: &str, reason: Option<&str>) -> Option<&'static str> {
    let health = reason?.strip_prefix("Container health: ")?;
    (kind == "docker" && health == "unhealthy").then_some("unhealthy")
}

/// The response body. `recent_ms`: the newest cycles' instants, newest first (for `freshness`).
pub(crate) fn build(
    state: &AppState,
    range: &str,
    latest: &LatestCycle,
    window: &Window,
    recent_ms: &[i64],
) -> Value {
    let settings = &state.settings;
    let now_ms = state.now().as_millisecond();
    let mut total = CycleAcc::default();
    let mut per_service: HashMap<&str, ServiceAcc> = HashMap::new();
    for b in &window.buckets {
        total.merge(&b.cycles);
        for (name, acc) in &b.services {
            per_service.entry(name.as_str()).or_default().merge(acc);
        }
    }

    let windows = settings.maintenance.windows();
    let open_now = settings.maintenance.active_at(now_ms);

    let mut checks: Vec<_> = latest
        .checks
        .iter()
        .map(|c| (service_type(c.url.as_deref()), c))
        .collect();
    checks.sort_by(|a, b| {
        type_rank(a.0)
            .cmp(&type_rank(b.0))
            .then_with(|| a.1.name.to_lowercase().cmp(&b.1.name.to_lowercase()))
            .then_with(|| a.1.name.cmp(&b.1.name))
    });

    let services: Vec<Value> = checks
        .iter()
        .map(|(kind, c)| {
            let acc = per_service
                .get(c.name.as_str())
                .cloned()
                .unwrap_or_default();
            let distribution = status_counts(&acc);
            let pctl = |p: f64| num(acc.hist.percentile(p, &acc.latency));
            let slow_ms = settings.slow_ms.for_service(&c.name);
            let in_maintenance = open_now.iter().any(|o| windows[o.window].covers(&c.name));
            let mut service = json!({
                "name": c.name,
                "service_type": kind,
                "status": c.status,
                "status_code": c.status_code,
                "latency": num(c.latency_ms),
                "error": mask_error(
                    settings.mask_errors,
                    kind,
                    c.status.as_str(),
                    c.status_code,
                    c.error_message.as_deref(),
                ),
                "slow_ms": slow_ms,
                "slow": settings.slow_ms.is_slow(&c.name, c.latency_ms),
                "maintenance": in_maintenance,
                "stats": {
                    "uptime": pct(acc.healthy(), acc.n),
                    "success": acc.healthy(),
                    "failure": acc.n - acc.healthy(),
                    "distribution": distribution,
                    "max": round2(acc.latency.max_opt().unwrap_or(0.0)),
                    "avg": round2(acc.latency.avg().unwrap_or(0.0)),
                    "min": round2(acc.latency.min_opt().unwrap_or(0.0)),
                    "jitter": round2(acc.latency.jitter().unwrap_or(0.0)),
                    "p50": pctl(50.0),
                    "p95": pctl(95.0),
                    "p99": pctl(99.0),
                    "latency_samples": acc.latency.n,
                },
            });
            add_service_facts(&mut service, c, kind, now_ms, settings.tls_expiry_warn_days);
            service
        })
        .collect();

    let label_format = match window.width_s {
        w if w < 60 => "%H:%M:%S",
        w if w < 3_600 => "%H:%M",
        _ => "%m-%d %H:%M",
    };
    let mut times = Vec::with_capacity(window.buckets.len());
    let mut timestamps = Vec::with_capacity(window.buckets.len());
    let (mut cpu, mut ram, mut disk) = (Vec::new(), Vec::new(), Vec::new());
    let (mut duration, mut ping, mut ping_jitter) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ping_min, mut ping_max) = (Vec::new(), Vec::new());
    for (i, b) in window.buckets.iter().enumerate() {
        let t = window.start_s + window.width_s * i as i64;
        timestamps.push(t);
        let label = jiff::Timestamp::from_second(t)
            .map(|ts| {
                ts.to_zoned_datetime(settings.tz.clone())
                    .strftime(label_format)
                    .to_string()
            })
            .unwrap_or_default();
        times.push(label);
        let c = &b.cycles;
        let avg = |sum: f64| (c.n > 0).then(|| sum / c.n as f64);
        cpu.push(num(avg(c.cpu_sum)));
        ram.push(num(avg(c.ram_sum)));
        disk.push(num(avg(c.disk_sum)));
        duration.push(num(c.duration.avg()));
        ping.push(num(c.ping.avg()));
        ping_jitter.push(num(c.ping.jitter()));
        ping_min.push(num(c.ping.min_opt()));
        ping_max.push(num(c.ping.max_opt()));
    }
    // Every service with checks in the range gets a series, as in the original tool: one taken
    // out of the configuration stays on the charts until its history leaves the range. The
    // newest cycle's services come first, in their order, then the others by name.
    let newest: std::collections::HashSet<&str> =
        checks.iter().map(|(_, c)| c.name.as_str()).collect();
    let mut removed: Vec<&str> = per_service
        .keys()
        .copied()
        .filter(|name| !newest.contains(name))
        .collect();
    removed.sort_by_cached_key(|name| (name.to_lowercase(), *name));
    let mut hist_services = Map::new();
    let mut hist_jitter = Map::new();
    let (mut hist_min, mut hist_max, mut hist_status) = (Map::new(), Map::new(), Map::new());
    for name in checks.iter().map(|(_, c)| c.name.as_str()).chain(removed) {
        let series = |f: &dyn Fn(&ServiceAcc) -> Option<f64>| -> Vec<Value> {
            window
                .buckets
                .iter()
                .map(|b| num(b.services.get(name).and_then(f)))
                .collect()
        };
        hist_services.insert(name.to_owned(), json!(series(&|a| a.latency.avg())));
        hist_jitter.insert(name.to_owned(), json!(series(&|a| a.latency.jitter())));
        hist_min.insert(name.to_owned(), json!(series(&|a| a.latency.min_opt())));
        hist_max.insert(name.to_owned(), json!(series(&|a| a.latency.max_opt())));
        let statuses: Vec<Value> = window
            .buckets
            .iter()
            .map(|b| match b.services.get(name) {
                Some(acc) if acc.n > 0 => status_counts(acc),
                _ => Value::Null,
            })
            .collect();
        hist_status.insert(name.to_owned(), json!(statuses));
    }

    let distribution: Vec<Value> = total
        .workers
        .0
        .iter()
        .map(|(code, n)| {
            let name = if *code == 0 {
                "TIMEOUT".to_owned()
            } else {
                code.to_string()
            };
            json!({"value": n, "name": name})
        })
        .collect();
    let worker_ok = total.workers.0.get(&200).copied().unwrap_or(0);
    let mut monitor_uptime = Map::new();
    monitor_uptime.insert(range.to_owned(), json!(pct(worker_ok, total.n)));

    json!({
        "last_updated": latest.timestamp,
        "freshness": freshness(state.now().as_millisecond(), latest.ts_ms, recent_ms),
        "system": {
            "cpu": round2(latest.cpu_percent),
            "ram": round2(latest.ram_percent),
            "disk": round2(latest.disk_percent),
            "containers": if latest.container_count < 0 {
                "Docker Error".to_owned()
            } else {
                format!("{} Containers", latest.container_count)
            },
            "uptime": format_uptime(latest.uptime_seconds),
        },
        "monitor": {
            "worker_status": latest.worker_status,
            "uptime": monitor_uptime,
            "distribution": distribution,
            "stats": stats(&total.duration),
        },
        "network": {
            "internet_status": latest.internet_status,
            "uptime": pct(total.inet_up, total.n),
            "uptime_counts": {"success": total.inet_up, "failure": total.n - total.inet_up},
            "stats": stats(&total.ping),
        },
        "services": services,
        "maintenance": maintenance(settings, window, now_ms),
        "history": {
            "times": times,
            "timestamps": timestamps,
            "system": {"cpu": cpu, "ram": ram, "disk": disk},
            "cycle_duration": duration,
            "ping": ping,
            "ping_jitter": ping_jitter,
            "services": hist_services,
            "services_jitter": hist_jitter,
            "services_min": hist_min,
            "services_max": hist_max,
            "services_status": hist_status,
            "ping_min": ping_min,
            "ping_max": ping_max,
        },
    })
}

/// How far ahead the next maintenance window is announced.
const NEXT_WINDOW_WITHIN_MS: i64 = 7 * 86_400_000;

/// The maintenance windows of the chart's range (up to now) and the next one to come: each
/// with its instants, the items it covers (empty: all) and whether it is open now.
fn maintenance(settings: &crate::Settings, window: &Window, now_ms: i64) -> Value {
    let schedule = &settings.maintenance;
    let windows = schedule.windows();
    let describe = |o: &hb_core::maintenance::Occurrence| {
        json!({
            "window": windows[o.window].text,
            "items": windows[o.window].items,
            "start": iso_utc(o.start_ms),
            "end": iso_utc(o.end_ms),
            "start_ms": o.start_ms,
            "end_ms": o.end_ms,
            "active": o.start_ms <= now_ms && now_ms < o.end_ms,
        })
    };
    let range_start_ms = window.start_s.saturating_mul(1000);
    let shown: Vec<Value> = schedule
        .occurrences(range_start_ms, now_ms.saturating_add(1))
        .iter()
        .map(describe)
        .collect();
    let next = schedule
        .occurrences(
            now_ms.saturating_add(1),
            now_ms.saturating_add(NEXT_WINDOW_WITHIN_MS),
        )
        .iter()
        .find(|o| o.start_ms > now_ms)
        .map(describe);
    json!({
        "active": !schedule.active_at(now_ms).is_empty(),
        "windows": shown,
        "next": next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_aligns_and_counts() {
        // 24h over 30 points: 48-minute buckets, the last holding now.
        let now = 1_764_000_000 + 1_000;
        let (start, width, count) = layout(86_400, 30, now);
        assert_eq!(width, 2_880);
        assert_eq!(count, 31);
        assert_eq!(start % width, 0);
        let last = start + width * 30;
        assert!(last <= now && now < last + width);
        assert_eq!(layout(300, 30, 95).1, 10);
    }

    #[test]
    fn interval_is_the_lower_median_spacing() {
        assert_eq!(interval_s(&[]), None);
        assert_eq!(interval_s(&[1_000]), None);
        assert_eq!(interval_s(&[20_000, 10_000]), Some(10.0));
        // A restart gap of an hour among the spacings does not stretch the interval.
        let ms = [3_640_000, 3_630_000, 3_620_000, 3_610_000, 10_000, 0];
        assert_eq!(interval_s(&ms), Some(10.0));
        assert_eq!(
            interval_s(&[5_000, 5_000, 2_000]),
            Some(3.0),
            "duplicates ignored"
        );
    }

    #[test]
    fn stale_after_three_intervals() {
        let recent = [100_000, 90_000, 80_000];
        let f = freshness(129_000, Some(100_000), &recent);
        assert_eq!(f["stale"], false);
        assert_eq!(f["age_seconds"], 29.0);
        assert_eq!(f["interval_seconds"], 10.0);
        assert_eq!(f["stale_after_seconds"], 30.0);
        assert_eq!(freshness(131_000, Some(100_000), &recent)["stale"], true);
        // A one-second agent: one interval plus the slack.
        let fast = [3_000, 2_000, 1_000];
        assert_eq!(freshness(8_500, Some(3_000), &fast)["stale"], false);
        assert_eq!(freshness(9_500, Some(3_000), &fast)["stale"], true);
        // One cycle only: judged against the default interval; no instant: stale.
        assert_eq!(freshness(35_000, Some(0), &[0])["stale"], true);
        assert_eq!(
            freshness(25_000, Some(0), &[0])["interval_seconds"],
            Value::Null
        );
        assert_eq!(freshness(0, None, &[])["stale"], true);
    }

    #[test]
    fn uptime_text() {
        assert_eq!(format_uptime(Some(1_218_615.9)), "14d 2h 30m 15s");
        assert_eq!(format_uptime(None), "N/A");
    }
}
