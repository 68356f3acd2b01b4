//! The limits every server of the binary shares, through the real `heartbeat dashboard`: many
//! clients that send half a request head and stop are closed after the default header-read
//! timeout (about 10 s), a normal request is answered all along, and memory stays bounded.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::common::{ServerProcess, heartbeat, rss_kib};

const STALLED: usize = 500;

async fn get_health(client: &reqwest::Client, server: &ServerProcess) -> u16 {
    client
        .get(server.url("/health"))
        .send()
        .await
        .expect("a normal request is answered")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_closes_half_sent_requests_after_the_default_timeout_and_keeps_answering() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = heartbeat();
    cmd.args(["dashboard", "--bind", "127.0.0.1:0"])
        .env("SQLITE_DB_PATH", dir.path().join("metrics.db"));
    let server = ServerProcess::spawn(cmd, "dashboard listening");
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    assert_eq!(get_health(&client, &server).await, 200);
    let rss_before = rss_kib(server.pid());

    let started = Instant::now();
    let mut stalled = Vec::with_capacity(STALLED);
    for _ in 0..STALLED {
        let mut s = TcpStream::connect(server.addr).await.expect("connect");
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        stalled.push(s);
    }
    // Answered while every stalled client is still connected.
    for _ in 0..3 {
        assert_eq!(get_health(&client, &server).await, 200);
    }
    let rss_held = rss_kib(server.pid());

    let mut closers = tokio::task::JoinSet::new();
    for mut s in stalled {
        closers.spawn(async move {
            let mut buf = [0u8; 512];
            // Generous: the default timeout is 10 s; without one they stay open for ever.
            let deadline = Instant::now() + Duration::from_secs(40);
            loop {
                match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                    Err(_) => return None,
                    Ok(Ok(0) | Err(_)) => return Some(Instant::now()),
                    Ok(Ok(_)) => {}
                }
            }
        });
    }
    let mut open = 0;
    let mut first_close: Option<Instant> = None;
    while let Some(closed) = closers.join_next().await {
        match closed.expect("join") {
            None => open += 1,
            Some(at) => first_close = Some(first_close.map_or(at, |f| f.min(at))),
        }
    }
    assert_eq!(open, 0, "half-sent requests still open after 40 s");
    let first = first_close.expect("closed").duration_since(started);
    assert!(
        first >= Duration::from_secs(9),
        "closed after {first:?}, before the 10 s header-read timeout"
    );
    assert_eq!(get_health(&client, &server).await, 200);
    let rss_after = rss_kib(server.pid());
    eprintln!("VmRSS KiB: before {rss_before}, holding {STALLED}: {rss_held}, after: {rss_after}");
    // Generous bounds: each held connection costs a few KiB, not megabytes.
    assert!(
        rss_held < rss_before + 64 * 1024,
        "VmRSS {rss_before} -> {rss_held} KiB holding {STALLED} connections"
    );
    assert!(
        rss_after < rss_before + 64 * 1024,
        "VmRSS {rss_before} -> {rss_after} KiB after they were closed"
    );
    let log = std::sync::Arc::clone(&server.log);
    let (status, _) = server.process.stop();
    let log = log.lock().expect("lock").clone();
    assert!(status.success(), "{log}");
    assert!(log.contains("shutdown requested"), "{log}");
}
