//! The fleet dashboard (issue 13) on a real PostgreSQL: one dashboard reading every host that
//! real agents shipped, through a role that may only `SELECT`, in read-only sessions. Each
//! host's `/api/live` must equal what that host's own dashboard answers from its SQLite file,
//! for every range; a stopped agent's host turns stale within one poll.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::agent::{agent_cmd, db_in};
use crate::common::{LoggedAgent, Server, ServerProcess, heartbeat, wait_for};
use crate::fleet::{PASSWORD, Pg, free_port, local_ids, wait_caught_up};

const AGENT_PASSWORD: &str = "agent-pa55-fleet";
const READER_PASSWORD: &str = "read-0nly-pw";

/// The roles the README and the compose file set up (`deploy/fleet/initdb/heartbeat-roles.psql`):
/// `heartbeat_agent` owning the database, `heartbeat_reader` with `SELECT` and nothing else on
/// every table the agents create.
fn create_roles(pg: &Pg) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/fleet/initdb/heartbeat-roles.psql");
    pg.psql_file(
        "fleet",
        &script,
        &[("agent_pw", AGENT_PASSWORD), ("reader_pw", READER_PASSWORD)],
    );
}

/// `heartbeat dashboard` with `var` set to `value` (the fleet's URL or a host's file), both kinds
/// in the same zone so their labels match.
fn dashboard(var: &str, value: &std::ffi::OsStr) -> ServerProcess {
    let mut cmd = heartbeat();
    cmd.args(["dashboard", "--bind", "127.0.0.1:0"])
        .env(var, value)
        .env("TZ", "Europe/Berlin");
    ServerProcess::spawn(cmd, "dashboard listening")
}

fn fleet_dashboard(url: &str) -> ServerProcess {
    dashboard("FLEET_DATABASE_URL", url.as_ref())
}

fn host_dashboard(db: &Path) -> ServerProcess {
    dashboard("SQLITE_DB_PATH", db.as_os_str())
}

/// An agent of `host` checking `services` every 0.5 s, shipping to `fleet` when given, trusting
/// the test CA in `ca` when given (for https services).
fn agent(
    db: &Path,
    host: &str,
    fleet: Option<&str>,
    services: &[(&str, String)],
    ca: Option<&Path>,
) -> Command {
    let mut cmd = agent_cmd(db, "0.5", services);
    if let Some(ca) = ca {
        cmd.env("SSL_CERT_FILE", ca);
    }
    if let Some(url) = fleet {
        cmd.env("FLEET_DATABASE_URL", url).env("HOST_NAME", host);
    }
    cmd
}

