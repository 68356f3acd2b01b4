//! Integration tests of the dashboard: real SQLite files (written by the real writer, or in the
//! original tool's schema), a real server on 127.0.0.1:0, requests with reqwest.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hb_core::{
    AlertRecord, CheckOutcome, CycleRecord, HostMetrics, InternetCheck, ServiceKind, ServiceResult,
    ServiceStatus,
};
use hb_dashboard::{AppState, Settings};

mod double;
use serde_json::Value;

/// 2025-11-25T00:00:00Z, a multiple of one day.
const T0: i64 = 1_764_028_800;
/// 12:00:05 on that day.
const NOW: i64 = T0 + 43_205;
const SECRET: &str = "SECRET123";

struct Server {
    base: String,
    client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Server {
    async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    async fn source(&self, path: &str) -> String {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request");
        r.headers()
            .get("x-heartbeat-source")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_owned()
    }

    async fn json(&self, path: &str) -> (u16, Value) {
        let (s, body) = self.get(path).await;
        (s, serde_json::from_str(&body).expect("json body"))
    }
}

struct Opts {
    now_s: i64,
    mask: bool,
    cors: Vec<String>,
    points: u32,
    tz: jiff::tz::TimeZone,
    slow_ms: hb_core::SlowThresholds,
    maintenance: hb_core::maintenance::MaintenanceSchedule,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            now_s: NOW,
            mask: true,
            cors: Vec::new(),
            points: 30,
            tz: jiff::tz::TimeZone::UTC,
            slow_ms: hb_core::SlowThresholds::default(),
            maintenance: Default::default(),
        }
    }
}

async fn start(db: &Path, opts: Opts) -> Server {
    let store = Arc::new(hb_store_sqlite::SqliteStore::new(db).reader());
    start_on(store, opts).await
}

