//! `heartbeat receiver` end to end: every answer of the heartbeat contract through real HTTP
//! (including 220, 221 and 500 provoked through its real SQLite state), silence and recovery
//! with a real agent and a webhook sink, restarts and SIGKILL, and no key or webhook URL in
//! any answer or log line.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::agent::agent_cmd;
use crate::common::{LoggedAgent, Server, ServerProcess, heartbeat, open_db, wait_for};

const KEY_WEB: &str = "rk_web_5ecret_key_0001";
const KEY_DB: &str = "rk_db_5ecret_key_0002";
const HOOK_TOKEN: &str = "hook-t0ken-7f3a";

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        // Far above the one-second contract: only keeps a broken receiver from hanging the test.
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

fn receiver_cmd(db: &Path, agents: &[(&str, &str)], grace: &str, sink: &Server) -> Command {
    let mut cmd = heartbeat();
    cmd.arg("receiver")
        .env("RECEIVER_BIND", "127.0.0.1:0")
        .env("RECEIVER_DB_PATH", db)
        .env("RECEIVER_GRACE_SECONDS", grace)
        .env("TZ", "America/Lima")
        .env(
            "N8N_WEBHOOK_URL",
            sink.url(&format!("/webhook/{HOOK_TOKEN}")),
        );
    for (name, key) in agents {
        cmd.env(format!("RECEIVER_AGENT_{name}"), key);
    }
    cmd
}

fn start(cmd: Command) -> ServerProcess {
    ServerProcess::spawn(cmd, "receiver listening")
}

/// One answer: status, JSON body (or the text as a JSON string) and how long it took.
struct Answered {
    status: u16,
    body: Value,
    raw: String,
    took: Duration,
}

impl Answered {
    /// Asserts the HTTP status and the body's `result` word.
    #[track_caller]
    fn expect(&self, status: u16, result: &str, case: &str) {
        assert_eq!(
            (self.status, self.body["result"].as_str()),
            (status, Some(result)),
            "{case}: {}",
            self.raw
        );
    }
}

async fn request(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    auth: Option<&str>,
    body: Vec<u8>,
) -> Answered {
    let mut req = client.request(method, url).body(body);
    if let Some(auth) = auth {
        req = req.header("Authorization", auth);
    }
    let started = Instant::now();
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let raw = resp.text().await.expect("body");
    Answered {
        status,
        body: serde_json::from_str(&raw).unwrap_or_else(|_| Value::String(raw.clone())),
        raw,
        took: started.elapsed(),
    }
}

/// A heartbeat announcing `length` bytes, over a raw connection: the answer to its head.
async fn oversized(addr: std::net::SocketAddr, key: &str, length: usize) -> Answered {
    use std::io::{Read as _, Write as _};
    let key = key.to_owned();
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(
            stream,
            "POST /api/heartbeat HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        )
        .expect("write");
        let mut raw = String::new();
        let _ = stream.read_to_string(&mut raw);
        let status = raw
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Answered {
            status,
            body: Value::Null,
            raw,
            took: started.elapsed(),
        }
    })
    .await
    .expect("join")
}

async fn beat(client: &reqwest::Client, r: &ServerProcess, key: &str, status: &str) -> Answered {
    let body = format!(
        r#"{{"services": {{"api": {{"status": "{status}"}}, "db": {{"status": "healthy"}}}}}}"#
    );
    request(
        client,
        reqwest::Method::POST,
        &r.url("/api/heartbeat"),
        Some(&format!("Bearer {key}")),
        body.into_bytes(),
    )
    .await
}

async fn agents(client: &reqwest::Client, r: &ServerProcess) -> Value {
    let resp = client
        .get(r.url("/api/agents"))
        .send()
        .await
        .expect("agents");
    assert_eq!(resp.status().as_u16(), 200);
    resp.json().await.expect("json")
}

