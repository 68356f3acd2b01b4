//! A service's own check options against a real server on 127.0.0.1: the healthy codes
//! (`SERVICE_EXPECT_<name>`), the method, the keyword searched in at most 1 MiB of body within
//! the timeout, and the per-service timeout.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hb_agent::probes::http::KEYWORD_NOT_FOUND;
use hb_agent::probes::{HttpProber, HttpProberSettings};
use hb_config::{CheckOptions, HttpMethod, KEYWORD_BODY_LIMIT};
use hb_core::ServiceStatus;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A plain HTTP/1.1 server written out by hand, so the test decides how a body is cut into
/// chunks and when it stops. It records the method of every request. `/status/<code>` answers
/// that code, `/nohead` 405 to HEAD, `/page?before=N&word=W&chunk=C&code=S` N bytes of filler,
/// then W, in chunks of C bytes, `/stall` the start of a body that never ends, `/slow?ms=N`
/// its headers after N ms. One request per connection.
struct Target {
    addr: SocketAddr,
    methods: Arc<Mutex<Vec<String>>>,
}

impl Target {
    async fn start() -> Target {
        let methods = Arc::new(Mutex::new(Vec::new()));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let record = methods.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, record.clone()));
            }
        });
        Target { addr, methods }
    }

    fn url(&self, path: &str) -> url::Url {
        url::Url::parse(&format!("http://{}{path}", self.addr)).expect("url")
    }

    fn methods(&self) -> Vec<String> {
        std::mem::take(&mut *self.methods.lock().expect("lock"))
    }
}

async fn serve(socket: TcpStream, methods: Arc<Mutex<Vec<String>>>) -> std::io::Result<()> {
    socket.set_nodelay(true)?;
    let mut reader = BufReader::new(socket);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await? == 0 || header == "\r\n" {
            break;
        }
    }
    methods.lock().expect("lock").push(method.clone());
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query: HashMap<&str, &str> = query.split('&').filter_map(|p| p.split_once('=')).collect();
    let mut socket = reader.into_inner();
    let head = |code: u16, chunked: bool| {
        let framing = if chunked {
            "transfer-encoding: chunked"
        } else {
            "content-length: 0"
        };
        format!("HTTP/1.1 {code} X\r\n{framing}\r\nconnection: close\r\n\r\n")
    };
    let number = |key: &str, default: usize| -> usize {
        query
            .get(key)
            .map_or(default, |v| v.parse().expect("number"))
    };
    if let Some(code) = path.strip_prefix("/status/") {
        return socket
            .write_all(head(code.parse().expect("code"), false).as_bytes())
            .await;
    }
    match path {
        "/nohead" if method == "HEAD" => socket.write_all(head(405, false).as_bytes()).await,
        "/page" => {
            let code = u16::try_from(number("code", 200)).expect("code");
            socket.write_all(head(code, true).as_bytes()).await?;
            let mut body = vec![b'a'; number("before", 0)];
            body.extend_from_slice(query.get("word").copied().unwrap_or_default().as_bytes());
            body.extend_from_slice(b" and the rest");
            for chunk in body.chunks(number("chunk", 64 * 1024)) {
                socket
                    .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
                socket.write_all(chunk).await?;
                socket.write_all(b"\r\n").await?;
                socket.flush().await?;
            }
            socket.write_all(b"0\r\n\r\n").await
        }
        "/stall" => {
            socket.write_all(head(200, true).as_bytes()).await?;
            socket.write_all(b"b\r\nthe start, \r\n").await?;
            // Holds the body open without another byte until the client gives up.
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(number("ms", 0) as u64)).await;
            socket.write_all(head(200, false).as_bytes()).await
        }
        _ => socket.write_all(head(200, false).as_bytes()).await,
    }
}

fn prober(timeout: Duration) -> HttpProber {
    HttpProber::new(&HttpProberSettings {
        timeout,
        force_ipv4: true,
        dns_override_ip: None,
        pool_idle_timeout: Duration::from_secs(90),
    })
    .expect("prober")
}

fn keyword(word: &str) -> CheckOptions {
    CheckOptions {
        keyword: Some(word.to_owned()),
        ..CheckOptions::default()
    }
}

#[tokio::test]
async fn expected_codes_replace_the_default_taxonomy() {
    let server = Target::start().await;
    let p = prober(Duration::from_secs(2));
    let options = CheckOptions {
        expect: Some(vec![(200, 299), (401, 401)]),
        ..CheckOptions::default()
    };
    let table = [
        (200, ServiceStatus::Healthy, None),
        (204, ServiceStatus::Healthy, None),
        (401, ServiceStatus::Healthy, None),
        // 3xx counts by default, but not when the service names its codes.
        (302, ServiceStatus::Error, Some("HTTP 302")),
        (403, ServiceStatus::Error, Some("HTTP 403")),
        (503, ServiceStatus::Error, Some("HTTP 503")),
    ];
    for (code, status, reason) in table {
        let o = p
            .check_with(&server.url(&format!("/status/{code}")), &[], &options)
            .await;
        assert_eq!(o.status, status, "{code}: {o:?}");
        assert_eq!(o.status_code, Some(code), "{code}");
        assert_eq!(o.reason.as_deref(), reason, "{code}");
        assert!(o.latency_ms.is_some(), "{code}");
    }
    // Still HEAD, as without options.
    assert!(server.methods().iter().all(|m| m == "HEAD"));
}