/// The dashboard on any read store (the SQLite reader, or a test double).
async fn start_on(store: Arc<dyn hb_store::ReadStore>, opts: Opts) -> Server {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let settings = Settings {
        target_data_points: opts.points,
        tz: opts.tz,
        mask_errors: opts.mask,
        cors_origins: opts.cors,
        slow_ms: opts.slow_ms,
        tls_expiry_warn_days: 14,
        maintenance: opts.maintenance.clone(),
    };
    let now_s = opts.now_s;
    let state = AppState::new(settings, store).with_clock(Arc::new(move || {
        jiff::Timestamp::from_second(now_s).expect("valid test time")
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(hb_dashboard::serve(
        listener,
        hb_dashboard::app(state),
        async move {
            let _ = rx.await;
        },
    ));
    Server {
        base: format!("http://{addr}"),
        client: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client"),
        stop: Some(tx),
    }
}

fn svc(name: &str, url: &str, outcome: CheckOutcome) -> ServiceResult {
    ServiceResult {
        name: name.into(),
        kind: ServiceKind::of_url(url).unwrap_or(ServiceKind::Http),
        url: url.into(),
        outcome,
    }
}

fn with_reason(mut o: CheckOutcome, reason: &str) -> CheckOutcome {
    o.reason = Some(reason.into());
    o
}

#[allow(clippy::too_many_arguments)]
fn cycle(
    n: usize,
    ts_ms: i64,
    cpu: f64,
    ping: Option<f64>,
    worker: Option<u16>,
    duration_ms: i64,
    services: Vec<ServiceResult>,
) -> CycleRecord {
    let timestamp = jiff::Timestamp::from_millisecond(ts_ms)
        .expect("ts")
        .strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string();
    CycleRecord {
        id: format!("00000000-0000-4000-8000-{n:012}"),
        timestamp,
        timestamp_ms: ts_ms,
        host: HostMetrics {
            cpu_percent: cpu,
            ram_percent: cpu + 1.0,
            ram_used_mb: 1000.0,
            disk_percent: cpu + 2.0,
            uptime_seconds: Some(1_218_615.0),
        },
        container_count: 7,
        internet: InternetCheck {
            online: ping.is_some(),
            ping_ms: ping,
        },
        worker_status: worker,
        cycle_duration_ms: duration_ms,
        services,
    }
}

/// Five cycles around NOW with a gap; see the assertions for the expected numbers.
fn tiny_cycles() -> Vec<CycleRecord> {
    let base = (NOW / 10 * 10) * 1000;
    let offsets_s = [-60, -50, -40, -10, 1];
    let cpu = [10.0, 20.0, 30.0, 40.0, 50.0];
    let ping = [Some(10.0), Some(20.0), Some(30.0), None, Some(50.0)];
    let worker = [Some(200), Some(200), Some(220), None, Some(200)];
    let api_latency = [10.0, 20.0, 30.0, 40.0];
    (0..5)
        .map(|i| {
            let api = if i < 4 {
                CheckOutcome::healthy(Some(api_latency[i]))
            } else {
                with_reason(
                    CheckOutcome::from_http_status(500, 100.0),
                    &format!("HTTP 500 token={SECRET}"),
                )
            };
            let cache = if i == 3 {
                CheckOutcome::down(format!("connection refused by {SECRET}-host"))
            } else {
                CheckOutcome::healthy(Some(1.0))
            };
            let alpha = if i == 4 {
                with_reason(
                    CheckOutcome::timeout(),
                    &format!("Timeout after key {SECRET}"),
                )
            } else {
                CheckOutcome::healthy(Some(2.0))
            };
            cycle(
                i,
                base + offsets_s[i] * 1000,
                cpu[i],
                ping[i],
                worker[i],
                (i as i64 + 1) * 100,
                vec![
                    svc("cache", "docker:cache", cache),
                    svc(
                        "Beta",
                        "https://beta.local/",
                        CheckOutcome::healthy(Some(5.0)),
                    ),
                    svc("alpha-db", "docker:alpha-db", alpha),
                    svc("api", "http://api.local/health", api),
                ],
            )
        })
        .collect()
}

fn write_with_writer(path: &Path, cycles: &[CycleRecord]) {
    let mut w = hb_store_sqlite::Writer::open(path).expect("open writer");
    for c in cycles {
        w.record_cycle(c, &[]).expect("record");
    }
}

/// The original tool's schema: no `ts_ms`, no rollups, no alerts; timestamps written with the
/// offset `offset_h(i)` hours, so instants must be compared as instants.
fn write_legacy(path: &Path, cycles: &[CycleRecord], offset_h: impl Fn(usize) -> i8) {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
         CREATE TABLE monitoring_cycles (id TEXT PRIMARY KEY, timestamp_lima TEXT NOT NULL,
           cpu_percent REAL NOT NULL, ram_percent REAL NOT NULL, ram_used_mb REAL NOT NULL,
           disk_percent REAL NOT NULL, uptime_seconds REAL, container_count INTEGER NOT NULL,
           internet_status BOOLEAN NOT NULL, ping_ms REAL, worker_status INTEGER,
           cycle_duration_ms INTEGER);
         CREATE TABLE service_checks (id INTEGER PRIMARY KEY AUTOINCREMENT,
           cycle_id TEXT NOT NULL REFERENCES monitoring_cycles(id), service_name TEXT NOT NULL,
           service_url TEXT, status TEXT NOT NULL, status_code INTEGER, latency_ms REAL,
           error_message TEXT);
         CREATE INDEX idx_ts ON monitoring_cycles(timestamp_lima);
         CREATE INDEX idx_cycle ON service_checks(cycle_id);",
    )
    .expect("schema");
    let tx = conn.unchecked_transaction().expect("tx");
    for (i, c) in cycles.iter().enumerate() {
        let tz = jiff::tz::TimeZone::fixed(jiff::tz::offset(offset_h(i)));
        let ts = jiff::Timestamp::from_millisecond(c.timestamp_ms)
            .expect("ts")
            .to_zoned_datetime(tz)
            .strftime("%Y-%m-%dT%H:%M:%S%.6f%:z")
            .to_string();
        tx.execute(
            "INSERT INTO monitoring_cycles VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
            rusqlite::params![
                c.id,
                ts,
                c.host.cpu_percent,
                c.host.ram_percent,
                c.host.ram_used_mb,
                c.host.disk_percent,
                c.host.uptime_seconds,
                c.container_count,
                c.internet.online,
                c.internet.ping_ms,
                c.worker_status,
                c.cycle_duration_ms
            ],
        )
        .expect("cycle");
        for s in &c.services {
            tx.execute(
                "INSERT INTO service_checks (cycle_id, service_name, service_url, status,
                   status_code, latency_ms, error_message) VALUES (?1,?2,?3,?4,?5,?6,?7)",
                rusqlite::params![
                    c.id,
                    s.name,
                    s.url,
                    s.outcome.status.as_str(),
                    s.outcome.status_code,
                    s.outcome.latency_ms,
                    s.outcome.reason
                ],
            )
            .expect("check");
        }
    }
    tx.commit().expect("commit");
}

const RANGES: [&str; 10] = [
    "live", "1h", "3h", "6h", "12h", "24h", "7d", "30d", "90d", "1y",
];

fn nulls(v: &Value, upto: usize) -> bool {
    v.as_array().expect("array")[..upto]
        .iter()
        .all(Value::is_null)
}

#[tokio::test]
async fn live_range_exact_numbers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("m.db");
    write_with_writer(&db, &tiny_cycles());
    let srv = start(&db, Opts::default()).await;
    let (status, j) = srv.json("/api/live?range=live").await;
    assert_eq!(status, 200, "{j}");

    let h = &j["history"];
    let ts = h["timestamps"].as_array().expect("timestamps");
    assert_eq!(ts.len(), 31);
    let start = NOW / 10 * 10 - 300;
    for (i, t) in ts.iter().enumerate() {
        assert_eq!(t.as_i64(), Some(start + 10 * i as i64));
    }
    assert_eq!(h["times"][30], "12:00:00");
    assert_eq!(h["times"].as_array().map(Vec::len), Some(31));
    // Cycles fall in buckets 24, 25, 26, 29, 30; 27 and 28 are a gap.
    let cpu = &h["system"]["cpu"];
    assert!(nulls(cpu, 24));
    assert_eq!(
        cpu.as_array().expect("cpu")[24..].to_vec(),
        serde_json::json!([10.0, 20.0, 30.0, null, null, 40.0, 50.0])
            .as_array()
            .expect("literal")
            .clone()
    );
    assert_eq!(h["ping"][29], Value::Null, "offline cycle has no ping");
    assert_eq!(h["ping"][30], 50.0);
    assert_eq!(h["ping_jitter"][24], 0.0);
    assert_eq!(h["cycle_duration"][26], 300.0);
    assert_eq!(h["services"]["api"][29], 40.0);
    assert_eq!(h["services"]["api"][30], 100.0);
    assert_eq!(h["services"]["api"][27], Value::Null);
    assert_eq!(h["services_jitter"]["api"][30], 0.0);

    assert_eq!(j["system"]["cpu"], 50.0);
    assert_eq!(j["system"]["containers"], "7 Containers");
    assert_eq!(j["system"]["uptime"], "14d 2h 30m 15s");

    let m = &j["monitor"];
    assert_eq!(m["worker_status"], 200);
    assert_eq!(m["uptime"]["live"], 60.0);
    assert_eq!(
        m["distribution"],
        serde_json::json!([
            {"value": 1, "name": "TIMEOUT"},
            {"value": 3, "name": "200"},
            {"value": 1, "name": "220"}
        ])
    );
    assert_eq!(
        m["stats"],
        serde_json::json!({"max": 500.0, "avg": 300.0, "min": 100.0, "jitter": 400.0, "samples": 5})
    );

    let n = &j["network"];
    assert_eq!(n["internet_status"], true);
    assert_eq!(n["uptime"], 80.0);
    assert_eq!(
        n["uptime_counts"],
        serde_json::json!({"success": 4, "failure": 1})
    );
    assert_eq!(
        n["stats"],
        serde_json::json!({"max": 50.0, "avg": 27.5, "min": 10.0, "jitter": 40.0, "samples": 4})
    );

    let names: Vec<&str> = j["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["api", "Beta", "alpha-db", "cache"]);
    let api = &j["services"][0];
    assert_eq!(api["service_type"], "http");
    assert_eq!(api["status"], "error");
    assert_eq!(api["status_code"], 500);
    assert_eq!(api["latency"], 100.0);
    assert_eq!(api["error"], "Server Error (5xx)");
    let st = &api["stats"];
    assert_eq!(st["uptime"], 80.0);
    assert_eq!(st["success"], 4);
    assert_eq!(st["failure"], 1);
    assert_eq!(
        st["distribution"],
        serde_json::json!({"healthy": 4, "error": 1})
    );
    assert_eq!(
        (
            st["max"].clone(),
            st["avg"].clone(),
            st["min"].clone(),
            st["jitter"].clone()
        ),
        (100.0.into(), 40.0.into(), 10.0.into(), 90.0.into())
    );
    // Nearest rank over [10, 20, 30, 40, 100]: p50 = 30, p95 = p99 = 100 (histogram, ±1 %).
    let close = |v: &Value, want: f64| {
        let got = v.as_f64().expect("number");
        assert!((got - want).abs() <= want * 0.01, "{got} vs {want}");
    };
    close(&st["p50"], 30.0);
    close(&st["p95"], 100.0);
    close(&st["p99"], 100.0);
    assert_eq!(j["services"][1]["error"], Value::Null);
    assert_eq!(j["services"][2]["service_type"], "docker");
    assert_eq!(j["services"][2]["error"], "Request Timeout");
    assert_eq!(
        j["services"][3]["stats"]["distribution"],
        serde_json::json!({"healthy": 4, "down": 1})
    );
}

#[tokio::test]
async fn every_range_has_aligned_buckets_and_snapshots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("m.db");
    write_with_writer(&db, &tiny_cycles());
    let srv = start(&db, Opts::default()).await;
    for range in RANGES {
        let (status, j) = srv.json(&format!("/api/live?range={range}")).await;
        assert_eq!(status, 200, "{range}: {j}");
        let secs = hb_dashboard::range_seconds(range).expect("range");
        let width = secs / 30;
        let ts = j["history"]["timestamps"].as_array().expect("timestamps");
        assert_eq!(ts.len(), 31, "{range}");
        let last = ts[30].as_i64().expect("t");
        assert_eq!(last % width, 0, "{range} aligned");
        assert!(
            last <= NOW && NOW < last + width,
            "{range} last bucket holds now"
        );
        for w in ts.windows(2) {
            assert_eq!(w[1].as_i64().expect("t") - w[0].as_i64().expect("t"), width);
        }
        // All five cycles are inside every range: the totals are the same everywhere.
        assert_eq!(j["network"]["uptime_counts"]["success"], 4, "{range}");
        assert_eq!(j["services"][0]["stats"]["success"], 4, "{range}");
        assert_eq!(j["monitor"]["uptime"][range], 60.0, "{range}");
        insta::assert_json_snapshot!(format!("live_{range}"), j, {
            ".last_updated" => "[time]",
            ".history.times[]" => "[time]",
            ".history.timestamps[]" => "[time]",
        });
    }
    // 1h: two-minute buckets; cycles at 11:59:00..11:59:50 in bucket 29, 12:00:01 in 30.
    let (_, j) = srv.json("/api/live?range=1h").await;
    assert_eq!(j["history"]["system"]["cpu"][29], 25.0);
    assert_eq!(j["history"]["system"]["cpu"][30], 50.0);
    assert!(nulls(&j["history"]["system"]["cpu"], 29));
    assert_eq!(j["history"]["times"][30], "12:00");
    let (_, j) = srv.json("/api/live").await;
    assert!(
        j["monitor"]["uptime"]["1h"].is_number(),
        "default range is 1h"
    );
}

