//! How a cycle's checks are dispatched: `CHECKS_PER_TARGET` caps the checks in flight against
//! one server (grouped by the URL's host and port, also behind the DNS override), while
//! different servers are still checked concurrently. Against a real server that counts the
//! requests it is holding.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;

use crate::agent::{agent_cmd, db_in};

/// How long the server holds every request.
const HOLD: Duration = Duration::from_millis(200);

#[derive(Default)]
struct Gauges {
    /// Per `Host` header: requests held now, the most held at once.
    by_host: HashMap<String, (usize, usize)>,
    /// All hosts together: held now, the most held at once.
    all: (usize, usize),
}

fn raise(g: &mut (usize, usize)) {
    g.0 += 1;
    g.1 = g.1.max(g.0);
}

/// A server on 127.0.0.1 that holds each request for [`HOLD`] and records, per `Host`, the
/// most requests it held at once.
async fn counting_server() -> (u16, Arc<Mutex<Gauges>>) {
    let gauges = Arc::new(Mutex::new(Gauges::default()));
    async fn hold(State(g): State<Arc<Mutex<Gauges>>>, headers: HeaderMap) -> StatusCode {
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_owned();
        {
            let mut g = g.lock().expect("lock");
            raise(g.by_host.entry(host.clone()).or_default());
            raise(&mut g.all);
        }
        tokio::time::sleep(HOLD).await;
        let mut g = g.lock().expect("lock");
        g.by_host.get_mut(&host).expect("host").0 -= 1;
        g.all.0 -= 1;
        StatusCode::OK
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let app = Router::new()
        .fallback(any(hold))
        .with_state(Arc::clone(&gauges));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, gauges)
}

/// Runs one cycle of the real agent with `env` over `services`; returns the printed cycle.
async fn one_cycle(services: Vec<(String, String)>, env: &[(&str, &str)]) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_in(&dir);
    let named: Vec<(&str, String)> = services
        .iter()
        .map(|(n, u)| (n.as_str(), u.clone()))
        .collect();
    let mut cmd = agent_cmd(&db, "10", &named);
    cmd.args(["--once", "--json"])
        .env("SERVICE_TIMEOUT_SECONDS", "10")
        .env("PING_URL", "http://127.0.0.1:9/");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cycle JSON")
}

fn latencies(cycle: &serde_json::Value) -> Vec<f64> {
    let services = cycle["services"].as_array().expect("services");
    for s in services {
        assert_eq!(s["status"], "healthy", "{s}");
    }
    let mut l: Vec<f64> = services
        .iter()
        .map(|s| s["latency_ms"].as_f64().expect("latency"))
        .collect();
    l.sort_by(f64::total_cmp);
    l
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_per_target_caps_one_server_while_others_run_alongside() {
    let (a, ga) = counting_server().await;
    let (b, gb) = counting_server().await;
    let mut services = Vec::new();
    for i in 0..10 {
        services.push((format!("a{i}"), format!("http://127.0.0.1:{a}/s{i}")));
        services.push((format!("b{i}"), format!("http://127.0.0.1:{b}/s{i}")));
    }
    let cycle = one_cycle(services, &[("CHECKS_PER_TARGET", "3")]).await;

    let (most_a, most_b) = (
        ga.lock().expect("lock").all.1,
        gb.lock().expect("lock").all.1,
    );
    assert!((2..=3).contains(&most_a), "server a held {most_a} at once");
    assert!((2..=3).contains(&most_b), "server b held {most_b} at once");
    // Ten checks three at a time take four rounds; a check's latency is its own request, not
    // its wait for a turn (which would put the median at 2.5 rounds).
    let l = latencies(&cycle);
    let hold_ms = HOLD.as_secs_f64() * 1000.0;
    assert!(l[0] >= hold_ms, "{l:?}");
    assert!(
        l[l.len() / 2] < 2.0 * hold_ms,
        "waiting counted as latency: {l:?}"
    );
    let cycle_ms = cycle["cycle_duration_ms"].as_f64().expect("duration");
    assert!(
        cycle_ms >= 4.0 * hold_ms,
        "four rounds, cycle {cycle_ms} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_the_dns_override_checks_group_by_the_urls_host() {
    // One server reached through INTERNAL_DNS_OVERRIDE_IP for two names: like a reverse proxy,
    // it must see at most the cap per name, and both names at once.
    let (port, gauges) = counting_server().await;
    let mut services = Vec::new();
    for i in 0..5 {
        services.push((format!("x{i}"), format!("http://alpha.test:{port}/s{i}")));
        services.push((format!("y{i}"), format!("http://beta.test:{port}/s{i}")));
    }
    let cycle = one_cycle(
        services,
        &[
            ("CHECKS_PER_TARGET", "2"),
            ("INTERNAL_DNS_OVERRIDE_IP", "127.0.0.1"),
        ],
    )
    .await;
    latencies(&cycle);
    let g = gauges.lock().expect("lock");
    for name in ["alpha.test", "beta.test"] {
        let most = g.by_host[&format!("{name}:{port}")].1;
        assert!((1..=2).contains(&most), "{name}: {most} at once");
    }
    assert!(
        g.all.1 >= 3,
        "the two names were not checked side by side: {}",
        g.all.1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_checks_per_target_sends_every_check_at_once() {
    let (port, gauges) = counting_server().await;
    let services = (0..8)
        .map(|i| (format!("s{i}"), format!("http://127.0.0.1:{port}/s{i}")))
        .collect();
    let cycle = one_cycle(services, &[("CHECKS_PER_TARGET", "0")]).await;
    latencies(&cycle);
    let most = gauges.lock().expect("lock").all.1;
    assert!(most > 4, "only {most} at once with no per-target limit");
}
