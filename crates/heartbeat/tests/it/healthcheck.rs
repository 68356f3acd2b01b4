//! `heartbeat healthcheck --url` through the binary: 0 for a healthy dashboard, 1 for nothing
//! listening, a 5xx, a redirect or garbage; a real HTTP client, so an answer that arrives in
//! pieces is read whole.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::common::{Server, ServerProcess, heartbeat};

async fn healthcheck(url: String) -> (Option<i32>, String) {
    let mut cmd = heartbeat();
    cmd.args(["healthcheck", "--url", &url]);
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run"))
        .await
        .expect("join");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A raw server answering every connection with `parts`, written one by one with a pause in
/// between (so they reach the client as separate reads).
async fn raw_server(parts: Vec<&'static [u8]>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let parts = parts.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                for part in parts {
                    if s.write_all(part).await.is_err() {
                        return;
                    }
                    let _ = s.flush().await;
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn healthcheck_url_exit_codes_through_the_binary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = heartbeat();
    cmd.args(["dashboard", "--bind", "127.0.0.1:0"])
        .env("SQLITE_DB_PATH", dir.path().join("metrics.db"));
    let dashboard = ServerProcess::spawn(cmd, "dashboard listening");
    let (code, out) = healthcheck(dashboard.url("/health")).await;
    assert_eq!(code, Some(0), "healthy dashboard: {out}");
    assert!(out.contains("answered 200"), "{out}");

    let broken = Server::start(500).await;
    let (code, out) = healthcheck(broken.url("/health")).await;
    assert_eq!(code, Some(1), "500: {out}");
    assert!(out.contains("answered 500"), "{out}");

    let nothing = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr")
    };
    let (code, out) = healthcheck(format!("http://{nothing}/health")).await;
    assert_eq!(code, Some(1), "nothing listening: {out}");

    // Not followed: a redirect is not a healthy answer.
    let redirect = Server::start(302).await;
    let (code, out) = healthcheck(redirect.url("/")).await;
    assert_eq!(code, Some(1), "302: {out}");

    let garbage = raw_server(vec![b"SSH-2.0-OpenSSH_9.2\r\n"]).await;
    let (code, out) = healthcheck(format!("http://{garbage}/")).await;
    assert_eq!(code, Some(1), "not HTTP: {out}");

    let (code, out) = healthcheck("ftp://127.0.0.1/".to_owned()).await;
    assert_eq!(code, Some(1), "not an http URL: {out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn healthcheck_reads_an_answer_that_arrives_in_pieces() {
    let addr = raw_server(vec![
        b"HTTP/1.1 2",
        b"00 OK\r\nContent-Length: 2\r\n",
        b"Connection: close\r\n\r\nok",
    ])
    .await;
    let (code, out) = healthcheck(format!("http://{addr}/health")).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("answered 200"), "{out}");
}