#[tokio::test]
async fn masked_errors_never_leak_the_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("m.db");
    write_with_writer(&db, &tiny_cycles());
    let srv = start(&db, Opts::default()).await;
    for range in RANGES {
        let (status, body) = srv.get(&format!("/api/live?range={range}")).await;
        assert_eq!(status, 200);
        assert!(!body.contains(SECRET), "{range} leaks: {body}");
    }
    let (_, body) = srv.get("/metrics").await;
    assert!(!body.contains(SECRET));
    // Unmasked (private deployments) shows the stored reason as it is.
    let raw = start(
        &db,
        Opts {
            mask: false,
            ..Opts::default()
        },
    )
    .await;
    let (_, j) = raw.json("/api/live?range=live").await;
    assert_eq!(
        j["services"][0]["error"],
        format!("HTTP 500 token={SECRET}")
    );
}

#[tokio::test]
async fn bad_range_missing_data_and_missing_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("later.db");
    let srv = start(&db, Opts::default()).await;

    let (status, j) = srv.json("/api/live?range=live").await;
    assert_eq!(status, 503, "{j}");
    assert_eq!(j["detail"], "Database not ready");
    let (status, _) = srv.get("/metrics").await;
    assert_eq!(status, 503);
    let (status, j) = srv.json("/health").await;
    assert_eq!(status, 200);
    assert_eq!(j["status"], "ok");
    assert_eq!(j["database"], "unavailable");

    // An empty file is a database without tables: still 503.
    std::fs::write(&db, b"").expect("touch");
    let (status, j) = srv.json("/api/live").await;
    assert_eq!(status, 503, "{j}");

    // The agent creates it: the next request finds the tables, but no cycle yet.
    std::fs::remove_file(&db).expect("rm");
    let mut w = hb_store_sqlite::Writer::open(&db).expect("writer");
    let (status, j) = srv.json("/api/live?range=1h").await;
    assert_eq!(status, 404, "{j}");
    assert_eq!(
        j,
        serde_json::json!({"detail": "No metrics found in database"})
    );

    let (status, j) = srv.json("/api/live?range=2h").await;
    assert_eq!(status, 400);
    assert_eq!(
        j["valid"],
        serde_json::json!([
            "live", "1h", "3h", "6h", "12h", "24h", "7d", "30d", "90d", "1y"
        ])
    );

    w.record_cycle(&tiny_cycles()[0], &[]).expect("record");
    let (status, _) = srv.json("/api/live?range=1h").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn alerts_newest_first_with_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("m.db");
    let mut w = hb_store_sqlite::Writer::open(&db).expect("writer");
    let cycles = tiny_cycles();
    for (i, c) in cycles.iter().enumerate() {
        let alert = AlertRecord {
            uid: format!("uid-{i}"),
            created_at: c.timestamp.clone(),
            item: "api".into(),
            old_status: Some("healthy".into()),
            new_status: ServiceStatus::Error.as_str().into(),
            title: format!("alert {i}"),
            message: "m".into(),
        };
        w.record_cycle(c, &[alert]).expect("record");
    }
    let srv = start(&db, Opts::default()).await;
    let (status, j) = srv.json("/api/alerts?limit=2").await;
    assert_eq!(status, 200, "{j}");
    let titles: Vec<&str> = j["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| a["title"].as_str().expect("title"))
        .collect();
    assert_eq!(titles, ["alert 4", "alert 3"]);
    let (_, j) = srv.json("/api/alerts").await;
    assert_eq!(j["alerts"].as_array().map(Vec::len), Some(5));
    for bad in ["0", "abc", "-1", "100000"] {
        let (status, _) = srv.get(&format!("/api/alerts?limit={bad}")).await;
        assert_eq!(status, 400, "limit={bad}");
    }
}

/// The outbox states, as the page needs them: waiting, delivered, delivered late after a
/// restart, failed, interrupted (still waiting), given up.
#[tokio::test]
async fn alerts_tell_given_up_and_late_from_waiting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("m.db");
    let mut w = hb_store_sqlite::Writer::open(&db).expect("writer");
    let cycles = tiny_cycles();
    let uids = [
        "pending",
        "delivered",
        "failed",
        "interrupted",
        "late",
        "old",
    ];
    let alerts: Vec<AlertRecord> = uids
        .iter()
        .map(|uid| AlertRecord {
            uid: (*uid).into(),
            created_at: cycles[0].timestamp.clone(),
            item: "api".into(),
            old_status: Some("healthy".into()),
            new_status: "error".into(),
            title: (*uid).into(),
            message: "m".into(),
        })
        .collect();
    w.record_cycle(&cycles[0], &alerts).expect("record");
    let result = |uid: &str, delivered: bool, interrupted: bool| hb_core::AlertDelivery {
        uid: uid.into(),
        attempts: 1,
        delivered_at: delivered.then(|| cycles[0].timestamp.clone()),
        last_error: (!delivered).then(|| "timeout".into()),
        interrupted,
    };
    w.record_delivery(&result("delivered", true, false))
        .expect("d");
    w.record_delivery(&result("failed", false, false))
        .expect("f");
    // A restart: "old" is past the bound, the others still pending are sent late.
    w.record_delivery(&result("interrupted", false, true))
        .expect("i");
    let conn = rusqlite::Connection::open(&db).expect("open");
    conn.execute("UPDATE alerts SET created_ms = 0 WHERE uid = 'old'", [])
        .expect("age it");
    let outbox = w
        .claim_outbox(
            cycles[0].timestamp_ms,
            "restart",
            3_600_000,
            "given up: too old",
        )
        .expect("outbox");
    assert_eq!(outbox.given_up, 1);
    w.record_delivery(&result("late", true, false)).expect("l");

    let srv = start(&db, Opts::default()).await;
    let (status, j) = srv.json("/api/alerts").await;
    assert_eq!(status, 200, "{j}");
    let by_title = |t: &str| {
        j["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .find(|a| a["title"] == t)
            .cloned()
            .expect("alert")
    };
    let state = |t: &str| {
        let a = by_title(t);
        (
            a["delivery_state"].as_str().expect("state").to_owned(),
            a["redelivered_at"].as_str().is_some(),
        )
    };
    assert_eq!(state("delivered"), ("delivered".into(), false));
    assert_eq!(state("failed"), ("failed".into(), false));
    assert_eq!(state("late"), ("delivered".into(), true));
    assert_eq!(state("pending"), ("pending".into(), true));
    assert_eq!(state("interrupted"), ("pending".into(), true));
    assert_eq!(state("old"), ("given_up".into(), false));
    assert_eq!(by_title("old")["last_error"], "given up: too old");
}

