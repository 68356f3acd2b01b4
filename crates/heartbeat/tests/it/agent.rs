//! The agent binary end to end: real targets that change behaviour, a real webhook sink and
//! heartbeat receiver, and the SQLite file it writes — including under SIGKILL and a lock held
//! by another process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::{AgentProcess, HANG, Server, count, heartbeat, open_db, wait_for};

pub(crate) fn db_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("data").join("metrics.db")
}

/// An agent command with a fast loop and no Docker engine, checking `services`.
pub(crate) fn agent_cmd(db: &Path, interval: &str, services: &[(&str, String)]) -> Command {
    let mut cmd = heartbeat();
    cmd.arg("agent")
        .env("SQLITE_DB_PATH", db)
        .env("LOOP_INTERVAL_SECONDS", interval)
        .env("SERVICE_TIMEOUT_SECONDS", "0.5")
        .env(
            "DOCKER_HOST",
            format!(
                "unix://{}/no-docker.sock",
                db.parent().map_or(Path::new("/"), |p| p).display()
            ),
        );
    for (name, url) in services {
        cmd.env(format!("SERVICE_URL_{name}"), url);
    }
    cmd
}

/// Grid slots (`ts_ms / interval`) of every cycle, in write order.
fn slots(db: &Path, interval_ms: i64) -> Vec<i64> {
    let conn = open_db(db);
    let mut stmt = conn
        .prepare("SELECT ts_ms FROM monitoring_cycles ORDER BY rowid")
        .expect("prepare");
    stmt.query_map([], |r| r.get::<_, i64>(0))
        .expect("query")
        .map(|ts| ts.expect("row") / interval_ms)
        .collect()
}

fn assert_consecutive(slots: &[i64]) {
    assert!(!slots.is_empty());
    for pair in slots.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "a tick was skipped or repeated: {slots:?}"
        );
    }
}

/// Every cycle row has exactly `per_cycle` service rows.
fn assert_whole_cycles(db: &Path, per_cycle: i64) {
    let bad = count(
        db,
        &format!(
            "SELECT count(*) FROM monitoring_cycles c WHERE \
             (SELECT count(*) FROM service_checks s WHERE s.cycle_id = c.id) != {per_cycle}"
        ),
    );
    assert_eq!(bad, 0, "cycles with missing service rows");
}