async fn get(url: &str) -> (u16, Value) {
    let res = reqwest::get(url).await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn text(url: &str) -> String {
    let res = reqwest::get(url).await.expect("request");
    res.text().await.expect("text")
}

fn signal(agent: &LoggedAgent, sig: &str) {
    let status = Command::new("kill")
        .args([&format!("-{sig}"), &agent.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// The answer without what depends on the instant of the request.
fn comparable(mut v: Value) -> Value {
    if let Some(f) = v["freshness"].as_object_mut() {
        f.remove("age_seconds");
        f.remove("stale");
    }
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn each_host_answers_as_its_own_dashboard_for_every_range() {
    // Every statement logged with its application, to see what the dashboard sent.
    let Some(pg) = Pg::start_with(|_| "-c log_statement=all -c log_line_prefix=%a:".into()) else {
        return;
    };
    create_roles(&pg);
    let ok = Server::start(200).await;
    // An https service, so the certificate's keys are compared too.
    let ca = crate::certs::test_ca();
    let (secure, _) = crate::certs::tls_server(&ca, time::Duration::days(40));
    let ca_dir = tempfile::tempdir().expect("tmp");
    let ca_file = ca_dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).expect("write CA");
    let failing = Server::start(503).await;
    let closed = format!("http://127.0.0.1:{}/", free_port());
    let url = pg.url_as("heartbeat_agent", AGENT_PASSWORD);
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("tmp")).collect();
    let hosts = ["web-1", "db.internal", "home_server"];
    let services: [Vec<(&str, String)>; 3] = [
        vec![
            ("web", ok.url("/web")),
            ("api", ok.url("/api")),
            ("secure", format!("https://localhost:{}/", secure.port())),
        ],
        vec![("db", ok.url("/db")), ("broken", failing.url("/x"))],
        vec![("nas", ok.url("/nas")), ("gone", closed.clone())],
    ];
    let mut agents: Vec<LoggedAgent> = (0..2)
        .map(|i| {
            LoggedAgent::spawn(agent(
                &db_in(&dirs[i]),
                hosts[i],
                Some(&url),
                &services[i],
                Some(&ca_file),
            ))
        })
        .collect();
    // The third host runs a while without shipping, then ships its backlog and catches up.
    let lagging = LoggedAgent::spawn(agent(
        &db_in(&dirs[2]),
        hosts[2],
        None,
        &services[2],
        Some(&ca_file),
    ));
    wait_for("a local backlog", Duration::from_secs(30), || {
        local_ids(&db_in(&dirs[2])).len() >= 12
    })
    .await;
    let (status, log) = lagging.stop();
    assert!(status.success(), "{log}");
    let backlog = local_ids(&db_in(&dirs[2])).len();
    agents.push(LoggedAgent::spawn(agent(
        &db_in(&dirs[2]),
        hosts[2],
        Some(&url),
        &services[2],
        Some(&ca_file),
    )));
    for (host, dir) in hosts.iter().zip(&dirs) {
        wait_caught_up(&pg, host, &db_in(dir), backlog + 4, Duration::from_secs(60)).await;
    }
    // Frozen when the fleet holds exactly the local journal, so both sides stay as they are.
    for ((a, host), dir) in agents.iter().zip(hosts).zip(&dirs) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            signal(a, "STOP");
            tokio::time::sleep(Duration::from_millis(100)).await;
            if pg.cycle_ids(host) == local_ids(&db_in(dir)) {
                break;
            }
            assert!(Instant::now() < deadline, "{host} never caught up");
            signal(a, "CONT");
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
    let fleet = fleet_dashboard(&pg.url_as("heartbeat_reader", READER_PASSWORD));
    let own: Vec<ServerProcess> = dirs.iter().map(|d| host_dashboard(&db_in(d))).collect();
    let _ = rustls::crypto::ring::default_provider().install_default();

    for (host, mine) in hosts.iter().zip(&own) {
        for (range, _) in hb_dashboard::RANGES {
            let mut tries = 0;
            loop {
                let (a, theirs) =
                    get(&fleet.url(&format!("/api/live?range={range}&host={host}"))).await;
                let (b, local) = get(&mine.url(&format!("/api/live?range={range}"))).await;
                assert_eq!((a, b), (200, 200), "{host} {range}: {theirs} / {local}");
                // Two requests either side of a bucket edge see different layouts: ask again.
                if theirs["history"]["timestamps"] != local["history"]["timestamps"] && tries < 3 {
                    tries += 1;
                    continue;
                }
                assert_eq!(
                    comparable(theirs),
                    comparable(local),
                    "{host} range {range}: the fleet dashboard differs from the host's own"
                );
                break;
            }
        }
        let (_, theirs) = get(&fleet.url(&format!("/api/alerts?host={host}&limit=100"))).await;
        let (_, local) = get(&mine.url("/api/alerts?limit=100")).await;
        let mut theirs = theirs["alerts"].as_array().expect("alerts").clone();
        for a in &mut theirs {
            assert_eq!(a["host"], *host, "{a}");
            a.as_object_mut().expect("object").remove("host");
        }
        assert_eq!(Value::Array(theirs), local["alerts"], "{host}: alerts");
    }

    // The certificate came along (so the comparison above covered its keys).
    let (_, live) = get(&fleet.url("/api/live?range=live&host=web-1")).await;
    let secure = live["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "secure"))
        .cloned()
        .expect("the https service");
    assert_eq!(secure["status"], "healthy", "{secure}");
    let days = secure["cert_days_left"].as_i64().expect("days left");
    assert!((39..=40).contains(&days), "{secure}");

    // The hosts at a glance.
    let (status, listed) = get(&fleet.url("/api/hosts")).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["fleet"], true);
    let names: Vec<&str> = listed["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|h| h["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["db.internal", "home_server", "web-1"]);
    let by_name = |n: &str| {
        listed["hosts"]
            .as_array()
            .expect("hosts")
            .iter()
            .find(|h| h["name"] == n)
            .cloned()
            .expect("host")
    };
    assert_eq!(by_name("web-1")["worst_status"], "healthy");
    assert_eq!(by_name("web-1")["services"]["healthy"], 3);
    assert_eq!(by_name("db.internal")["worst_status"], "error");
    assert_eq!(by_name("home_server")["worst_status"], "down");
    assert_eq!(by_name("home_server")["services"]["total"], 2);
    assert_eq!(by_name("web-1")["interval_seconds"], 0.5);
    let spark = by_name("web-1")["uptime_1h"].clone();
    assert_eq!(spark.as_array().map(Vec::len), Some(10), "{spark}");
    assert_eq!(
        spark[9], 100.0,
        "the current block of a healthy host: {spark}"
    );
    assert_eq!(by_name("home_server")["uptime_1h"][9], 50.0);

    // Which host, when several could be meant.
    let (status, body) = get(&fleet.url("/api/live?range=1h")).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"].as_str().expect("detail").contains("host"),
        "{body}"
    );
    let (status, body) = get(&fleet.url("/api/live?range=1h&host=nope")).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["detail"].as_str().expect("detail").contains("nope"),
        "{body}"
    );
    // A single host's dashboard has no host names.
    let (status, body) = get(&own[0].url("/api/live?range=1h&host=web-1")).await;
    assert_eq!(status, 400, "{body}");
    let (_, single) = get(&own[0].url("/api/hosts")).await;
    assert_eq!(single, serde_json::json!({"fleet": false, "hosts": []}));

    let metrics = text(&fleet.url("/metrics")).await;
    assert!(
        metrics.contains("heartbeat_service_up{host=\"web-1\",service=\"web\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "heartbeat_service_status{host=\"db.internal\",service=\"broken\",status=\"error\"} 1"
        ),
        "{metrics}"
    );
    let one = text(&fleet.url("/metrics?host=home_server")).await;
    assert!(
        one.contains("host=\"home_server\"") && !one.contains("host=\"web-1\""),
        "{one}"
    );

    // What the dashboard sent: read-only sessions, never a write.
    let log = pg.server_log();
    let sent: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("heartbeat dashboard:"))
        .collect();
    assert!(
        sent.iter()
            .any(|l| l.contains("SET default_transaction_read_only = on")),
        "{log}"
    );
    // Every statement it sent reads (or opens, ends or sets up a read-only transaction).
    let statements: Vec<&str> = sent
        .iter()
        .filter_map(|l| l.split_once("LOG:  ").map(|(_, m)| m))
        .filter_map(|m| {
            m.strip_prefix("statement: ").or_else(|| {
                m.strip_prefix("execute ")
                    .and_then(|e| e.split_once(": "))
                    .map(|(_, sql)| sql)
            })
        })
        .collect();
    assert!(statements.len() > 20, "{log}");
    for sql in &statements {
        let first = sql.split_whitespace().next().unwrap_or("").to_uppercase();
        assert!(
            ["SELECT", "START", "BEGIN", "COMMIT", "SET"].contains(&first.as_str()),
            "the dashboard sent more than reads: {sql}"
        );
        if first == "SET" {
            assert_eq!(*sql, "SET default_transaction_read_only = on");
        }
        if first == "START" {
            assert!(sql.contains("READ ONLY"), "{sql}");
        }
    }
    for a in &agents {
        signal(a, "CONT");
    }
    for a in agents {
        let (status, log) = a.stop();
        assert!(status.success(), "{log}");
    }
    let dash_log = fleet.log.lock().expect("lock").clone();
    assert!(
        !dash_log.contains(READER_PASSWORD),
        "the password was logged"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_agent_is_stale_within_one_poll() {
    let Some(pg) = Pg::start() else { return };
    let target = Server::start(200).await;
    let url = pg.url(PASSWORD);
    // Before any agent: the dashboard runs and says the database is not ready.
    let dash = fleet_dashboard(&url);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (status, body) = get(&dash.url("/api/hosts")).await;
    assert_eq!(status, 503, "{body}");
    let (_, health) = get(&dash.url("/health")).await;
    assert_eq!(health["database"], "unavailable", "{health}");

    let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().expect("tmp")).collect();
    let agents: Vec<LoggedAgent> = ["alpha", "beta"]
        .iter()
        .zip(&dirs)
        .map(|(h, d)| {
            LoggedAgent::spawn(agent(
                &db_in(d),
                h,
                Some(&url),
                &[("web", target.url("/web"))],
                None,
            ))
        })
        .collect();
    let host = |listed: &Value, name: &str| {
        listed["hosts"]
            .as_array()
            .and_then(|a| a.iter().find(|h| h["name"] == name).cloned())
            .unwrap_or(Value::Null)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, listed) = get(&dash.url("/api/hosts")).await;
        if status == 200
            && host(&listed, "alpha")["state"] == "up"
            && host(&listed, "beta")["state"] == "up"
        {
            break;
        }
        assert!(Instant::now() < deadline, "both up: {listed}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut agents = agents.into_iter();
    let alpha = agents.next().expect("alpha");
    agents.next().expect("beta").kill9();
    // Polled every 250 ms: the first answer after the threshold says stale, none before it.
    let poll = Duration::from_millis(250);
    let deadline = Instant::now() + Duration::from_secs(30);
    let last_ms = loop {
        let (_, listed) = get(&dash.url("/api/hosts")).await;
        let beta = host(&listed, "beta");
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let last = beta["last_cycle_ms"].as_i64().expect("last cycle");
        let after = beta["stale_after_seconds"].as_f64().expect("threshold");
        assert_eq!(after, 5.5, "an agent of 0.5 s: one interval and the slack");
        let age_s = (now_ms - last) as f64 / 1000.0;
        if beta["state"] == "stale" {
            assert!(age_s > after, "stale before the threshold: {age_s} s");
            break last;
        }
        assert!(
            age_s <= after + 0.5,
            "still up {age_s} s after the newest cycle: {beta}"
        );
        assert!(Instant::now() < deadline, "beta never turned stale");
        tokio::time::sleep(poll).await;
    };
    let (_, listed) = get(&dash.url("/api/hosts")).await;
    assert_eq!(host(&listed, "alpha")["state"], "up", "{listed}");
    assert_eq!(host(&listed, "beta")["last_cycle_ms"], last_ms);
    let (_, health) = get(&dash.url("/health")).await;
    assert_eq!(health["hosts"], 2, "{health}");
    assert_eq!(health["stale_hosts"], 1, "{health}");
    assert_eq!(health["database"], "ok", "{health}");
    let (status, log) = alpha.stop();
    assert!(status.success(), "{log}");
}