/// A deterministic month of cycles every 10 minutes (with a day-long gap), three services.
fn month_cycles() -> Vec<CycleRecord> {
    let mut seed: u64 = 42;
    let mut rnd = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let end = NOW * 1000;
    let step = 600_000;
    let count = 32 * 144;
    let gap = ((T0 - 9 * 86_400) * 1000)..((T0 - 8 * 86_400) * 1000);
    let mut out = Vec::new();
    for n in 0..count {
        let ts = end - (count - n) * step + 7_000;
        if gap.contains(&ts) {
            continue;
        }
        let mut services = Vec::new();
        for (name, url) in [
            ("web", "http://web/"),
            ("Api", "http://api/"),
            ("db", "docker:db"),
        ] {
            let r = rnd();
            let lat = 10.0 + rnd() * 90.0;
            let o = if r < 0.05 {
                CheckOutcome::timeout()
            } else if r < 0.1 {
                CheckOutcome::from_http_status(503, lat)
            } else {
                CheckOutcome::healthy(Some(lat))
            };
            services.push(svc(name, url, o));
        }
        let online = rnd() > 0.1;
        let w = rnd();
        out.push(cycle(
            n as usize,
            ts,
            rnd() * 100.0,
            online.then(|| 5.0 + rnd() * 40.0),
            if w < 0.05 {
                None
            } else if w < 0.1 {
                Some(500)
            } else {
                Some(200)
            },
            100 + (rnd() * 900.0) as i64,
            services,
        ));
    }
    out
}

fn without_last_updated(mut j: Value) -> Value {
    if let Some(o) = j.as_object_mut() {
        o.remove("last_updated");
    }
    j
}

#[tokio::test]
async fn rollups_answer_exactly_like_raw_rows_on_every_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rolled = dir.path().join("rolled.db");
    let legacy = dir.path().join("legacy.db");
    let mixed = dir.path().join("mixed.db");
    let cycles = month_cycles();
    {
        let mut w = hb_store_sqlite::Writer::open(&rolled).expect("writer");
        w.record_cycles(&cycles).expect("record");
        let mut w = hb_store_sqlite::Writer::open(&mixed).expect("writer");
        w.record_cycles(&cycles).expect("record");
    }
    // Half the rows at -05:00 (the original's Lima default), half in UTC.
    write_legacy(&legacy, &cycles, |i| if i % 2 == 0 { -5 } else { 0 });
    // As if migration 3 had run 12 days ago: rollups only from then on.
    let cut_s = (NOW - 12 * 86_400 + 1_234) / 60 * 60;
    {
        let conn = rusqlite::Connection::open(&mixed).expect("open");
        conn.execute(
            "UPDATE rollup_meta SET value = ?1 WHERE key = 'covered_from_ms'",
            [cut_s * 1000 - 30_000],
        )
        .expect("meta");
        conn.execute("DELETE FROM rollup_cycles WHERE start_s < ?1", [cut_s - 60])
            .expect("delete");
        conn.execute(
            "DELETE FROM rollup_services WHERE start_s < ?1",
            [cut_s - 60],
        )
        .expect("delete");
    }
    let a = start(&rolled, Opts::default()).await;
    let b = start(&legacy, Opts::default()).await;
    let c = start(&mixed, Opts::default()).await;
    for (range, rolled_src, mixed_src) in [
        ("live", "raw", "raw"),
        ("1h", "rollup", "rollup"),
        ("3h", "rollup", "rollup"),
        ("6h", "rollup", "rollup"),
        ("12h", "rollup", "rollup"),
        ("24h", "rollup", "rollup"),
        ("7d", "rollup", "rollup"),
        ("30d", "rollup", "mixed"),
        ("90d", "rollup", "mixed"),
        ("1y", "rollup", "mixed"),
    ] {
        let path = format!("/api/live?range={range}");
        assert_eq!(a.source(&path).await, rolled_src, "{range}");
        assert_eq!(b.source(&path).await, "raw", "{range}");
        assert_eq!(c.source(&path).await, mixed_src, "{range}");
        let (sa, ja) = a.json(&path).await;
        let (sb, jb) = b.json(&path).await;
        let (sc, jc) = c.json(&path).await;
        assert_eq!((sa, sb, sc), (200, 200, 200), "{range}");
        let ja = without_last_updated(ja);
        assert_eq!(ja, without_last_updated(jb), "{range}: rollups vs raw rows");
        assert_eq!(ja, without_last_updated(jc), "{range}: mixed vs rollups");
    }
    // The day-long gap shows as empty buckets in 30d (one-day buckets).
    let (_, j) = a.json("/api/live?range=30d").await;
    let cpu = j["history"]["system"]["cpu"]
        .as_array()
        .expect("cpu")
        .clone();
    assert_eq!(cpu.iter().filter(|v| v.is_null()).count(), 1, "{cpu:?}");

    // The range totals agree with an oracle over the raw cycles.
    let (_, j) = a.json("/api/live?range=7d").await;
    let first = j["history"]["timestamps"][0].as_i64().expect("t") * 1000;
    let inside: Vec<&CycleRecord> = cycles.iter().filter(|c| c.timestamp_ms >= first).collect();
    let web: Vec<&ServiceResult> = inside
        .iter()
        .flat_map(|c| c.services.iter().filter(|s| s.name == "web"))
        .collect();
    let healthy = web
        .iter()
        .filter(|s| s.outcome.status == ServiceStatus::Healthy)
        .count();
    let st = &j["services"][1]["stats"];
    assert_eq!(j["services"][1]["name"], "web");
    assert_eq!(st["success"], healthy);
    assert_eq!(st["failure"], web.len() - healthy);
    let mut lat: Vec<f64> = web.iter().filter_map(|s| s.outcome.latency_ms).collect();
    lat.sort_by(f64::total_cmp);
    let rank = |p: f64| lat[((p / 100.0 * lat.len() as f64).ceil() as usize).max(1) - 1];
    for (key, p) in [("p50", 50.0), ("p95", 95.0), ("p99", 99.0)] {
        let got = st[key].as_f64().expect("pct");
        let want = rank(p);
        assert!((got - want).abs() <= want * 0.011, "{key}: {got} vs {want}");
    }
    let max = lat.last().copied().expect("max");
    assert_eq!(st["max"], (max * 100.0).round() / 100.0);
    let ok = inside
        .iter()
        .filter(|c| c.worker_status == Some(200))
        .count();
    let want = (ok as f64 * 100.0 / inside.len() as f64 * 100.0).round() / 100.0;
    assert_eq!(j["monitor"]["uptime"]["7d"], want);
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("m.db");
    write_with_writer(&db, &tiny_cycles());
    let srv = start(&db, Opts::default()).await;
    let (status, body) = srv.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("heartbeat_service_up{service=\"api\"} 0"),
        "{body}"
    );
    assert!(body.contains("heartbeat_service_up{service=\"Beta\"} 1"));
    assert!(body.contains("heartbeat_service_status{service=\"alpha-db\",status=\"timeout\"} 1"));
    assert!(body.contains("heartbeat_service_uptime_ratio{service=\"api\"} 0.8"));
    assert!(body.contains("heartbeat_internet_up 1"));
    assert!(body.contains("heartbeat_worker_status_code 200"));
    assert!(body.contains("heartbeat_last_cycle_age_seconds 4"));
    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, &body).expect("write");
    let script = "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as p\n\
                  fams = list(p(open(sys.argv[1]).read()))\n\
                  print(len(fams), sum(len(f.samples) for f in fams))";
    let out = match std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&file)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            require(false, &format!("python3 not runnable ({e})"));
            return;
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("No module named 'prometheus_client'") {
        require(
            false,
            "the Python prometheus_client parser is not installed (pip install prometheus_client)",
        );
        return;
    }
    assert!(out.status.success(), "parser failed: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // 9 families; 4 services x (up, 5 statuses, uptime) + 3 latencies + 5 single samples.
    assert_eq!(stdout.trim(), "9 36", "{body}");
}

