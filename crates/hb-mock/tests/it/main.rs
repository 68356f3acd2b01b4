//! Drives a real mock server on 127.0.0.1:0 over HTTP: every heartbeat mode, the key check, the
//! simulation config, log tailing, every simulated-service behaviour, the alert sink and the page.

use std::time::{Duration, Instant};

use hb_mock::MockState;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const KEY: &str = "test-secret-key-123";

struct Mock {
    base: String,
    state: MockState,
    client: reqwest::Client,
    server: JoinHandle<std::io::Result<()>>,
}

async fn start() -> Mock {
    start_with(MockState::new(Some(KEY.to_owned()))).await
}

async fn start_with(state: MockState) -> Mock {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(hb_mock::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    Mock {
        base: format!("http://{addr}"),
        state,
        client: client(Duration::from_secs(10)),
        server,
    }
}

fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .expect("client")
}

impl Mock {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn config(&self, patch: Value) -> (StatusCode, Value) {
        let r = self
            .client
            .post(self.url("/api/config"))
            .json(&patch)
            .send()
            .await
            .expect("config post");
        (r.status(), r.json().await.expect("config json"))
    }

    async fn set(&self, patch: Value) {
        let (status, body) = self.config(patch).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    async fn heartbeat(&self, key: Option<&str>) -> (StatusCode, Value) {
        let mut req = self
            .client
            .post(self.url("/api/heartbeat"))
            .json(&json!({"services": {"api": {"status": "healthy"}, "db": {"status": "down"}}}));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let r = req.send().await.expect("heartbeat");
        (r.status(), r.json().await.expect("heartbeat json"))
    }

    async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        let r = self.client.get(self.url(path)).send().await.expect("get");
        (r.status(), r.json().await.expect("json"))
    }

    async fn svc(&self, name: &str) -> reqwest::Result<reqwest::Response> {
        self.client
            .get(self.url(&format!("/svc/{name}")))
            .send()
            .await
    }
}

#[tokio::test]
async fn every_mode_answers_its_status_and_result() {
    let mock = start().await;
    let cases = [
        ("RECORDED", 200, "recorded"),
        ("RECOVERED", 200, "recovered"),
        ("BLIND", 220, "blind"),
        ("PARTIAL", 221, "partial"),
        ("CRITICAL", 500, "error"),
        ("AUTO", 200, "recorded"),
    ];
    for (mode, code, result) in cases {
        mock.set(json!({"mode": mode})).await;
        let (status, body) = mock.heartbeat(Some(KEY)).await;
        assert_eq!(status.as_u16(), code, "mode {mode}: {body}");
        assert_eq!(body["result"], result, "mode {mode}: {body}");
        assert_eq!(body["services"], 2, "mode {mode}: {body}");
    }
}

#[tokio::test]
async fn auto_reports_recovered_once_after_the_host_was_offline() {
    let mock = start().await;
    mock.set(json!({"mode": "AUTO", "host_status": "offline"}))
        .await;
    let (status, body) = mock.heartbeat(Some(KEY)).await;
    assert_eq!(
        (status.as_u16(), body["result"].as_str()),
        (200, Some("recovered"))
    );
    let (status, body) = mock.heartbeat(Some(KEY)).await;
    assert_eq!(
        (status.as_u16(), body["result"].as_str()),
        (200, Some("recorded"))
    );
    let (_, cfg) = mock.get_json("/api/config").await;
    assert_eq!(cfg["host_status"], "online");
}