async fn heartbeats(c: &reqwest::Client, r: &ServerProcess, name: &str) -> i64 {
    agent(&agents(c, r).await, name)["heartbeats"]
        .as_i64()
        .unwrap_or(0)
}

fn agent<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no agent {name} in {list}"))
}

/// Titles of the alerts the sink received containing `word`.
fn alerts_with(sink: &Server, word: &str) -> Vec<String> {
    sink.posted_json()
        .iter()
        .filter_map(|a| a["title"].as_str().map(str::to_owned))
        .filter(|t| t.contains(word))
        .collect()
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [KEY_WEB, KEY_DB, HOOK_TOKEN] {
        assert!(!text.contains(secret), "{secret} leaked in {what}: {text}");
    }
}

/// Every answer of SPEC §7's table, each provoked for real, in one receiver's life.
#[tokio::test(flavor = "multi_thread")]
async fn every_answer_of_the_heartbeat_contract() {
    let sink = Server::start(200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("data").join("receiver.db");
    let mut cmd = receiver_cmd(&db, &[("web", KEY_WEB), ("db", KEY_DB)], "60", &sink);
    // `db` is never seen: its alarm comes a second after the start, and its first heartbeat is
    // then a recovery.
    cmd.env("RECEIVER_GRACE_SECONDS_db", "1");
    let r = start(cmd);
    let c = client();
    let hb = r.url("/api/heartbeat");
    let mut answers: Vec<(String, Answered)> = Vec::new();
    let good = br#"{"services": {"api": {"status": "healthy"}}}"#.to_vec();

    let post = |auth: Option<String>, body: Vec<u8>| {
        let c = c.clone();
        let hb = hb.clone();
        async move { request(&c, reqwest::Method::POST, &hb, auth.as_deref(), body).await }
    };
    let bearer = |k: &str| Some(format!("Bearer {k}"));

    // (case, auth, body, status, result)
    type Case<'a> = (&'a str, Option<String>, Vec<u8>, u16, &'a str);
    let simple: Vec<Case> = vec![
        ("recorded", bearer(KEY_WEB), good.clone(), 200, "recorded"),
        ("no key", None, good.clone(), 401, "unauthorized"),
        (
            "wrong key",
            bearer("rk_web_5ecret_key_0003"),
            good.clone(),
            401,
            "unauthorized",
        ),
        (
            "not bearer",
            Some(format!("Basic {KEY_WEB}")),
            good.clone(),
            401,
            "unauthorized",
        ),
        (
            "malformed json",
            bearer(KEY_WEB),
            b"{\"services\": ".to_vec(),
            400,
            "bad-request",
        ),
        (
            "wrong shape",
            bearer(KEY_WEB),
            br#"{"services": ["api"]}"#.to_vec(),
            400,
            "bad-request",
        ),
        (
            "status outside the taxonomy",
            bearer(KEY_WEB),
            br#"{"services": {"api": {"status": "sleepy"}}}"#.to_vec(),
            400,
            "bad-request",
        ),
    ];
    for (case, auth, body, status, result) in simple {
        let a = post(auth, body).await;
        a.expect(status, result, case);
        answers.push((case.to_owned(), a));
    }
    // Refused on its Content-Length, before the body is read: the body is not sent, or the
    // server's close of a connection with unread data could reset the answer away.
    let a = oversized(r.addr, KEY_WEB, 64 * 1024 + 1).await;
    assert_eq!(a.status, 413, "over 64 KiB: {}", a.raw);
    answers.push(("over 64 KiB".to_owned(), a));
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let a = request(
            &c,
            method.clone(),
            &hb,
            bearer(KEY_WEB).as_deref(),
            Vec::new(),
        )
        .await;
        assert_eq!(a.status, 405, "{method}: {}", a.raw);
        answers.push((format!("{method}"), a));
    }
    // Nothing of the refused requests was recorded: one heartbeat so far.
    let list = agents(&c, &r).await;
    assert_eq!(agent(&list, "web")["heartbeats"], 1, "{list}");
    assert_eq!(agent(&list, "web")["state"], "up", "{list}");

    // 500: another connection holds the write lock; the previous state is still readable.
    {
        let other = rusqlite::Connection::open(&db).expect("open");
        other
            .execute_batch("BEGIN EXCLUSIVE; UPDATE agents SET heartbeats = heartbeats WHERE 0;")
            .expect("lock");
        let a = post(bearer(KEY_WEB), good.clone()).await;
        a.expect(500, "store-failed", "locked store");
        answers.push(("locked store".to_owned(), a));
        other.execute_batch("ROLLBACK").expect("unlock");
    }
    let a = post(bearer(KEY_WEB), good.clone()).await;
    assert_eq!(a.status, 200, "after the lock: {}", a.raw);

    // 220: the agent's stored state cannot be read (a damaged row); the heartbeat is still
    // recorded, and the one after it is ordinary again.
    rusqlite::Connection::open(&db)
        .expect("open")
        .execute(
            "UPDATE agents SET alarmed = 'damaged' WHERE name = 'web'",
            [],
        )
        .expect("damage");
    let a = post(bearer(KEY_WEB), good.clone()).await;
    a.expect(220, "blind", "unreadable state");
    answers.push(("unreadable state".to_owned(), a));
    let a = post(bearer(KEY_WEB), good.clone()).await;
    a.expect(200, "recorded", "the next heartbeat");

    // `db` was never seen: one "never seen" alarm after its grace.
    wait_for("the never-seen alarm", Duration::from_secs(10), || {
        alerts_with(&sink, "never seen").len() == 1
    })
    .await;
    // 221: it comes back, but the store refuses to clear its alarm (a trigger aborts it).
    let conn = rusqlite::Connection::open(&db).expect("open");
    conn.execute_batch(
        "CREATE TRIGGER refuse_recovery BEFORE UPDATE OF alarmed ON agents \
         WHEN OLD.alarmed = 1 AND NEW.alarmed = 0 \
         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
    )
    .expect("trigger");
    let a = post(bearer(KEY_DB), good.clone()).await;
    a.expect(221, "recovery-update-failed", "recovery refused");
    answers.push(("recovery refused".to_owned(), a));
    conn.execute_batch("DROP TRIGGER refuse_recovery")
        .expect("drop");
    let a = post(bearer(KEY_DB), good.clone()).await;
    a.expect(200, "recovered", "back after the silence");
    answers.push(("recovered".to_owned(), a));
    let a = post(bearer(KEY_DB), good.clone()).await;
    a.expect(200, "recorded", "the next heartbeat");
    wait_for("the back alert", Duration::from_secs(10), || {
        alerts_with(&sink, "Agent back").len() == 1
    })
    .await;
    assert_eq!(alerts_with(&sink, "never seen").len(), 1);

    for (case, a) in &answers {
        eprintln!(
            "{case:>28}: {} in {:.1} ms",
            a.status,
            a.took.as_secs_f64() * 1e3
        );
        assert_no_secret(case, &a.raw);
    }
    for path in ["/api/agents", "/metrics", "/health", "/"] {
        let text = c
            .get(r.url(path))
            .send()
            .await
            .expect("get")
            .text()
            .await
            .expect("text");
        assert_no_secret(path, &text);
    }
    let sink_text = format!("{:?}", sink.posted_json());
    assert_no_secret("the alerts", &sink_text);
    let log = r.log.lock().expect("lock").clone();
    assert!(log.contains("agent back"), "{log}");
    assert_no_secret("the log", &log);
}