#[tokio::test(flavor = "multi_thread")]
async fn once_prints_json_and_persists_the_cycle() {
    let ok = Server::start(200).await;
    let broken = Server::start(500).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_in(&dir);
    let mut cmd = agent_cmd(
        &db,
        "10",
        &[
            ("ok", ok.url("/health")),
            ("broken", broken.url("/")),
            ("closed", "http://127.0.0.1:1/".to_owned()),
            ("creds", format!("http://user:pa55word@{}/x", ok.addr)),
        ],
    );
    cmd.args(["--once", "--json"])
        .env("PING_URL", ok.url("/ping"));
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("pa55word"), "credentials logged: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("pa55word"));
    let cycle: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    let by_name = |name: &str| {
        cycle["services"]
            .as_array()
            .expect("services")
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .expect("service present")
    };
    assert_eq!(by_name("ok")["status"], "healthy");
    assert_eq!(by_name("broken")["status"], "error");
    assert_eq!(by_name("broken")["status_code"], 500);
    assert_eq!(by_name("broken")["reason"], "HTTP 500");
    assert_eq!(by_name("closed")["status"], "down");
    assert_eq!(by_name("creds")["url"], format!("http://{}/x", ok.addr));
    assert_eq!(cycle["internet"]["online"], true);
    assert_eq!(cycle["container_count"], -1);

    let conn = open_db(&db);
    let (id, internet, containers): (String, bool, i64) = conn
        .query_row(
            "SELECT id, internet_status, container_count FROM monitoring_cycles",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("one cycle row");
    assert_eq!(id, cycle["id"].as_str().expect("id"));
    assert!(internet);
    assert_eq!(containers, -1);
    let (status, code, reason): (String, Option<i64>, Option<String>) = conn
        .query_row(
            "SELECT status, status_code, error_message FROM service_checks WHERE service_name='broken'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("row");
    assert_eq!(
        (status.as_str(), code, reason.as_deref()),
        ("error", Some(500), Some("HTTP 500"))
    );
    let stored_urls: String = conn
        .query_row(
            "SELECT group_concat(service_url) FROM service_checks",
            [],
            |r| r.get(0),
        )
        .expect("urls");
    assert!(
        !stored_urls.contains("pa55word"),
        "credentials stored: {stored_urls}"
    );
    assert_whole_cycles(&db, 4);
}

/// item, old status, new status, attempts, delivered at.
type AlertRow = (String, Option<String>, String, i64, Option<String>);

#[tokio::test(flavor = "multi_thread")]
async fn failure_and_recovery_alerts_reach_the_sink_and_the_database() {
    let api = Server::start(200).await;
    let ping = Server::start(204).await;
    let receiver = Server::start(200).await;
    let sink = Server::start(200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_in(&dir);
    let mut cmd = agent_cmd(&db, "1", &[("api", api.url("/health"))]);
    cmd.env("STATUS_CHANGE_THRESHOLD", "2")
        .env("PING_URL", ping.url("/"))
        .env("HEARTBEAT_URL", receiver.url("/api/heartbeat"))
        .env("SECRET_KEY", "sk_e2e_secret")
        .env("N8N_WEBHOOK_URL", sink.url("/webhook"));
    let agent = AgentProcess::spawn(cmd);

    wait_for("two cycles", Duration::from_secs(15), || {
        count(&db, "SELECT count(*) FROM monitoring_cycles") >= 2
    })
    .await;
    api.set_status(500);
    wait_for("the down alert", Duration::from_secs(15), || {
        !sink.posted_json().is_empty()
    })
    .await;
    api.set_status(200);
    wait_for("the recovery alert", Duration::from_secs(15), || {
        sink.posted_json().len() >= 2
    })
    .await;
    wait_for("deliveries recorded", Duration::from_secs(10), || {
        count(
            &db,
            "SELECT count(*) FROM alerts WHERE delivered_at IS NOT NULL",
        ) >= 2
    })
    .await;
    let (status, stderr) = tokio::task::spawn_blocking(move || agent.stop())
        .await
        .expect("join");
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("agent stopped"), "{stderr}");
    assert!(!stderr.contains("sk_e2e_secret"), "secret logged");

    let alerts = sink.posted_json();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    let keys: Vec<&String> = alerts[0].as_object().expect("object").keys().collect();
    assert_eq!(keys, ["title", "message"]);
    let first = alerts[0]["title"].as_str().expect("title");
    let second = alerts[1]["title"].as_str().expect("title");
    assert_eq!(first, "🔴 api returns errors");
    assert!(
        alerts[0]["message"]
            .as_str()
            .expect("message")
            .contains("HTTP 500")
    );
    assert!(
        second.contains("api") && second.contains("recovered"),
        "{second}"
    );

    let conn = open_db(&db);
    let rows: Vec<AlertRow> = conn
        .prepare(
            "SELECT item, old_status, new_status, attempts, delivered_at FROM alerts ORDER BY id",
        )
        .expect("prepare")
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_deref(), rows[0].2.as_str()),
        ("api", Some("healthy"), "error")
    );
    assert_eq!(
        (rows[1].0.as_str(), rows[1].1.as_deref(), rows[1].2.as_str()),
        ("api", Some("error"), "healthy")
    );
    assert!(rows.iter().all(|r| r.3 == 1 && r.4.is_some()), "{rows:?}");

    // The heartbeat: Bearer key, JSON body with the service's status; worker_status stored.
    let beats = receiver.received();
    assert!(!beats.is_empty());
    assert_eq!(
        beats[0]
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer sk_e2e_secret")
    );
    let body: serde_json::Value = serde_json::from_slice(&beats[0].body).expect("json");
    assert_eq!(body["services"]["api"]["status"], "healthy");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM monitoring_cycles WHERE worker_status != 200 OR worker_status IS NULL"
        ),
        0
    );
    assert!(
        count(
            &db,
            "SELECT count(*) FROM service_checks WHERE status='error' AND status_code=500"
        ) >= 2
    );
    assert_consecutive(&slots(&db, 1000));
    assert_whole_cycles(&db, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_webhook_gets_three_attempts_and_never_delays_a_cycle() {
    let api = Server::start(200).await;
    let ping = Server::start(200).await;
    let sink = Server::start(HANG).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_in(&dir);
    let mut cmd = agent_cmd(&db, "1", &[("api", api.url("/"))]);
    cmd.env("STATUS_CHANGE_THRESHOLD", "1")
        .env("PING_URL", ping.url("/"))
        .env("N8N_WEBHOOK_URL", sink.url("/hook"));
    let agent = AgentProcess::spawn(cmd);
    wait_for("a first cycle", Duration::from_secs(15), || {
        count(&db, "SELECT count(*) FROM monitoring_cycles") >= 1
    })
    .await;
    api.set_status(503);
    // 3 attempts of 5 s with 2 s pauses: the failed delivery is recorded after about 19 s.
    wait_for("the failed delivery", Duration::from_secs(40), || {
        count(&db, "SELECT count(*) FROM alerts WHERE attempts = 3 AND delivered_at IS NULL AND last_error IS NOT NULL") == 1
    })
    .await;
    let (status, stderr) = tokio::task::spawn_blocking(move || agent.stop())
        .await
        .expect("join");
    assert!(status.success(), "{stderr}");
    assert_eq!(sink.received().len(), 3, "exactly three attempts");
    let slots = slots(&db, 1000);
    assert!(slots.len() >= 18, "cycles kept running: {}", slots.len());
    assert_consecutive(&slots);
    let slowest = count(&db, "SELECT max(cycle_duration_ms) FROM monitoring_cycles");
    assert!(slowest < 1000, "a cycle took {slowest} ms");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_moments_leaves_whole_cycles_only() {
    let ok = Server::start(200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_in(&dir);
    let services: Vec<(String, String)> = (0..10)
        .map(|i| {
            (
                format!("s{i}"),
                if i % 3 == 0 {
                    "http://127.0.0.1:1/".to_owned()
                } else {
                    ok.url(&format!("/{i}"))
                },
            )
        })
        .collect();
    let refs: Vec<(&str, String)> = services
        .iter()
        .map(|(n, u)| (n.as_str(), u.clone()))
        .collect();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.subsec_nanos() as u64 | 1);
    for round in 0..12 {
        let mut cmd = agent_cmd(&db, "0.2", &refs);
        cmd.env("PING_URL", ok.url("/ping"));
        let agent = AgentProcess::spawn(cmd);
        // xorshift: a random moment between 150 and 900 ms.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(150 + seed % 750)).await;
        agent.signal("KILL");
        drop(agent);
        let conn = open_db(&db);
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("integrity_check");
        assert_eq!(check, "ok", "round {round}");
        assert_whole_cycles(&db, 10);
    }
    assert!(count(&db, "SELECT count(*) FROM monitoring_cycles") > 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lock_held_by_another_process_loses_no_cycle() {
    let ok = Server::start(200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_in(&dir);
    let mut cmd = agent_cmd(&db, "0.5", &[("a", ok.url("/a")), ("b", ok.url("/b"))]);
    cmd.env("PING_URL", ok.url("/ping"));
    let agent = AgentProcess::spawn(cmd);
    wait_for("two cycles", Duration::from_secs(15), || {
        count(&db, "SELECT count(*) FROM monitoring_cycles") >= 2
    })
    .await;
    let before = count(&db, "SELECT count(*) FROM monitoring_cycles");
    let locked_db = db.clone();
    // Another process's write lock, held for several cycles (here: another connection).
    tokio::task::spawn_blocking(move || {
        let conn = rusqlite::Connection::open(&locked_db).expect("open");
        conn.execute_batch("BEGIN EXCLUSIVE").expect("lock");
        std::thread::sleep(Duration::from_secs(4));
        conn.execute_batch("COMMIT").expect("unlock");
    })
    .await
    .expect("join");
    let during = count(&db, "SELECT count(*) FROM monitoring_cycles");
    assert!(
        during <= before + 1,
        "writes went through the lock: {before} -> {during}"
    );
    wait_for("the queued cycles", Duration::from_secs(15), || {
        count(&db, "SELECT count(*) FROM monitoring_cycles") >= before + 9
    })
    .await;
    let (status, stderr) = tokio::task::spawn_blocking(move || agent.stop())
        .await
        .expect("join");
    assert!(status.success(), "{stderr}");
    assert_consecutive(&slots(&db, 500));
    assert_whole_cycles(&db, 2);
}

/// `TZ=America/Lima` must work in a container without `/usr/share/zoneinfo`: the time-zone data
/// is built in. The test hides the system's zoneinfo in a private mount namespace.
#[tokio::test(flavor = "multi_thread")]
async fn lima_offsets_without_system_zoneinfo() {
    let ok = Server::start(200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_in(&dir);
    let bin = env!("CARGO_BIN_EXE_heartbeat");
    let cmd = agent_cmd(&db, "10", &[("ok", ok.url("/"))]);
    let script = format!(
        "mount -t tmpfs tmpfs /usr/share/zoneinfo && ls -A /usr/share/zoneinfo | wc -l && \
         exec {bin} agent --once --json"
    );
    let mut unshare = Command::new("unshare");
    unshare.args(["-m", "sh", "-c", &script]);
    unshare.env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            unshare.env(k, v);
        }
    }
    unshare
        .env("TZ", "America/Lima")
        .env("PING_URL", ok.url("/"));
    let out = tokio::task::spawn_blocking(move || unshare.output())
        .await
        .expect("join");
    let out = match out {
        Ok(out) if out.status.success() => out,
        Ok(out) if !std::path::Path::new(&db).exists() => {
            crate::common::require(
                false,
                &format!(
                    "cannot hide zoneinfo in a mount namespace (needs root): {}",
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .next()
                        .unwrap_or("")
                ),
            );
            return;
        }
        Ok(out) => panic!("agent failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => {
            crate::common::require(false, &format!("unshare unavailable: {e}"));
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("0"), "zoneinfo was not hidden");
    let cycle: serde_json::Value = serde_json::from_str(lines.next().expect("json")).expect("json");
    let ts = cycle["timestamp"].as_str().expect("timestamp");
    assert!(ts.ends_with("-05:00"), "{ts}");
    let stored: String = open_db(&db)
        .query_row("SELECT timestamp_lima FROM monitoring_cycles", [], |r| {
            r.get(0)
        })
        .expect("row");
    assert_eq!(stored, ts);
}

#[tokio::test(flavor = "multi_thread")]
async fn healthcheck_follows_the_newest_cycle_and_urls() {
    let ok = Server::start(200).await;
    let broken = Server::start(503).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_in(&dir);
    let run = |args: Vec<String>| {
        let db = db.clone();
        async move {
            let mut cmd = heartbeat();
            cmd.arg("healthcheck").args(args).env("SQLITE_DB_PATH", &db);
            tokio::task::spawn_blocking(move || cmd.output().expect("run"))
                .await
                .expect("join")
                .status
                .code()
        }
    };
    assert_eq!(run(vec![]).await, Some(1), "no database yet");
    let mut once = agent_cmd(&db, "10", &[("ok", ok.url("/"))]);
    once.args(["--once"]).env("PING_URL", ok.url("/"));
    let status = tokio::task::spawn_blocking(move || once.status())
        .await
        .expect("join")
        .expect("run");
    assert!(status.success());
    assert_eq!(run(vec![]).await, Some(0), "a fresh cycle");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        run(vec!["--max-age".into(), "1".into()]).await,
        Some(1),
        "too old"
    );
    assert_eq!(run(vec!["--url".into(), ok.url("/health")]).await, Some(0));
    assert_eq!(
        run(vec!["--url".into(), broken.url("/health")]).await,
        Some(1)
    );
    assert_eq!(
        run(vec!["--url".into(), "http://127.0.0.1:1/".into()]).await,
        Some(1)
    );
}

/// No heartbeat while the internet check fails: `worker_status` is NULL and the receiver hears
/// nothing; with the internet back it stores the receiver's code (here 221).
#[tokio::test(flavor = "multi_thread")]
async fn no_heartbeat_without_internet_and_the_code_stored_with_it() {
    let ok = Server::start(200).await;
    let receiver = Server::start(221).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_in(&dir);
    for ping in ["http://127.0.0.1:1/", &ok.url("/ping")] {
        let mut cmd = agent_cmd(&db, "10", &[("ok", ok.url("/"))]);
        cmd.args(["--once"])
            .env("PING_URL", ping)
            .env("HEARTBEAT_URL", receiver.url("/api/heartbeat"))
            .env("SECRET_KEY", "k");
        let status = tokio::task::spawn_blocking(move || cmd.status())
            .await
            .expect("join")
            .expect("run");
        assert!(status.success());
    }
    let conn = open_db(&db);
    let rows: Vec<(bool, Option<i64>)> = conn
        .prepare("SELECT internet_status, worker_status FROM monitoring_cycles ORDER BY rowid")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    assert_eq!(rows, [(false, None), (true, Some(221))]);
    assert_eq!(
        receiver.received().len(),
        1,
        "one heartbeat, after the internet came back"
    );
}

/// An alert still being delivered at SIGTERM is not lost: the attempt in flight may finish
/// (within a short grace), no new attempt starts, its result is recorded, and the agent exits
/// cleanly.
#[tokio::test(flavor = "multi_thread")]
async fn an_alert_in_flight_at_shutdown_is_recorded() {
    let api = Server::start(200).await;
    let sink = Server::start(HANG).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_in(&dir);
    let mut cmd = agent_cmd(&db, "1", &[("api", api.url("/"))]);
    cmd.env("STATUS_CHANGE_THRESHOLD", "1")
        .env("PING_URL", api.url("/ping"))
        .env("N8N_WEBHOOK_URL", sink.url("/hook"));
    let agent = AgentProcess::spawn(cmd);
    wait_for("a first cycle", Duration::from_secs(15), || {
        count(&db, "SELECT count(*) FROM monitoring_cycles") >= 1
    })
    .await;
    api.set_status(500);
    wait_for("the alert row", Duration::from_secs(15), || {
        count(&db, "SELECT count(*) FROM alerts") == 1
    })
    .await;
    wait_for("the first attempt", Duration::from_secs(5), || {
        !sink.received().is_empty()
    })
    .await;
    let (status, stderr) = tokio::task::spawn_blocking(move || agent.stop())
        .await
        .expect("join");
    assert!(status.success(), "{stderr}");
    let (attempts, delivered, error): (i64, Option<String>, Option<String>) = open_db(&db)
        .query_row(
            "SELECT attempts, delivered_at, last_error FROM alerts",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("alert row");
    assert!(attempts >= 1, "attempts {attempts}");
    assert_eq!(delivered, None);
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("abandoned") || e.contains("timeout")),
        "{error:?}"
    );
    assert!(sink.received().len() < 3, "no retry after shutdown");
}

/// `tcp://` services through the real cycle (issue 16): an open port is healthy with its
/// connect time, a closed one down with `Connection refused`, both stored as such and ordered
/// with the http service by name in the heartbeat body, before the container.
#[tokio::test(flavor = "multi_thread")]
async fn tcp_services_are_checked_stored_and_sent_in_order() {
    let ok = Server::start(200).await;
    let receiver = Server::start(200).await;
    // Never accepts: the kernel completes the handshake from its backlog, which is all a tcp
    // check waits for.
    let open = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let open_port = open.local_addr().expect("addr").port();
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_in(&dir);
    let mut cmd = agent_cmd(
        &db,
        "10",
        &[
            ("web", ok.url("/health")),
            ("pg", format!("tcp://127.0.0.1:{open_port}")),
            ("Closed", format!("tcp://127.0.0.1:{closed_port}")),
            ("box", "docker:box".to_owned()),
        ],
    );
    cmd.args(["--once", "--json"])
        .env("PING_URL", ok.url("/ping"))
        .env("HEARTBEAT_URL", receiver.url("/api/heartbeat"))
        .env("SECRET_KEY", "k");
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    let conn = open_db(&db);
    let row = |name: &str| -> (String, Option<String>, Option<f64>, Option<String>) {
        conn.query_row(
            "SELECT status, service_url, latency_ms, error_message FROM service_checks \
             WHERE service_name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("row")
    };
    let (status, url, latency, reason) = row("pg");
    assert_eq!(status, "healthy");
    assert_eq!(url, Some(format!("tcp://127.0.0.1:{open_port}")));
    let latency = latency.expect("a connection has a latency");
    assert!(latency > 0.0 && latency < 500.0, "{latency}");
    assert_eq!(reason, None);
    let (status, _, latency, reason) = row("Closed");
    assert_eq!(status, "down");
    assert_eq!(latency, None);
    assert_eq!(reason.as_deref(), Some("Connection refused"));

    let worker: Option<i64> = conn
        .query_row("SELECT worker_status FROM monitoring_cycles", [], |r| {
            r.get(0)
        })
        .expect("cycle row");
    assert_eq!(worker, Some(200));
    let bodies = receiver.posted_json();
    assert_eq!(bodies.len(), 1, "one heartbeat");
    let keys: Vec<&str> = bodies[0]["services"]
        .as_object()
        .expect("services object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["Closed", "pg", "web", "box"]);
    assert_eq!(bodies[0]["services"]["pg"]["status"], "healthy");
    assert_eq!(bodies[0]["services"]["Closed"]["status"], "down");
    drop(open);
}

/// Docker health and exit codes through the real cycle and the database (issue 16), against
/// the engine of `HB_TEST_DOCKER_HOST` (`scripts/docker-engine.sh up`): a running container
/// whose health check fails is stored as `error`, a killed one as down with its exit code.
#[tokio::test(flavor = "multi_thread")]
async fn docker_health_and_exit_codes_are_stored() {
    const CLI: &str = "/usr/bin/docker";
    let host = std::env::var("HB_TEST_DOCKER_HOST").unwrap_or_default();
    let socket = host.strip_prefix("unix://").unwrap_or(&host).to_owned();
    if !crate::common::require(
        !host.is_empty() && Path::new(&socket).exists(),
        "HB_TEST_DOCKER_HOST not set or its socket absent (run scripts/docker-engine.sh up)",
    ) {
        return;
    }
    let docker = |args: &[&str]| {
        let out = Command::new(CLI)
            .arg("-H")
            .arg(&host)
            .args(args)
            .output()
            .expect("run the docker CLI");
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    struct Removed<'a>(&'a str, Vec<String>);
    impl Drop for Removed<'_> {
        fn drop(&mut self) {
            for name in &self.1 {
                let _ = Command::new("/usr/bin/docker")
                    .args(["-H", self.0, "rm", "-f", name])
                    .output();
            }
        }
    }
    let pid = std::process::id();
    let sick = format!("hb-e2e-sick-{pid}");
    let killed = format!("hb-e2e-killed-{pid}");
    let _cleanup = Removed(&host, vec![sick.clone(), killed.clone()]);
    let run = |name: &str, extra: &[&str]| {
        let mut args = vec!["run", "-d", "--init", "--network", "none", "--name", name];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["hb-test/busybox", "sleep", "100000"]);
        docker(&args);
    };
    run(
        &sick,
        &[
            "--health-cmd",
            "false",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
        ],
    );
    run(&killed, &[]);
    docker(&["kill", &killed]);
    docker(&["wait", &killed]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while docker(&["inspect", "--format", "{{.State.Health.Status}}", &sick]) != "unhealthy" {
        assert!(
            std::time::Instant::now() < deadline,
            "the engine never reported unhealthy"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_in(&dir);
    let mut cmd = agent_cmd(
        &db,
        "10",
        &[
            ("sick", format!("docker:{sick}")),
            ("killed", format!("docker:{killed}")),
        ],
    );
    let ping = Server::start(200).await;
    cmd.args(["--once"])
        .env("DOCKER_HOST", &host)
        .env("PING_URL", ping.url("/ping"));
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conn = open_db(&db);
    let row = |name: &str| -> (String, Option<String>) {
        conn.query_row(
            "SELECT status, error_message FROM service_checks WHERE service_name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("row")
    };
    assert_eq!(
        row("sick"),
        (
            "error".to_owned(),
            Some("Container health: unhealthy".to_owned())
        )
    );
    assert_eq!(
        row("killed"),
        (
            "down".to_owned(),
            Some("Container state: exited (137)".to_owned())
        )
    );
    let containers: i64 = conn
        .query_row("SELECT container_count FROM monitoring_cycles", [], |r| {
            r.get(0)
        })
        .expect("cycle row");
    assert!(containers >= 1, "the sick one is running: {containers}");
}