#[tokio::test]
async fn the_method_is_used_as_given_without_the_get_fallback() {
    let server = Target::start().await;
    let p = prober(Duration::from_secs(2));
    let get = CheckOptions {
        method: Some(HttpMethod::Get),
        ..CheckOptions::default()
    };
    let o = p.check_with(&server.url("/"), &[], &get).await;
    assert_eq!(o.status, ServiceStatus::Healthy, "{o:?}");
    assert_eq!(server.methods(), ["GET"]);

    let head = CheckOptions {
        method: Some(HttpMethod::Head),
        ..CheckOptions::default()
    };
    let o = p.check_with(&server.url("/nohead"), &[], &head).await;
    assert_eq!(o.status, ServiceStatus::Error, "{o:?}");
    assert_eq!(o.reason.as_deref(), Some("HTTP 405"));
    assert_eq!(server.methods(), ["HEAD"], "no GET retry");

    // Without a method the old behaviour stays: HEAD, then GET on 405.
    let o = p
        .check_with(&server.url("/nohead"), &[], &CheckOptions::default())
        .await;
    assert_eq!(o.status, ServiceStatus::Healthy, "{o:?}");
    assert_eq!(server.methods(), ["HEAD", "GET"]);
}

#[tokio::test]
async fn a_keyword_is_searched_in_the_first_mib_of_the_body() {
    let server = Target::start().await;
    let p = prober(Duration::from_secs(5));
    let word = "all-systems-go";
    let limit = KEYWORD_BODY_LIMIT;
    let table = [
        // (filler before the word, chunk size, found)
        (0, 64 * 1024, true),
        (100, 64 * 1024, true),
        // Split over chunks of 5 bytes: the word crosses chunk boundaries.
        (3, 5, true),
        // Ends exactly at the limit: found; one byte further: beyond what is read.
        (limit - word.len(), 64 * 1024, true),
        (limit - word.len() + 1, 64 * 1024, false),
        (limit + 10, 64 * 1024, false),
    ];
    for (before, chunk, found) in table {
        let url = server.url(&format!("/page?before={before}&word={word}&chunk={chunk}"));
        let o = p.check_with(&url, &[], &keyword(word)).await;
        if found {
            assert_eq!(o.status, ServiceStatus::Healthy, "{before}/{chunk}: {o:?}");
            assert_eq!(o.reason, None);
        } else {
            assert_eq!(o.status, ServiceStatus::Error, "{before}/{chunk}: {o:?}");
            assert_eq!(o.reason.as_deref(), Some(KEYWORD_NOT_FOUND));
        }
        assert_eq!(o.status_code, Some(200));
        assert!(o.latency_ms.is_some());
    }
    // A body without the word at all.
    let o = p
        .check_with(&server.url("/page?before=10"), &[], &keyword(word))
        .await;
    assert_eq!(o.status, ServiceStatus::Error, "{o:?}");
    assert_eq!(o.reason.as_deref(), Some(KEYWORD_NOT_FOUND));
    assert!(
        server.methods().iter().all(|m| m == "GET"),
        "a keyword check uses GET"
    );
}

#[tokio::test]
async fn a_keyword_check_with_a_bad_status_reports_the_status() {
    let server = Target::start().await;
    let o = prober(Duration::from_secs(2))
        .check_with(
            &server.url("/page?before=0&word=ok&code=500"),
            &[],
            &keyword("ok"),
        )
        .await;
    assert_eq!(o.status, ServiceStatus::Error, "{o:?}");
    assert_eq!(o.reason.as_deref(), Some("HTTP 500"));
    assert_eq!(o.status_code, Some(500));
}

#[tokio::test]
async fn a_body_that_stalls_is_a_timeout() {
    let server = Target::start().await;
    let o = prober(Duration::from_millis(400))
        .check_with(&server.url("/stall"), &[], &keyword("never sent"))
        .await;
    assert_eq!(o.status, ServiceStatus::Timeout, "{o:?}");
    assert_eq!(o.reason.as_deref(), Some("Timeout"));
}

#[tokio::test]
async fn a_service_timeout_replaces_the_global_one_both_ways() {
    let server = Target::start().await;
    let slow = server.url("/slow?ms=700");
    let shorter = CheckOptions {
        timeout: Some(Duration::from_millis(200)),
        ..CheckOptions::default()
    };
    let o = prober(Duration::from_secs(5))
        .check_with(&slow, &[], &shorter)
        .await;
    assert_eq!(o.status, ServiceStatus::Timeout, "{o:?}");

    let longer = CheckOptions {
        timeout: Some(Duration::from_secs(5)),
        ..CheckOptions::default()
    };
    let o = prober(Duration::from_millis(200))
        .check_with(&slow, &[], &longer)
        .await;
    assert_eq!(o.status, ServiceStatus::Healthy, "{o:?}");
    let ms = o.latency_ms.expect("latency");
    assert!(ms >= 700.0, "latency is the time to the headers: {ms}");
}