/// Silence and recovery of a real agent: one "silent" alarm within grace + 2 s of its stop, one
/// "back" alarm when it returns, and worker_status 200 in every cycle it stored.
#[tokio::test(flavor = "multi_thread")]
async fn a_real_agent_goes_silent_and_comes_back_with_one_alarm_each() {
    let sink = Server::start(200).await;
    let api = Server::start(200).await;
    let ping = Server::start(204).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let rdb = dir.path().join("receiver").join("receiver.db");
    let r = start(receiver_cmd(&rdb, &[("host1", KEY_WEB)], "2", &sink));
    let adb = dir.path().join("agent").join("metrics.db");
    let spawn_agent = || {
        let mut cmd = agent_cmd(&adb, "1", &[("api", api.url("/health"))]);
        cmd.env("PING_URL", ping.url("/"))
            .env("HEARTBEAT_URL", r.url("/api/heartbeat"))
            .env("SECRET_KEY", KEY_WEB);
        LoggedAgent::spawn(cmd)
    };
    let c = client();

    let first = spawn_agent();
    let start_wait = Instant::now();
    while heartbeats(&c, &r, "host1").await < 3 {
        assert!(
            start_wait.elapsed() < Duration::from_secs(20),
            "no heartbeats: {}",
            first.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, log) = first.stop();
    assert!(status.success(), "{log}");
    let stopped = Instant::now();
    wait_for(
        "one silent alarm within grace + 2 s",
        Duration::from_secs(4),
        || !alerts_with(&sink, "Agent silent").is_empty(),
    )
    .await;
    eprintln!(
        "silent alarm {:.2} s after the agent stopped",
        stopped.elapsed().as_secs_f64()
    );
    let list = agents(&c, &r).await;
    assert_eq!(agent(&list, "host1")["state"], "silent", "{list}");

    let second = spawn_agent();
    wait_for("one back alarm", Duration::from_secs(15), || {
        !alerts_with(&sink, "Agent back").is_empty()
    })
    .await;
    // A few more cycles: nothing else may arrive.
    let before = heartbeats(&c, &r, "host1").await;
    while heartbeats(&c, &r, "host1").await < before + 3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, log) = second.stop();
    assert!(status.success(), "{log}");
    assert_eq!(
        alerts_with(&sink, "Agent silent").len(),
        1,
        "{:?}",
        sink.posted_json()
    );
    assert_eq!(
        alerts_with(&sink, "Agent back").len(),
        1,
        "{:?}",
        sink.posted_json()
    );
    let back = sink
        .posted_json()
        .into_iter()
        .find(|a| {
            a["title"]
                .as_str()
                .is_some_and(|t| t.contains("Agent back"))
        })
        .expect("back");
    let message = back["message"].as_str().unwrap_or("");
    assert!(
        message.contains("**Outage:**") && message.contains("api healthy"),
        "{message}"
    );

    let statuses = worker_statuses(&adb);
    assert!(statuses.len() >= 6, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == Some(200)), "{statuses:?}");
    assert_no_secret("the receiver's log", &r.log.lock().expect("lock"));
}

