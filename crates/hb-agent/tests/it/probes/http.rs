//! HTTP probe: every status of the taxonomy produced by a real server on 127.0.0.1, the HEAD→GET
//! fallback, headers, keep-alive, the DNS override, and DNS failure inside a private netns.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::IntoResponse;
use axum::serve::ListenerExt;
use hb_agent::probes::{HttpProber, HttpProberSettings};
use hb_config::Secret;
use hb_core::ServiceStatus;

#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
}

/// A real HTTP server that records every request and every accepted connection. The path
/// picks the answer: `/status/<code>`, `/nohead` (405 to HEAD, 200 to GET), anything else 200.
struct Recorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
}

impl Recorder {
    async fn start() -> Recorder {
        Recorder::start_on("127.0.0.1").await
    }

    async fn start_on(ip: &str) -> Recorder {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let listener = tokio::net::TcpListener::bind((ip, 0))
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local addr");
        let record = seen.clone();
        let app = Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap| {
            let record = record.clone();
            async move {
                let path = uri.path().to_string();
                record.lock().expect("recorder lock").push(Seen {
                    method: method.clone(),
                    path: path.clone(),
                    headers,
                });
                answer(&method, &path)
            }
        });
        let counter = connections.clone();
        let listener = listener.tap_io(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Recorder {
            addr,
            seen,
            connections,
        }
    }

    fn url(&self, path: &str) -> url::Url {
        url::Url::parse(&format!("http://{}{path}", self.addr)).expect("test URL")
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("recorder lock").clone()
    }
}

fn answer(method: &Method, path: &str) -> axum::response::Response {
    if path == "/nohead" {
        return if method == Method::HEAD {
            StatusCode::METHOD_NOT_ALLOWED.into_response()
        } else {
            (StatusCode::OK, "a body nobody reads").into_response()
        };
    }
    let code = path
        .strip_prefix("/status/")
        .and_then(|c| c.parse::<u16>().ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::OK);
    if code.is_redirection() {
        return (code, [(header::LOCATION, "/elsewhere")]).into_response();
    }
    code.into_response()
}

fn settings(timeout: Duration) -> HttpProberSettings {
    HttpProberSettings {
        timeout,
        force_ipv4: true,
        dns_override_ip: None,
        pool_idle_timeout: Duration::from_secs(90),
    }
}

fn prober() -> HttpProber {
    HttpProber::new(&settings(Duration::from_secs(2))).expect("prober builds")
}

#[tokio::test]
async fn status_codes_follow_the_taxonomy() {
    let server = Recorder::start().await;
    let p = prober();
    let table = [
        ("/status/200", ServiceStatus::Healthy, 200, None),
        ("/status/301", ServiceStatus::Healthy, 301, None),
        ("/status/302", ServiceStatus::Healthy, 302, None),
        ("/status/404", ServiceStatus::Error, 404, Some("HTTP 404")),
        ("/status/500", ServiceStatus::Error, 500, Some("HTTP 500")),
    ];
    for (path, status, code, reason) in table {
        let o = p.check(&server.url(path), &[]).await;
        assert_eq!(o.status, status, "{path}: {o:?}");
        assert_eq!(o.status_code, Some(code), "{path}");
        assert_eq!(o.reason.as_deref(), reason, "{path}");
        assert!(o.latency_ms.is_some(), "{path}: a response has a latency");
    }
    let seen = server.seen();
    assert!(
        seen.iter().all(|s| s.method == Method::HEAD),
        "only HEAD was sent: {seen:?}"
    );
    assert!(
        !seen.iter().any(|s| s.path == "/elsewhere"),
        "redirects are not followed: {seen:?}"
    );
    assert_eq!(seen.len(), table.len());
}

#[tokio::test]
async fn head_refused_falls_back_to_get() {
    let server = Recorder::start().await;
    let o = prober().check(&server.url("/nohead"), &[]).await;
    assert_eq!(o.status, ServiceStatus::Healthy, "{o:?}");
    assert_eq!(o.status_code, Some(200));
    let methods: Vec<Method> = server.seen().into_iter().map(|s| s.method).collect();
    assert_eq!(methods, [Method::HEAD, Method::GET]);
}

#[tokio::test]
async fn configured_headers_are_sent() {
    let server = Recorder::start().await;
    let headers = [
        ("X-Api-Key".to_string(), Secret::new("k3y:with:colons")),
        ("Authorization".to_string(), Secret::new("Bearer a:b")),
    ];
    let o = prober().check(&server.url("/"), &headers).await;
    assert_eq!(o.status, ServiceStatus::Healthy, "{o:?}");
    let seen = server.seen();
    let got = &seen[0].headers;
    assert_eq!(got["x-api-key"], "k3y:with:colons");
    assert_eq!(got["authorization"], "Bearer a:b");
}

#[tokio::test]
async fn latency_has_sub_millisecond_precision() {
    let server = Recorder::start().await;
    let o = prober().check(&server.url("/"), &[]).await;
    let ms = o.latency_ms.expect("latency of a response");
    assert!(ms > 0.0, "{ms}");
    assert_ne!(ms.fract(), 0.0, "latency is not rounded to whole ms: {ms}");
}

