//! `hb_serve::serve` on a real listener bound to 127.0.0.1:0, with short limits: half-sent
//! requests and idle keep-alive connections are closed, the connection cap makes room for new
//! clients, oversized bodies are refused, the close marker hangs up, and shutdown drains.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use hb_serve::{CloseConnection, Limits};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Far above every limit a test sets: only a broken server makes a test wait this long.
const PATIENCE: Duration = Duration::from_secs(20);

/// `arrived` is notified when `/slow` or `/forever` has a request in hand.
fn router(arrived: Arc<Notify>) -> Router {
    let forever = Arc::clone(&arrived);
    Router::new()
        .route("/", get(|| async { "ok" }))
        .route(
            "/echo",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
        .route("/ignore", post(|| async { "ignored" }))
        .route(
            "/hangup",
            get(|| async {
                let mut r = "never sent".into_response();
                r.extensions_mut().insert(CloseConnection);
                r
            }),
        )
        .route(
            "/slow",
            get(move || async move {
                arrived.notify_one();
                tokio::time::sleep(Duration::from_millis(500)).await;
                "slow"
            }),
        )
        .route(
            "/forever",
            get(move || async move {
                forever.notify_one();
                std::future::pending::<&'static str>().await
            }),
        )
}

struct Server {
    addr: SocketAddr,
    arrived: Arc<Notify>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

async fn start(limits: Limits) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    let arrived = Arc::new(Notify::new());
    let app = router(Arc::clone(&arrived));
    let task = tokio::spawn(hb_serve::serve(listener, app, limits, async move {
        let _ = rx.await;
    }));
    Server {
        addr,
        arrived,
        stop: Some(tx),
        task,
    }
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests shutdown; the serve task's result once it returned.
    async fn stop(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("serve returns after shutdown")
            .expect("join")
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(PATIENCE)
        .build()
        .expect("client")
}

/// A connection that sent the start of a request head and stops.
async fn half_sent(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    s
}

/// Waits until the server closed `s` (EOF or reset); `None` when it is still open after `wait`.
async fn closed_within(s: &mut TcpStream, wait: Duration) -> Option<()> {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(()),
            // A 408 or similar before the close is fine: keep reading until the close.
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn half_sent_requests_are_closed_after_the_header_timeout_while_others_are_served() {
    let header_timeout = Duration::from_millis(1500);
    let server = start(Limits {
        header_read_timeout: header_timeout,
        idle_timeout: Duration::from_secs(60),
        ..Limits::default()
    })
    .await;
    let started = Instant::now();
    let mut held = Vec::new();
    for _ in 0..200 {
        held.push(half_sent(server.addr).await);
    }
    // A normal request is answered at once, not after the stalled ones.
    let r = client().get(server.url("/")).send().await.expect("get");
    assert_eq!(r.status(), 200);
    assert!(
        started.elapsed() < header_timeout,
        "the normal request waited for the stalled ones"
    );
    let mut closers = tokio::task::JoinSet::new();
    for mut s in held {
        closers.spawn(async move { closed_within(&mut s, PATIENCE).await });
    }
    while let Some(closed) = closers.join_next().await {
        assert!(
            closed.expect("join").is_some(),
            "a half-sent request stayed open"
        );
    }
    // The timer, not something else, closed them.
    assert!(started.elapsed() >= header_timeout);
    server.stop().await.expect("serve");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_keep_alive_connections_are_closed_after_the_idle_timeout() {
    let idle = Duration::from_millis(500);
    let server = start(Limits {
        header_read_timeout: Duration::from_secs(60),
        idle_timeout: idle,
        ..Limits::default()
    })
    .await;
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    let answered = Instant::now();
    assert!(
        closed_within(&mut s, PATIENCE).await.is_some(),
        "idle keep-alive connection never closed"
    );
    assert!(answered.elapsed() >= idle - Duration::from_millis(50));

    // A silent connection (nothing sent at all) is closed too, by the header-read timeout.
    let server = start(Limits {
        header_read_timeout: Duration::from_millis(500),
        ..Limits::default()
    })
    .await;
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    assert!(closed_within(&mut silent, PATIENCE).await.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn at_the_cap_the_oldest_idle_connections_make_room_for_new_clients() {
    let server = start(Limits {
        // Far longer than the test: only the cap can close these.
        header_read_timeout: Duration::from_secs(120),
        idle_timeout: Duration::from_secs(120),
        max_connections: 20,
        ..Limits::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..60 {
        held.push(half_sent(server.addr).await);
    }
    // Answered although every slot was taken by a stalled client.
    let client = client();
    for _ in 0..5 {
        let r = client.get(server.url("/")).send().await.expect("get");
        assert_eq!(r.text().await.expect("text"), "ok");
    }
    // The newest stalled clients hold the slots; the oldest were closed.
    let mut closed = 0;
    for s in held.iter_mut().take(30) {
        if closed_within(s, PATIENCE).await.is_some() {
            closed += 1;
        }
    }
    assert_eq!(closed, 30, "the oldest stalled connections were closed");
    let mut still_open = 0;
    for s in held.iter_mut().skip(50) {
        if closed_within(s, Duration::from_millis(200)).await.is_none() {
            still_open += 1;
        }
    }
    assert!(
        still_open > 0,
        "some of the newest stalled connections keep their slot"
    );
    server.stop().await.expect("serve");
}

#[tokio::test(flavor = "multi_thread")]
async fn request_bodies_over_the_limit_are_refused() {
    let server = start(Limits {
        max_body_bytes: 1024,
        ..Limits::default()
    })
    .await;
    let client = client();
    let small = client
        .post(server.url("/echo"))
        .body(vec![b'a'; 1000])
        .send()
        .await
        .expect("post");
    assert_eq!(small.text().await.expect("text"), "1000");
    for path in ["/echo", "/ignore"] {
        let big = client
            .post(server.url(path))
            .body(vec![b'a'; 4096])
            .send()
            .await
            .expect("post");
        assert_eq!(big.status(), 413, "{path}");
    }
    // Chunked (no Content-Length): refused while the handler reads it.
    let mut s = TcpStream::connect(server.addr).await.expect("connect");
    let chunk = "a".repeat(800);
    let request = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
         320\r\n{chunk}\r\n320\r\n{chunk}\r\n0\r\n\r\n"
    );
    s.write_all(request.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.expect("read");
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 413"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    server.stop().await.expect("serve");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_close_marker_hangs_up_without_an_answer() {
    let server = start(Limits::default()).await;
    let err = client()
        .get(server.url("/hangup"))
        .send()
        .await
        .expect_err("no answer");
    assert!(err.status().is_none() && !err.is_timeout(), "{err:?}");
    let r = client().get(server.url("/")).send().await.expect("get");
    assert_eq!(r.status(), 200, "the server goes on");
    server.stop().await.expect("serve");
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_lets_requests_in_flight_finish_and_is_not_held_by_idle_ones() {
    // A grace longer than PATIENCE: `stop` fails if anything but the slow request holds it.
    let server = start(Limits {
        shutdown_grace: Duration::from_secs(60),
        ..Limits::default()
    })
    .await;
    let mut half = half_sent(server.addr).await;
    // An idle keep-alive connection and a half-sent request: neither holds the shutdown.
    let mut idle = TcpStream::connect(server.addr).await.expect("connect");
    idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = vec![0u8; 4096];
    let _ = idle.read(&mut buf).await.expect("read");
    let in_flight = tokio::spawn({
        let url = server.url("/slow");
        async move { client().get(url).send().await }
    });
    server.arrived.notified().await;
    server.stop().await.expect("serve");
    let answer = in_flight.await.expect("join").expect("answered");
    assert_eq!(answer.text().await.expect("text"), "slow");
    assert!(closed_within(&mut idle, PATIENCE).await.is_some());
    assert!(closed_within(&mut half, PATIENCE).await.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_that_never_ends_is_cut_after_the_shutdown_grace() {
    let server = start(Limits {
        shutdown_grace: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let stuck = tokio::spawn({
        let url = server.url("/forever");
        async move { client().get(url).send().await }
    });
    server.arrived.notified().await;
    server.stop().await.expect("serve returns after the grace");
    assert!(stuck.await.expect("join").is_err());
}