#[tokio::test]
async fn cors_only_for_configured_origins_and_get() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("m.db");
    write_with_writer(&db, &tiny_cycles());
    let srv = start(
        &db,
        Opts {
            cors: vec!["http://allowed.example".into()],
            ..Opts::default()
        },
    )
    .await;
    let url = format!("{}/api/live?range=live", srv.base);
    let r = srv
        .client
        .get(&url)
        .header("Origin", "http://allowed.example")
        .send()
        .await
        .expect("get");
    assert_eq!(
        r.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().ok()),
        Some(Some("http://allowed.example"))
    );
    let r = srv
        .client
        .get(&url)
        .header("Origin", "http://evil.example")
        .send()
        .await
        .expect("get");
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = srv
        .client
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", "http://allowed.example")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .expect("preflight");
    let methods = r
        .headers()
        .get("access-control-allow-methods")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        methods.contains("GET") && !methods.contains("POST"),
        "{methods}"
    );
    let r = srv.client.post(&url).send().await.expect("post");
    assert_eq!(r.status().as_u16(), 405);
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[tokio::test]
async fn read_only_directory_while_the_agent_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data: PathBuf = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    let db = data.join("m.db");
    let cycles = tiny_cycles();
    let mut writer = hb_store_sqlite::Writer::open(&db).expect("writer");
    writer.record_cycles(&cycles[..4]).expect("record");
    chmod(&data, 0o555);
    let srv = start(&db, Opts::default()).await;
    let (status, j) = srv.json("/api/live?range=live").await;
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["network"]["uptime_counts"]["failure"], 1);

    // The agent keeps writing; the dashboard sees the new cycle.
    writer.record_cycle(&cycles[4], &[]).expect("record");
    let (_, j) = srv.json("/api/live?range=live").await;
    assert_eq!(j["system"]["cpu"], 50.0);

    // The dashboard holds no write lock: another connection gets an exclusive transaction
    // while the dashboard keeps answering.
    let other = rusqlite::Connection::open(&db).expect("open");
    other
        .busy_timeout(std::time::Duration::ZERO)
        .expect("timeout");
    other
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("exclusive lock while serving");
    let (status, _) = srv.json("/api/live?range=1h").await;
    assert_eq!(status, 200);
    other.execute_batch("COMMIT").expect("commit");

    // The agent stops: history stays readable.
    drop(writer);
    drop(other);
    let (status, _) = srv.json("/api/live?range=24h").await;
    assert_eq!(status, 200);
    chmod(&data, 0o755);
    let (status, _) = srv.json("/health").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn other_point_counts_and_zones_keep_rollups_and_raw_rows_equal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rolled = dir.path().join("rolled.db");
    let legacy = dir.path().join("legacy.db");
    let cycles = month_cycles();
    hb_store_sqlite::Writer::open(&rolled)
        .expect("writer")
        .record_cycles(&cycles)
        .expect("record");
    write_legacy(&legacy, &cycles, |i| if i % 3 == 0 { 9 } else { -5 });
    // 12 points: whole-minute widths (rollups); 7 points: 3600/7 s is not (raw rows).
    for (points, source_1h) in [(12, "rollup"), (7, "raw")] {
        let lima = jiff::tz::TimeZone::get("America/Lima").expect("bundled tz");
        let opts = || Opts {
            points,
            tz: lima.clone(),
            ..Opts::default()
        };
        let a = start(&rolled, opts()).await;
        let b = start(&legacy, opts()).await;
        assert_eq!(a.source("/api/live?range=1h").await, source_1h, "{points}");
        for range in RANGES {
            let path = format!("/api/live?range={range}");
            let (sa, ja) = a.json(&path).await;
            let (_, jb) = b.json(&path).await;
            assert_eq!(sa, 200);
            let n = ja["history"]["timestamps"].as_array().map(Vec::len);
            assert_eq!(n, Some(points as usize + 1), "{range}");
            assert_eq!(
                without_last_updated(ja),
                without_last_updated(jb),
                "{points} {range}"
            );
        }
        // Labels in the configured zone: NOW is 12:00:05 UTC, 07:00:05 in Lima.
        let (_, j) = a.json("/api/live?range=live").await;
        let last = j["history"]["times"]
            .as_array()
            .and_then(|t| t.last().cloned());
        let width = 300 / i64::from(points);
        let last_start = NOW / width * width;
        assert_eq!(j["history"]["timestamps"][points as usize], last_start);
        // 12:00:05 UTC is 07:00:05 in Lima (-05:00).
        let want = jiff::Timestamp::from_second(last_start - 5 * 3600)
            .expect("ts")
            .strftime("%H:%M:%S")
            .to_string();
        assert!(
            want.starts_with("06:59") || want.starts_with("07:00"),
            "{want}"
        );
        assert_eq!(last, Some(Value::from(want)), "{points}");
    }
}

/// Unmounts on drop, so a failing test leaves no mount behind.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("--lazy")
            .arg(&self.0)
            .status();
    }
}

fn mount_read_only(src: &Path, dst: &Path) -> Option<Mount> {
    let ok = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new("mount")
            .args(args)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ok(&["--bind".as_ref(), src.as_os_str(), dst.as_os_str()]) {
        return None;
    }
    let m = Mount(dst.to_path_buf());
    ok(&["-o".as_ref(), "remount,bind,ro".as_ref(), dst.as_os_str()]).then_some(m)
}