#[tokio::test]
async fn the_key_is_checked() {
    let mock = start().await;
    let (status, body) = mock.heartbeat(None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = mock.heartbeat(Some("wrong-key")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = mock.heartbeat(Some(&format!("{KEY}x"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = mock.heartbeat(Some(KEY)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let r = mock
        .client
        .post(mock.url("/api/heartbeat"))
        .header("Authorization", format!("Basic {KEY}"))
        .json(&json!({"services": {}}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Only authenticated heartbeats are recorded.
    let (_, hb) = mock.get_json("/api/heartbeat").await;
    assert_eq!(hb["received"], 1, "{hb}");
    assert_eq!(hb["last"]["payload"]["services"]["db"]["status"], "down");
    assert_eq!(hb["last"]["status"], 200);

    let (_, log) = mock.get_json("/api/logs?offset=0").await;
    let text = log["text"].as_str().expect("text");
    assert!(text.contains("POST /api/heartbeat 401"), "{text}");
    assert!(!text.contains(KEY), "the key leaked into the log: {text}");
}

#[tokio::test]
async fn without_a_configured_key_any_heartbeat_is_accepted() {
    let mock = start_with(MockState::new(None)).await;
    let (status, _) = mock.heartbeat(None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn offline_switch_answers_503_before_the_key_check() {
    let mock = start().await;
    mock.set(json!({"online": false})).await;
    let (status, body) = mock.heartbeat(Some(KEY)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (status, _) = mock.heartbeat(None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    mock.set(json!({"online": true})).await;
    let (status, _) = mock.heartbeat(Some(KEY)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_heartbeat_without_services_is_a_bad_request() {
    let mock = start().await;
    let r = mock
        .client
        .post(mock.url("/api/heartbeat"))
        .bearer_auth(KEY)
        .body("not json")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = mock
        .client
        .post(mock.url("/api/heartbeat"))
        .bearer_auth(KEY)
        .json(&json!({"status": "ok"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn config_reads_updates_and_rejects_bad_input() {
    let mock = start().await;
    let (status, cfg) = mock.get_json("/api/config").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cfg["online"], true);
    assert_eq!(cfg["mode"], "AUTO");
    assert_eq!(cfg["host_status"], "online");
    for name in [
        "healthy", "error500", "notfound", "slow", "timeout", "down", "flapping",
    ] {
        assert_eq!(cfg["services"][name]["behavior"], name, "{cfg}");
    }

    let (status, cfg) = mock
        .config(json!({"mode": "BLIND", "services": {"healthy": {"behavior": "down"}, "extra": {"behavior": "slow", "delay_ms": 10}}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{cfg}");
    assert_eq!(cfg["mode"], "BLIND");
    assert_eq!(cfg["online"], true, "untouched fields keep their value");
    assert_eq!(cfg["services"]["healthy"]["behavior"], "down");
    assert_eq!(cfg["services"]["extra"]["delay_ms"], 10);

    let (status, cfg) = mock.config(json!({"services": {"extra": null}})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(cfg["services"].get("extra").is_none(), "{cfg}");

    let bad = [
        json!({"mode": "SOMETIMES"}),
        json!({"host_status": "maybe"}),
        json!({"online": "yes"}),
        json!({"colour": "red"}),
        json!({"services": {"healthy": {"behavior": "sleepy"}}}),
        json!({"services": {"healthy": {"delay_ms": -1}}}),
        json!({"services": {"bad name!": {}}}),
    ];
    for patch in bad {
        let (status, body) = mock.config(patch.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{patch} -> {body}");
        assert!(
            body["reasons"].as_array().is_some_and(|r| !r.is_empty()),
            "{patch} -> {body}"
        );
    }
    let (_, body) = mock.config(json!({"mode": "SOMETIMES"})).await;
    assert!(
        body["reasons"][0]
            .as_str()
            .expect("reason")
            .contains("SOMETIMES")
    );

    let r = mock
        .client
        .post(mock.url("/api/config"))
        .body("{")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let (_, cfg) = mock.get_json("/api/config").await;
    assert_eq!(cfg["mode"], "BLIND", "rejected patches change nothing");
}

#[tokio::test]
async fn the_log_tails_by_offset() {
    let mock = start().await;
    mock.heartbeat(Some(KEY)).await;
    let (status, first) = mock.get_json("/api/logs?offset=0").await;
    assert_eq!(status, StatusCode::OK);
    let offset = first["offset"].as_u64().expect("offset");
    assert!(offset > 0);
    assert!(
        first["text"]
            .as_str()
            .expect("text")
            .contains("POST /api/heartbeat 200 recorded services=2"),
        "{first}"
    );

    let (_, empty) = mock.get_json(&format!("/api/logs?offset={offset}")).await;
    assert_eq!(empty["text"], "");
    assert_eq!(empty["offset"], offset, "polling the log does not log");

    mock.svc("notfound").await.expect("svc");
    let (_, next) = mock.get_json(&format!("/api/logs?offset={offset}")).await;
    let text = next["text"].as_str().expect("text");
    assert!(text.contains("GET /svc/notfound 404"), "{text}");
    assert!(
        !text.contains("/api/heartbeat"),
        "only lines after the offset: {text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(next["offset"].as_u64().expect("offset") > offset);
    assert_eq!(next["truncated"], false);

    let (status, _) = mock.get_json("/api/logs").await;
    assert_eq!(status, StatusCode::OK, "offset defaults to 0");
    for bad in ["abc", "-1", "99999999"] {
        let (status, body) = mock.get_json(&format!("/api/logs?offset={bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

#[tokio::test]
async fn a_capped_log_reports_truncation_and_keeps_offsets_growing() {
    let mock = start_with(MockState::with_log_cap(Some(KEY.to_owned()), 200)).await;
    for _ in 0..10 {
        mock.svc("healthy").await.expect("svc");
    }
    let (_, chunk) = mock.get_json("/api/logs?offset=0").await;
    assert_eq!(chunk["truncated"], true, "{chunk}");
    let start = chunk["start"].as_u64().expect("start");
    let end = chunk["offset"].as_u64().expect("offset");
    assert!(start > 0 && end > 200, "{chunk}");
    let text = chunk["text"].as_str().expect("text");
    assert!(text.len() <= 200);
    assert_eq!(end - start, text.len() as u64);
}

#[tokio::test]
async fn answering_services_give_their_status_codes() {
    let mock = start().await;
    for (name, code) in [
        ("healthy", 200),
        ("error500", 500),
        ("notfound", 404),
        ("nosuch", 404),
    ] {
        let r = mock.svc(name).await.expect("svc");
        assert_eq!(r.status().as_u16(), code, "{name}");
        let r = mock
            .client
            .head(mock.url(&format!("/svc/{name}")))
            .send()
            .await
            .expect("head");
        assert_eq!(r.status().as_u16(), code, "HEAD {name}");
    }
}

#[tokio::test]
async fn ping_follows_the_online_switch() {
    let mock = start().await;
    let r = mock
        .client
        .head(mock.url("/ping"))
        .send()
        .await
        .expect("ping");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    mock.set(json!({"online": false})).await;
    let r = mock
        .client
        .head(mock.url("/ping"))
        .send()
        .await
        .expect("ping");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn slow_answers_after_its_delay() {
    let mock = start().await;
    mock.set(json!({"services": {"slow": {"delay_ms": 400}}}))
        .await;
    let started = Instant::now();
    let r = mock.svc("slow").await.expect("svc");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn timeout_never_answers_and_lets_go_when_the_client_leaves() {
    let mock = start().await;
    let impatient = client(Duration::from_millis(300));
    let err = impatient
        .get(mock.url("/svc/timeout"))
        .send()
        .await
        .expect_err("never answers");
    assert!(err.is_timeout(), "{err:?}");
    drop(impatient);
    // The parked handler ends when its connection closes.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, cfg) = mock.get_json("/api/config").await;
        if cfg["stalled_requests"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "parked request never released: {cfg}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The server still answers everything else.
    assert_eq!(
        mock.svc("healthy").await.expect("svc").status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn shutdown_is_not_held_by_a_parked_request() {
    let mock = start().await;
    let parked = tokio::spawn({
        let c = mock.client.clone();
        let url = mock.url("/svc/timeout");
        async move { c.get(url).send().await }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while mock.state.simulation().services["timeout"].requests == 0 {
        assert!(Instant::now() < deadline, "request never arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    mock.state.shutdown_token().cancel();
    let served = tokio::time::timeout(Duration::from_secs(10), mock.server)
        .await
        .expect("serve returns after shutdown")
        .expect("join");
    assert!(served.is_ok());
    let answer = parked
        .await
        .expect("join")
        .expect("released with an answer");
    assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn down_closes_the_connection_without_an_answer() {
    let mock = start().await;
    let err = mock.svc("down").await.expect_err("no response");
    assert!(err.status().is_none() && !err.is_timeout(), "{err:?}");
    let (_, log) = mock.get_json("/api/logs").await;
    assert!(
        log["text"]
            .as_str()
            .expect("text")
            .contains("GET /svc/down closed"),
        "{log}"
    );
    // Live switch back: the same service answers again.
    mock.set(json!({"services": {"down": {"behavior": "healthy"}}}))
        .await;
    assert_eq!(
        mock.svc("down").await.expect("svc").status(),
        StatusCode::OK
    );
    mock.set(json!({"services": {"healthy": {"behavior": "down"}}}))
        .await;
    assert!(mock.svc("healthy").await.is_err());
}

#[tokio::test]
async fn flapping_alternates() {
    let mock = start().await;
    let mut codes = Vec::new();
    for _ in 0..4 {
        codes.push(mock.svc("flapping").await.expect("svc").status().as_u16());
    }
    assert_eq!(codes, [200, 500, 200, 500]);
}

#[tokio::test]
async fn the_alert_sink_records_posts_oldest_first() {
    let mock = start().await;
    for (title, message) in [("down", "**api** is down"), ("up", "**api** recovered")] {
        let r = mock
            .client
            .post(mock.url("/api/alerts"))
            .json(&json!({"title": title, "message": message}))
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = mock
        .client
        .post(mock.url("/api/alerts"))
        .json(&json!({"text": "no title"}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let (_, body) = mock.get_json("/api/alerts").await;
    assert_eq!(body["count"], 2, "{body}");
    assert_eq!(body["alerts"][0]["title"], "down");
    assert_eq!(body["alerts"][0]["id"], 1);
    assert_eq!(body["alerts"][1]["message"], "**api** recovered");
    assert_eq!(body["alerts"][1]["id"], 2);
}

#[tokio::test]
async fn the_page_has_the_controls() {
    let mock = start().await;
    let r = mock.client.get(mock.url("/")).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let html = r.text().await.expect("text");
    for id in [
        "online",
        "mode",
        "host-status",
        "services",
        "log",
        "alerts",
        "heartbeat",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "missing #{id}");
    }
    assert!(html.contains("/api/logs?offset="));
    assert!(!html.contains("https://"), "no CDN");
}

fn own_port(cfg: &Value, name: &str) -> u16 {
    cfg["services"][name]["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or_else(|| panic!("no port of its own for '{name}': {cfg}"))
}

async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn refused(port: u16) -> bool {
    matches!(
        tokio::net::TcpStream::connect(("127.0.0.1", port)).await,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

#[tokio::test]
async fn down_refuses_connections_on_its_own_port_like_a_stopped_service() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mock = start().await;
    let (_, cfg) = mock.get_json("/api/config").await;
    let down = own_port(&cfg, "down");
    assert!(refused(down).await, "connect to down's port is refused");
    let err = mock
        .client
        .get(format!("http://127.0.0.1:{down}/"))
        .send()
        .await
        .expect_err("refused");
    assert!(err.is_connect(), "{err:?}");

    // Every other service answers on its own port, any path.
    let healthy = own_port(&cfg, "healthy");
    for (name, code) in [("healthy", 200), ("error500", 500), ("notfound", 404)] {
        let r = mock
            .client
            .head(format!("http://127.0.0.1:{}/health", own_port(&cfg, name)))
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status().as_u16(), code, "{name}");
    }

    // Switched to down: a kept-alive connection is closed and new ones are refused.
    let mut kept = tokio::net::TcpStream::connect(("127.0.0.1", healthy))
        .await
        .expect("connect");
    kept.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = vec![0u8; 1024];
    let n = kept.read(&mut buf).await.expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    mock.set(json!({"services": {"healthy": {"behavior": "down"}}}))
        .await;
    let closed = tokio::time::timeout(Duration::from_secs(10), kept.read(&mut buf))
        .await
        .expect("the kept-alive connection is closed");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    eventually("healthy's port to refuse", async || {
        refused(healthy).await.then_some(())
    })
    .await;

    // Back up: the same port answers again.
    mock.set(json!({"services": {"healthy": {"behavior": "healthy"}}}))
        .await;
    let client = mock.client.clone();
    eventually("healthy's port to answer again", async || {
        let r = client
            .get(format!("http://127.0.0.1:{healthy}/"))
            .send()
            .await
            .ok()?;
        (r.status() == StatusCode::OK).then_some(())
    })
    .await;
    let (_, cfg) = mock.get_json("/api/config").await;
    assert_eq!(
        own_port(&cfg, "healthy"),
        healthy,
        "the port stays the same"
    );
    let (_, log) = mock.get_json("/api/logs").await;
    assert!(
        log["text"]
            .as_str()
            .expect("text")
            .contains(&format!("GET healthy:{healthy}/ 200")),
        "{log}"
    );
}

#[tokio::test]
async fn a_scenario_takes_its_service_down_and_back_until_a_manual_change_stops_it() {
    let state = MockState::new(Some(KEY.to_owned()));
    state.set_scenario(hb_mock::Scenario {
        service: "scripted".into(),
        healthy_for: Duration::from_millis(300),
        down_for: Duration::from_millis(300),
    });
    let mock = start_with(state).await;
    let (_, cfg) = mock.get_json("/api/config").await;
    assert_eq!(cfg["services"]["scripted"]["behavior"], "healthy", "{cfg}");
    assert_eq!(cfg["scenario"]["active"], true, "{cfg}");
    let port = own_port(&cfg, "scripted");
    let client = mock.client.clone();
    let base = mock.base.clone();
    let behavior = async |want: &str| {
        let r = client.get(format!("{base}/api/config")).send().await.ok()?;
        let cfg: Value = r.json().await.ok()?;
        (cfg["services"]["scripted"]["behavior"] == want).then_some(())
    };
    eventually("the script to take it down", async || {
        behavior("down").await
    })
    .await;
    eventually("its port to refuse", async || {
        refused(port).await.then_some(())
    })
    .await;
    eventually("the script to bring it back", async || {
        behavior("healthy").await
    })
    .await;
    eventually("down again: it loops", async || behavior("down").await).await;

    // A manual change wins, and the script stays stopped.
    mock.set(json!({"services": {"scripted": {"behavior": "error500"}}}))
        .await;
    let (_, cfg) = mock.get_json("/api/config").await;
    assert_eq!(cfg["scenario"]["active"], false, "{cfg}");
    // Several phases later it is still what the visitor chose.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, cfg) = mock.get_json("/api/config").await;
    assert_eq!(cfg["services"]["scripted"]["behavior"], "error500", "{cfg}");
    let (_, log) = mock.get_json("/api/logs").await;
    let text = log["text"].as_str().expect("text");
    assert!(
        text.contains("scenario service scripted behavior=down"),
        "{text}"
    );
    assert!(
        text.contains("scenario stopped: scripted changed by hand"),
        "{text}"
    );
}