#[tokio::test]
async fn connections_are_kept_alive_across_checks() {
    let server = Recorder::start().await;
    let p = prober();
    for _ in 0..2 {
        let o = p.check(&server.url("/"), &[]).await;
        assert_eq!(o.status, ServiceStatus::Healthy, "{o:?}");
    }
    assert_eq!(server.seen().len(), 2);
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn silent_server_is_a_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    // Accepts and holds every connection, never answering.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let p = HttpProber::new(&settings(Duration::from_millis(300))).expect("prober");
    let url = url::Url::parse(&format!("http://{addr}/")).expect("url");
    let o = p.check(&url, &[]).await;
    assert_eq!(o.status, ServiceStatus::Timeout, "{o:?}");
    assert_eq!(o.reason.as_deref(), Some("Timeout"));
    assert_eq!(o.latency_ms, None);
    assert_eq!(o.status_code, None);
}

#[tokio::test]
async fn closed_port_is_down_refused_and_reason_has_no_credentials() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let url = url::Url::parse(&format!("http://user:s3cret@{addr}/path?token=t0ken")).expect("url");
    let o = prober().check(&url, &[]).await;
    assert_eq!(o.status, ServiceStatus::Down, "{o:?}");
    let reason = o.reason.expect("a reason");
    assert_eq!(reason, "Connection refused");
    assert!(!reason.contains("s3cret") && !reason.contains("t0ken"));
}

#[tokio::test]
async fn https_to_a_plain_http_server_is_a_tls_failure() {
    let server = Recorder::start().await;
    let url = url::Url::parse(&format!("https://{}/", server.addr)).expect("url");
    let o = prober().check(&url, &[]).await;
    assert_eq!(o.status, ServiceStatus::Down, "{o:?}");
    let reason = o.reason.expect("a reason");
    assert!(reason.starts_with("TLS error: "), "{reason}");
}

#[tokio::test]
async fn self_signed_certificate_is_a_tls_failure() {
    let addr = self_signed_tls_server();
    let url = url::Url::parse(&format!("https://localhost:{}/", addr.port())).expect("url");
    let o = prober().check(&url, &[]).await;
    assert_eq!(o.status, ServiceStatus::Down, "{o:?}");
    let reason = o.reason.expect("a reason");
    assert!(reason.starts_with("TLS error: "), "{reason}");
    assert!(reason.contains("certificate"), "{reason}");
}

/// A TLS server with a self-signed certificate for `localhost`, handshaking on a plain thread.
fn self_signed_tls_server() -> SocketAddr {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let cert = key.cert.der().clone();
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert], private)
        .expect("server config");
    let config = Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let Ok(mut conn) = rustls::ServerConnection::new(config.clone()) else {
                return;
            };
            // The client rejects the certificate, so the handshake ends in an error here.
            while conn.is_handshaking() {
                if conn.complete_io(&mut stream).is_err() {
                    break;
                }
            }
        }
    });
    addr
}

#[tokio::test]
async fn dns_override_sends_plain_http_to_the_ip_with_the_url_host() {
    // The service listens on 127.0.0.2 and the internet target on 127.0.0.1, so an overridden
    // internet check would hit the wrong address and fail.
    let service = Recorder::start_on("127.0.0.2").await;
    let internet = Recorder::start().await;
    let override_ip: IpAddr = "127.0.0.2".parse().expect("ip");
    let p = HttpProber::new(&HttpProberSettings {
        dns_override_ip: Some(override_ip),
        ..settings(Duration::from_secs(2))
    })
    .expect("prober");

    let port = service.addr.port();
    let url = url::Url::parse(&format!("https://app.example.test:{port}/health?x=1")).expect("url");
    let headers = [("X-Api-Key".to_string(), Secret::new("v"))];
    let o = p.check(&url, &headers).await;
    assert_eq!(o.status, ServiceStatus::Healthy, "{o:?}");
    assert_eq!(o.status_code, Some(200));
    let seen = service.seen();
    assert_eq!(
        seen.len(),
        1,
        "the plain-HTTP server got the https URL's request"
    );
    assert_eq!(seen[0].path, "/health");
    assert_eq!(
        seen[0].headers[header::HOST],
        format!("app.example.test:{port}").as_str()
    );
    assert_eq!(seen[0].headers["x-api-key"], "v");

    let ping_url = format!("http://127.0.0.1:{}/", internet.addr.port());
    let net = p.internet(&ping_url).await;
    assert!(net.online, "{net:?}");
    assert!(net.ping_ms.is_some());
    let seen = internet.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, Method::HEAD);
    assert_eq!(
        seen[0].headers[header::HOST],
        format!("127.0.0.1:{}", internet.addr.port()).as_str()
    );
}

#[tokio::test]
async fn internet_check_online_and_offline() {
    let server = Recorder::start().await;
    let p = prober();
    let ok = p.internet(server.url("/status/204").as_str()).await;
    assert!(ok.online, "{ok:?}");
    assert!(ok.ping_ms.expect("ping") > 0.0);
    let failing = p.internet(server.url("/status/503").as_str()).await;
    assert!(!failing.online);
    assert_eq!(failing.ping_ms, None);
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let refused = p.internet(&format!("http://{addr}/")).await;
    assert!(!refused.online);
    assert_eq!(refused.ping_ms, None);
}

/// Name resolution must fail without asking the machine's resolver: the assertion runs in a
/// copy of this test binary inside a network namespace that has only loopback.
#[test]
fn dns_failure_is_down() {
    if super::in_netns_child() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let o = rt.block_on(async {
            let url = url::Url::parse("http://nothing.invalid/").expect("url");
            prober().check(&url, &[]).await
        });
        assert_eq!(o.status, ServiceStatus::Down, "{o:?}");
        assert_eq!(o.reason.as_deref(), Some("DNS resolution failed"));
        return;
    }
    super::run_in_loopback_netns("probes::http::dns_failure_is_down");
}