#[tokio::test]
async fn original_database_on_a_read_only_mount_without_writer_then_with_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("rw");
    let ro = dir.path().join("ro");
    std::fs::create_dir(&src).expect("mkdir");
    std::fs::create_dir(&ro).expect("mkdir");
    let cycles = tiny_cycles();
    // The original tool's WAL database, closed cleanly: no -wal/-shm files are left.
    write_legacy(&src.join("m.db"), &cycles[..4], |_| -5);
    assert!(!src.join("m.db-shm").exists());
    let Some(_mount) = mount_read_only(&src, &ro) else {
        require(
            false,
            "cannot make a read-only bind mount here (needs root)",
        );
        return;
    };
    assert!(
        std::fs::write(ro.join("probe"), b"x").is_err(),
        "mount is read-only"
    );

    let srv = start(&ro.join("m.db"), Opts::default()).await;
    let (status, j) = srv.json("/api/live?range=live").await;
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["system"]["cpu"], 40.0);

    // An agent starts on the writable side: the reader must leave immutable mode and see
    // the new cycle through the WAL.
    let mut w = hb_store_sqlite::Writer::open(&src.join("m.db")).expect("writer");
    w.record_cycle(&cycles[4], &[]).expect("record");
    assert!(ro.join("m.db-wal").exists());
    let (status, j) = srv.json("/api/live?range=live").await;
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["system"]["cpu"], 50.0, "new cycle visible");
    assert_eq!(j["network"]["uptime_counts"]["failure"], 1);
    drop(w);
}

/// `tiny_cycles` plus `old-cache`, checked in the first three cycles only (taken out of the
/// configuration since).
fn cycles_with_a_removed_service() -> Vec<CycleRecord> {
    let mut cycles = tiny_cycles();
    for (i, c) in cycles.iter_mut().enumerate().take(3) {
        let latency = [7.0, 9.0, 11.0][i];
        c.services.push(svc(
            "old-cache",
            "http://old-cache.local/",
            CheckOutcome::healthy(Some(latency)),
        ));
    }
    cycles
}

fn service_names(j: &Value) -> Vec<String> {
    j["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| s["name"].as_str().expect("name").to_owned())
        .collect()
}

fn series_keys(j: &Value, key: &str) -> Vec<String> {
    j["history"][key]
        .as_object()
        .expect("series")
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn history_keeps_services_that_are_no_longer_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rolled = dir.path().join("rolled.db");
    let legacy = dir.path().join("legacy.db");
    let cycles = cycles_with_a_removed_service();
    write_with_writer(&rolled, &cycles);
    write_legacy(&legacy, &cycles, |_| -5);
    for db in [&rolled, &legacy] {
        let srv = start(db, Opts::default()).await;
        for range in RANGES {
            let (status, j) = srv.json(&format!("/api/live?range={range}")).await;
            assert_eq!(status, 200, "{range}: {j}");
            // The services list is the newest cycle's; the history has every service with
            // checks in the range, the newest cycle's first, in the same order.
            assert_eq!(
                service_names(&j),
                ["api", "Beta", "alpha-db", "cache"],
                "{range}"
            );
            for key in ["services", "services_jitter"] {
                assert_eq!(
                    series_keys(&j, key),
                    ["api", "Beta", "alpha-db", "cache", "old-cache"],
                    "{range} {key}"
                );
                let series = j["history"][key]["old-cache"].as_array().expect("series");
                assert_eq!(series.len(), 31, "{range} {key}");
            }
        }
        // Live: 10-second buckets; old-cache was checked in buckets 24, 25 and 26.
        let (_, j) = srv.json("/api/live?range=live").await;
        let h = &j["history"];
        assert!(nulls(&h["services"]["old-cache"], 24));
        assert_eq!(
            h["services"]["old-cache"].as_array().expect("series")[24..],
            serde_json::json!([7.0, 9.0, 11.0, null, null, null, null])
                .as_array()
                .expect("literal")[..]
        );
        assert_eq!(h["services_jitter"]["old-cache"][25], 0.0);
        assert_eq!(h["services_jitter"]["old-cache"][30], Value::Null);
        // 1h: two-minute buckets; all three checks in bucket 29.
        let (_, j) = srv.json("/api/live?range=1h").await;
        assert_eq!(j["history"]["services"]["old-cache"][29], 9.0);
        assert_eq!(j["history"]["services_jitter"]["old-cache"][29], 4.0);
    }
}

#[tokio::test]
async fn long_ranges_from_rollups_keep_removed_services_until_they_age_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rolled = dir.path().join("rolled.db");
    let legacy = dir.path().join("legacy.db");
    let mixed = dir.path().join("mixed.db");
    // `Retired` is checked every cycle until it is removed 5 hours before NOW.
    let removed_ms = (NOW - 5 * 3600) * 1000;
    let mut cycles = month_cycles();
    for c in cycles.iter_mut().filter(|c| c.timestamp_ms < removed_ms) {
        let latency = 20.0 + (c.timestamp_ms / 600_000 % 7) as f64;
        c.services.push(svc(
            "Retired",
            "http://retired/",
            CheckOutcome::healthy(Some(latency)),
        ));
    }
    let last_check_ms = cycles
        .iter()
        .filter(|c| c.services.iter().any(|s| s.name == "Retired"))
        .map(|c| c.timestamp_ms)
        .max()
        .expect("Retired was checked");
    for db in [&rolled, &mixed] {
        hb_store_sqlite::Writer::open(db)
            .expect("writer")
            .record_cycles(&cycles)
            .expect("record");
    }
    write_legacy(&legacy, &cycles, |i| if i % 2 == 0 { -5 } else { 0 });
    // Rollups only from 12 days ago: 30d is answered partly from raw rows.
    let cut_s = (NOW - 12 * 86_400 + 1_234) / 60 * 60;
    {
        let conn = rusqlite::Connection::open(&mixed).expect("open");
        conn.execute(
            "UPDATE rollup_meta SET value = ?1 WHERE key = 'covered_from_ms'",
            [cut_s * 1000 - 30_000],
        )
        .expect("meta");
        for table in ["rollup_cycles", "rollup_services"] {
            conn.execute(
                &format!("DELETE FROM {table} WHERE start_s < ?1"),
                [cut_s - 60],
            )
            .expect("delete");
        }
    }
    let a = start(&rolled, Opts::default()).await;
    let b = start(&legacy, Opts::default()).await;
    let c = start(&mixed, Opts::default()).await;
    for range in RANGES {
        let path = format!("/api/live?range={range}");
        let (_, ja) = a.json(&path).await;
        let (_, jb) = b.json(&path).await;
        let (_, jc) = c.json(&path).await;
        assert_eq!(service_names(&ja), ["Api", "web", "db"], "{range}");
        let first_ms = ja["history"]["timestamps"][0].as_i64().expect("t") * 1000;
        let in_range = last_check_ms >= first_ms;
        for key in ["services", "services_jitter"] {
            let keys = series_keys(&ja, key);
            assert_eq!(
                keys.iter().any(|k| k == "Retired"),
                in_range,
                "{range} {key}: {keys:?}"
            );
        }
        if in_range {
            // One value in every bucket that holds one of its checks, null after it.
            let width_ms = ja["history"]["timestamps"][1].as_i64().expect("t") * 1000 - first_ms;
            let buckets_with_checks: std::collections::BTreeSet<i64> = cycles
                .iter()
                .filter(|c| c.timestamp_ms >= first_ms && c.timestamp_ms <= last_check_ms)
                .map(|c| (c.timestamp_ms - first_ms) / width_ms)
                .collect();
            let series = ja["history"]["services"]["Retired"]
                .as_array()
                .expect("series");
            let filled: std::collections::BTreeSet<i64> = series
                .iter()
                .enumerate()
                .filter(|(_, v)| !v.is_null())
                .map(|(i, _)| i as i64)
                .collect();
            assert_eq!(filled, buckets_with_checks, "{range}");
        }
        let ja = without_last_updated(ja);
        assert_eq!(ja, without_last_updated(jb), "{range}: rollups vs raw rows");
        assert_eq!(ja, without_last_updated(jc), "{range}: mixed vs rollups");
    }
    // Removed 5 hours ago: gone from live, 1h and 3h; still on the charts from 6h on.
    let (_, j) = a.json("/api/live?range=3h").await;
    assert!(j["history"]["services"].get("Retired").is_none());
    let (_, j) = a.json("/api/live?range=6h").await;
    assert!(j["history"]["services"].get("Retired").is_some());
    assert_eq!(a.source("/api/live?range=30d").await, "rollup");
    assert_eq!(c.source("/api/live?range=30d").await, "mixed");
}