/// The agent's `worker_status` of every cycle it stored, in order.
fn worker_statuses(db: &Path) -> Vec<Option<i64>> {
    if !db.exists() {
        return Vec::new();
    }
    let conn = open_db(db);
    // Not created yet while the agent is starting.
    let Ok(mut stmt) = conn.prepare("SELECT worker_status FROM monitoring_cycles ORDER BY rowid")
    else {
        return Vec::new();
    };
    stmt.query_map([], |row| row.get(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

/// Waits until a cycle stored after the first `after` ones has `worker_status` `code`.
async fn wait_for_worker_status(db: &Path, after: usize, code: i64) -> usize {
    let what = format!("a cycle with worker_status {code}");
    wait_for(&what, Duration::from_secs(15), || {
        worker_statuses(db)
            .iter()
            .skip(after)
            .any(|s| *s == Some(code))
    })
    .await;
    worker_statuses(db).len()
}

/// The codes the receiver answers when its state store is provoked reach the agent's database:
/// 500 while another connection holds the lock, 220 on a damaged row, 221 when the recovery
/// is refused; 200 again after each.
#[tokio::test(flavor = "multi_thread")]
async fn the_agent_stores_every_provoked_answer() {
    let sink = Server::start(200).await;
    let api = Server::start(200).await;
    let ping = Server::start(204).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let rdb = dir.path().join("receiver.db");
    // Longer than one provoked cycle plus the next, so a refused write is no silence.
    let r = start(receiver_cmd(&rdb, &[("host1", KEY_WEB)], "3", &sink));
    let adb = dir.path().join("agent").join("metrics.db");
    let spawn_agent = || {
        let mut cmd = agent_cmd(&adb, "1", &[("api", api.url("/health"))]);
        cmd.env("PING_URL", ping.url("/"))
            .env("HEARTBEAT_URL", r.url("/api/heartbeat"))
            .env("SECRET_KEY", KEY_WEB);
        LoggedAgent::spawn(cmd)
    };
    let first = spawn_agent();
    let n = wait_for_worker_status(&adb, 0, 200).await;

    let other = rusqlite::Connection::open(&rdb).expect("open");
    other.execute_batch("BEGIN EXCLUSIVE").expect("lock");
    let n = wait_for_worker_status(&adb, n, 500).await;
    other.execute_batch("ROLLBACK").expect("unlock");
    let n = wait_for_worker_status(&adb, n, 200).await;

    other
        .execute("UPDATE agents SET alarmed = 'damaged'", [])
        .expect("damage");
    let n = wait_for_worker_status(&adb, n, 220).await;
    let n = wait_for_worker_status(&adb, n, 200).await;

    let (status, log) = first.stop();
    assert!(status.success(), "{log}");
    wait_for("the silent alarm", Duration::from_secs(10), || {
        alerts_with(&sink, "Agent silent").len() == 1
    })
    .await;
    other
        .execute_batch(
            "CREATE TRIGGER refuse_recovery BEFORE UPDATE OF alarmed ON agents \
             WHEN OLD.alarmed = 1 AND NEW.alarmed = 0 \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
        )
        .expect("trigger");
    let second = spawn_agent();
    let n = wait_for_worker_status(&adb, n, 221).await;
    assert!(alerts_with(&sink, "Agent back").is_empty());
    other
        .execute_batch("DROP TRIGGER refuse_recovery")
        .expect("drop");
    wait_for_worker_status(&adb, n, 200).await;
    wait_for("the back alarm", Duration::from_secs(10), || {
        alerts_with(&sink, "Agent back").len() == 1
    })
    .await;
    let (status, log) = second.stop();
    assert!(status.success(), "{log}");
    let statuses = worker_statuses(&adb);
    eprintln!("worker_status per cycle: {statuses:?}");
    assert_eq!(statuses.last(), Some(&Some(200)), "{statuses:?}");
    assert!(
        statuses
            .iter()
            .all(|s| matches!(s, Some(200 | 220 | 221 | 500))),
        "{statuses:?}"
    );
    assert_eq!(alerts_with(&sink, "Agent silent").len(), 1);
    assert_no_secret("the receiver's log", &r.log.lock().expect("lock"));
    assert_no_secret("the agent's log", &log);
}

/// SIGKILL and restart: an agent that was silent and alarmed stays so without a second alarm
/// (and its return is still one "back"); an up agent is judged from its real last heartbeat,
/// not from the restart.
#[tokio::test(flavor = "multi_thread")]
async fn state_survives_sigkill_and_restart() {
    let sink = Server::start(200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("receiver.db");
    let grace = 2.0;
    let agents_cfg = [("web", KEY_WEB), ("db", KEY_DB)];
    let c = client();

    let r = start(receiver_cmd(&db, &agents_cfg, "2", &sink));
    assert_eq!(beat(&c, &r, KEY_WEB, "healthy").await.status, 200);
    // `db` keeps reporting while web goes silent.
    let waited = Instant::now();
    loop {
        assert_eq!(beat(&c, &r, KEY_DB, "healthy").await.status, 200);
        let delivered = crate::common::count(
            &db,
            "SELECT count(*) FROM alerts WHERE delivery_state = 'delivered'",
        );
        if alerts_with(&sink, "Agent silent: web").len() == 1 && delivered >= 1 {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "no alarm for web"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // `db` reports one last time just before the kill; the receiver is down past its grace.
    assert_eq!(beat(&c, &r, KEY_DB, "down").await.status, 200);
    let db_seen = agent(&agents(&c, &r).await, "db")["last_seen_ms"]
        .as_i64()
        .expect("db seen");
    let mut killed = r.process;
    killed.child.kill().expect("SIGKILL");
    let _ = killed.child.wait();
    tokio::time::sleep(Duration::from_secs_f64(grace + 0.5)).await;

    let r = start(receiver_cmd(&db, &agents_cfg, "2", &sink));
    // Judged from its real last heartbeat: silent at once, its alarm on the first ticks.
    let list = agents(&c, &r).await;
    assert_eq!(agent(&list, "db")["state"], "silent", "{list}");
    assert_eq!(agent(&list, "db")["last_seen_ms"].as_i64(), Some(db_seen));
    assert_eq!(agent(&list, "web")["state"], "silent", "{list}");
    wait_for("db's silent alarm", Duration::from_secs(5), || {
        alerts_with(&sink, "Agent silent: db").len() == 1
    })
    .await;
    let db_alarm = sink
        .posted_json()
        .into_iter()
        .find(|a| a["title"] == "🔴 Agent silent: db")
        .expect("db alarm");
    let message = db_alarm["message"].as_str().unwrap_or("");
    assert!(message.contains("api down"), "{message}");
    // Twice the grace after the restart: still one alarm for web.
    tokio::time::sleep(Duration::from_secs_f64(grace * 2.0)).await;
    assert_eq!(
        alerts_with(&sink, "Agent silent: web").len(),
        1,
        "{:?}",
        sink.posted_json()
    );
    assert_eq!(
        alerts_with(&sink, "Agent silent: db").len(),
        1,
        "{:?}",
        sink.posted_json()
    );

    let a = beat(&c, &r, KEY_WEB, "healthy").await;
    a.expect(200, "recovered", "back after the silence");
    wait_for("web's back alarm", Duration::from_secs(10), || {
        alerts_with(&sink, "Agent back: web").len() == 1
    })
    .await;
    let log = r.log.lock().expect("lock").clone();
    assert_no_secret("the log", &log);
}

#[test]
fn invalid_settings_exit_2_naming_the_variable_without_the_key() {
    let out = heartbeat()
        .arg("receiver")
        .env("RECEIVER_AGENT_a", "shared-k3y-secret")
        .env("RECEIVER_AGENT_b", "shared-k3y-secret")
        .env("RECEIVER_GRACE_SECONDS", "soon")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("RECEIVER_AGENT_b"), "{stderr}");
    assert!(stderr.contains("RECEIVER_GRACE_SECONDS"), "{stderr}");
    assert!(!stderr.contains("shared-k3y-secret"), "{stderr}");

    let out = heartbeat()
        .args(["config", "--role", "receiver"])
        .env("RECEIVER_AGENT_a", "a-k3y-secret")
        .env(
            "N8N_WEBHOOK_URL",
            format!("https://n8n.test/webhook/{HOOK_TOKEN}"),
        )
        .output()
        .expect("run");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("RECEIVER_AGENT_a"), "{stdout}");
    assert!(
        !stdout.contains("a-k3y-secret") && !stdout.contains(HOOK_TOKEN),
        "{stdout}"
    );
}

#[test]
fn receiver_help() {
    let out = heartbeat()
        .args(["receiver", "--help"])
        .output()
        .expect("run");
    assert!(out.status.success());
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}

#[test]
fn the_receiver_env_example_is_valid() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.env.receiver.example");
    let out = heartbeat()
        .arg("--env-file")
        .arg(example)
        .args(["config", "--role", "receiver"])
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("RECEIVER_AGENT_web1"), "{stdout}");
    assert!(!stdout.contains("change-me"), "{stdout}");
}