use hb_testkit::require;

/// Phase 1 of the page work: the keys added beside the contract (freshness, per-bucket status
/// counts and latency min/max, the slow mark, sample counts), on the tiny five-cycle database.
#[tokio::test]
async fn added_keys_status_counts_min_max_freshness_and_slow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("m.db");
    write_with_writer(&db, &tiny_cycles());
    let slow_ms = hb_core::SlowThresholds {
        default_ms: Some(50.0),
        per_service: [("cache".to_owned(), None)].into_iter().collect(),
    };
    let srv = start(
        &db,
        Opts {
            slow_ms,
            ..Opts::default()
        },
    )
    .await;
    let (status, j) = srv.json("/api/live?range=live").await;
    assert_eq!(status, 200, "{j}");
    let h = &j["history"];
    // Cycles fall in buckets 24, 25, 26, 29, 30 (see live_range_exact_numbers).
    let counts = |name: &str, i: usize| h["services_status"][name][i].clone();
    assert_eq!(counts("api", 23), Value::Null, "empty bucket");
    assert_eq!(counts("api", 24), serde_json::json!({"healthy": 1}));
    assert_eq!(counts("api", 27), Value::Null, "gap");
    assert_eq!(counts("api", 30), serde_json::json!({"error": 1}));
    assert_eq!(counts("cache", 29), serde_json::json!({"down": 1}));
    assert_eq!(counts("alpha-db", 30), serde_json::json!({"timeout": 1}));
    for name in ["api", "Beta", "alpha-db", "cache"] {
        let series = h["services_status"][name].as_array().expect("series");
        assert_eq!(series.len(), 31, "{name}");
        let total: u64 = series
            .iter()
            .filter_map(Value::as_object)
            .flat_map(|o| o.values().filter_map(Value::as_u64))
            .sum();
        assert_eq!(total, 5, "{name}: one count per check");
    }
    assert_eq!(h["services_min"]["api"][24], 10.0);
    assert_eq!(h["services_max"]["api"][30], 100.0);
    assert_eq!(h["services_min"]["alpha-db"][30], Value::Null, "no latency");
    assert_eq!(h["ping_min"][24], 10.0);
    assert_eq!(h["ping_max"][30], 50.0);
    assert_eq!(h["ping_min"][29], Value::Null, "offline cycle");

    // The newest cycle is 4 s old; the cycles are about 10 s apart.
    assert_eq!(
        j["freshness"],
        serde_json::json!({
            "last_cycle_ms": (NOW / 10 * 10 + 1) * 1000,
            "age_seconds": 4.0,
            "interval_seconds": 10.0,
            "stale_after_seconds": 30.0,
            "stale": false,
        })
    );

    let by_name = |name: &str| {
        j["services"]
            .as_array()
            .expect("services")
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .expect("service")
    };
    let api = by_name("api");
    assert_eq!(
        (api["slow_ms"].clone(), api["slow"].clone()),
        (50.0.into(), true.into())
    );
    assert_eq!(api["status"], "error", "slow never changes the status");
    assert_eq!(by_name("Beta")["slow"], false);
    assert_eq!(by_name("alpha-db")["slow"], false, "no answer is not slow");
    assert_eq!(by_name("cache")["slow_ms"], Value::Null, "off");
    assert_eq!(api["stats"]["latency_samples"], 5);
    assert_eq!(by_name("alpha-db")["stats"]["latency_samples"], 4);

    // An hour later with no new cycle: stale, and the live window is empty.
    let later = start(
        &db,
        Opts {
            now_s: NOW + 3_600,
            ..Opts::default()
        },
    )
    .await;
    let (status, j) = later.json("/api/live?range=live").await;
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["freshness"]["stale"], true);
    assert_eq!(j["freshness"]["age_seconds"], 3_604.0);
    assert_eq!(j["services"][0]["stats"]["latency_samples"], 0);
    assert_eq!(
        j["services"][0]["stats"]["max"], 0.0,
        "the contract's 0 stays"
    );
    assert!(nulls(&j["history"]["services_status"]["api"], 31));
}

/// The interval comes from the data on the original tool's schema too (no `ts_ms`, mixed
/// offsets, so strings do not sort as instants).
#[tokio::test]
async fn freshness_on_the_original_schema_with_mixed_offsets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("legacy.db");
    let base = (NOW / 10 * 10) * 1000;
    let cycles: Vec<CycleRecord> = (0..8)
        .map(|i| {
            let ts = base - (7 - i as i64) * 60_000;
            cycle(
                i,
                ts,
                1.0,
                Some(1.0),
                Some(200),
                100,
                vec![svc("web", "http://web/", CheckOutcome::healthy(Some(1.0)))],
            )
        })
        .collect();
    write_legacy(&db, &cycles, |i| if i % 2 == 0 { -5 } else { 0 });
    let srv = start(&db, Opts::default()).await;
    let (status, j) = srv.json("/api/live?range=1h").await;
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["freshness"]["interval_seconds"], 60.0);
    assert_eq!(j["freshness"]["age_seconds"], 5.0);
    assert_eq!(j["freshness"]["stale_after_seconds"], 180.0);
    assert_eq!(j["freshness"]["stale"], false);
}

/// `/api/incidents`: a service bad since its first check is an ongoing incident (it never
/// alerted), an outage that ended has its length, reasons are masked, and a database without
/// the incidents table answers an empty list.
#[tokio::test]
async fn incidents_list_outages_in_the_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("m.db");
    let base_ms = (NOW - 600) * 1000;
    let cycles: Vec<_> = (0..60)
        .map(|i| {
            let api = if (20..25).contains(&i) {
                with_reason(
                    CheckOutcome::down("x"),
                    &format!("Connection refused by {SECRET}"),
                )
            } else {
                CheckOutcome::healthy(Some(5.0))
            };
            cycle(
                i,
                base_ms + i as i64 * 10_000,
                10.0,
                Some(3.0),
                Some(200),
                20,
                vec![
                    svc("api", "http://api.internal/health", api),
                    svc(
                        "db",
                        "docker:db",
                        CheckOutcome::down("Container state: exited"),
                    ),
                ],
            )
        })
        .collect();
    write_with_writer(&db, &cycles);
    let server = start(&db, Opts::default()).await;
    let (status, j) = server.json("/api/incidents?range=1h").await;
    assert_eq!(status, 200, "{j}");
    let list = j["incidents"].as_array().expect("list");
    assert_eq!(list.len(), 2, "{j}");
    let db_incident = &list[1];
    assert_eq!(list[0]["service"], "api", "newest start first: {j}");
    assert_eq!(db_incident["service"], "db");
    assert_eq!(db_incident["ongoing"], true);
    assert_eq!(db_incident["ended"], Value::Null);
    assert_eq!(db_incident["checks"], 60);
    assert_eq!(db_incident["started"], base_ms as f64 / 1000.0);
    let api = &list[0];
    assert_eq!(api["ongoing"], false);
    assert_eq!(api["duration_seconds"], 50.0);
    assert_eq!(api["duration"], "50 s");
    assert_eq!(api["statuses"], serde_json::json!({"down": 5}));
    assert!(!j.to_string().contains(SECRET), "reasons are masked: {j}");
    assert_eq!(api["last_reason"], "Service Unavailable");

    let (status, j) = server.json("/api/incidents?range=5m").await;
    assert_eq!(status, 400, "{j}");
    let (status, _) = server.json("/api/incidents?range=1h&limit=0").await;
    assert_eq!(status, 400);
    // Only what overlaps the range: the api outage ended before the `live` window began.
    let (_, j) = server.json("/api/incidents?range=live").await;
    assert_eq!(j["count"], 1, "{j}");

    // The original tool's schema has no incidents table.
    let legacy = dir.path().join("legacy.db");
    write_legacy(&legacy, &cycles, |_| 0);
    let old = start(&legacy, Opts::default()).await;
    let (status, j) = old.json("/api/incidents?range=24h").await;
    assert_eq!(
        (status, j["count"].clone()),
        (200, serde_json::json!(0)),
        "{j}"
    );
}

/// `/health` says how far the agent's backfill of an upgraded older database has got: not done
/// right after the upgrade, done (and every range from rollups) once the writer has caught up.
#[tokio::test]
async fn health_shows_the_backfill_of_an_upgraded_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("old.db");
    write_legacy(&db, &month_cycles(), |_| -5);
    let server = start(&db, Opts::default()).await;
    let (_, j) = server.json("/health").await;
    assert_eq!(
        j["backfill"],
        Value::Null,
        "not upgraded: no rollups, no backfill: {j}"
    );

    let mut writer = hb_store_sqlite::Writer::open(&db).expect("upgrade");
    let (_, j) = server.json("/health").await;
    assert_eq!(j["backfill"]["done"], false, "{j}");
    let now_ms = NOW * 1000;
    let mut steps = 0;
    while writer
        .maintain(now_ms, std::time::Duration::ZERO)
        .expect("maintain")
        .more
    {
        steps += 1;
        assert!(steps < 100_000, "the backfill ends");
    }
    let (_, j) = server.json("/health").await;
    assert_eq!(j["backfill"]["done"], true, "{j}");
    assert_eq!(j["backfill"]["remaining_cycles"], 0, "{j}");
    assert!(
        j["backfill"]["total_cycles"].as_u64().unwrap_or(0) > 0,
        "{j}"
    );
    assert_eq!(server.source("/api/live?range=30d").await, "rollup");
}

/// `tcp://` services (issue 16) report `service_type: "tcp"` and sit among the http ones by
/// name, before the containers; a refused connection masks like any other unanswered check.
#[tokio::test]
async fn tcp_services_are_typed_and_ordered_with_http_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("tcp.db");
    let ts_ms = (NOW / 10 * 10) * 1000;
    let services = vec![
        svc(
            "web",
            "http://127.0.0.1:9/",
            CheckOutcome::healthy(Some(3.0)),
        ),
        svc("db", "docker:postgres", CheckOutcome::healthy(None)),
        svc(
            "pg",
            "tcp://127.0.0.1:5432",
            CheckOutcome::down("Connection refused"),
        ),
        svc(
            "Amqp",
            "tcp://10.0.0.9:5672",
            CheckOutcome::healthy(Some(0.42)),
        ),
    ];
    write_with_writer(
        &db,
        &[cycle(1, ts_ms, 10.0, Some(5.0), Some(200), 20, services)],
    );
    let srv = start(&db, Opts::default()).await;
    let (status, j) = srv.json("/api/live?range=live").await;
    assert_eq!(status, 200, "{j}");
    assert_eq!(service_names(&j), ["Amqp", "pg", "web", "db"]);
    let types: Vec<&str> = j["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| s["service_type"].as_str().expect("type"))
        .collect();
    assert_eq!(types, ["tcp", "tcp", "http", "docker"]);
    assert_eq!(j["services"][0]["latency"], 0.42);
    assert_eq!(j["services"][1]["status"], "down");
    assert_eq!(j["services"][1]["error"], "Service Unavailable");
}

/// `MAINTENANCE_WINDOWS` on the page's data: the windows of the range and the next one, and
/// the cards of the services a window covers now.
#[tokio::test]
async fn maintenance_windows_mark_the_range_and_the_cards() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("m.db");
    write_with_writer(&db, &tiny_cycles());
    // NOW is 2025-11-25T12:00:05Z.
    let maintenance = hb_core::maintenance::MaintenanceSchedule::parse(
        "daily 03:00-04:00; 2025-11-25T11:58Z/2025-11-25T12:10Z @api",
        jiff::tz::TimeZone::UTC,
    )
    .expect("windows");
    let srv = start(
        &db,
        Opts {
            maintenance,
            ..Opts::default()
        },
    )
    .await;
    let (status, j) = srv.json("/api/live?range=24h").await;
    assert_eq!(status, 200, "{j}");
    let m = &j["maintenance"];
    assert_eq!(m["active"], true);
    let shown: Vec<(String, String, bool)> = m["windows"]
        .as_array()
        .expect("windows")
        .iter()
        .map(|w| {
            (
                w["window"].as_str().expect("text").to_owned(),
                w["start"].as_str().expect("start").to_owned(),
                w["active"].as_bool().expect("active"),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (
                "daily 03:00-04:00".to_owned(),
                "2025-11-25T03:00:00Z".to_owned(),
                false
            ),
            (
                "2025-11-25T11:58Z/2025-11-25T12:10Z @api".to_owned(),
                "2025-11-25T11:58:00Z".to_owned(),
                true
            ),
        ]
    );
    assert_eq!(m["windows"][1]["items"], serde_json::json!(["api"]));
    assert_eq!(m["windows"][0]["items"], serde_json::json!([]));
    assert_eq!(m["next"]["start"], "2025-11-26T03:00:00Z");
    let card = |name: &str| {
        j["services"]
            .as_array()
            .expect("services")
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("{name}"))["maintenance"]
            .clone()
    };
    assert_eq!(card("api"), true);
    assert_eq!(card("cache"), false);

    // Without windows the keys are there and say nothing is planned.
    let plain = start(&db, Opts::default()).await;
    let (_, j) = plain.json("/api/live?range=24h").await;
    assert_eq!(
        j["maintenance"],
        serde_json::json!({"active": false, "windows": [], "next": null})
    );
}
