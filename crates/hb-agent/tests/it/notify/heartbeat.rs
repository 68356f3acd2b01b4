//! The heartbeat sender against a real receiver.

use std::time::Duration;

use hb_agent::notify::HeartbeatSender;
use hb_config::Secret;
use hb_core::{CheckOutcome, ServiceKind, ServiceResult};

use super::receiver::{Receiver, Reply, closed_port_url};

fn service(name: &str, kind: ServiceKind, outcome: CheckOutcome) -> ServiceResult {
    ServiceResult {
        name: name.to_owned(),
        kind,
        url: String::new(),
        outcome,
    }
}

fn services() -> Vec<ServiceResult> {
    vec![
        service(
            "db",
            ServiceKind::Docker,
            CheckOutcome::down("Container state: exited"),
        ),
        service("zeta", ServiceKind::Http, CheckOutcome::timeout()),
        service("Cache", ServiceKind::Docker, CheckOutcome::healthy(None)),
        service("api", ServiceKind::Http, CheckOutcome::healthy(Some(3.2))),
        service(
            "Billing",
            ServiceKind::Http,
            CheckOutcome::from_http_status(503, 9.0),
        ),
    ]
}

#[tokio::test]
async fn body_bytes_and_headers_are_exact() {
    let mut rx = Receiver::start(vec![Reply::Status(200)]).await;
    let sender =
        HeartbeatSender::new(Secret::new(rx.url()), Some(Secret::new("sk_test_123"))).unwrap();

    assert_eq!(sender.send(&services()).await, Some(200));

    let got = rx.drain();
    assert_eq!(got.len(), 1);
    assert_eq!(
        std::str::from_utf8(&got[0].body).unwrap(),
        r#"{"services":{"api":{"status":"healthy"},"Billing":{"status":"error"},"zeta":{"status":"timeout"},"Cache":{"status":"healthy"},"db":{"status":"down"}}}"#
    );
    assert_eq!(got[0].headers["authorization"], "Bearer sk_test_123");
    assert_eq!(got[0].headers["content-type"], "application/json");
}

#[tokio::test]
async fn no_key_means_no_authorization_header() {
    let mut rx = Receiver::start(vec![Reply::Status(200)]).await;
    let sender = HeartbeatSender::new(Secret::new(rx.url()), None).unwrap();
    assert_eq!(sender.send(&[]).await, Some(200));
    let got = rx.drain();
    assert_eq!(got[0].body.as_ref(), br#"{"services":{}}"#);
    assert!(got[0].headers.get("authorization").is_none());
}

#[tokio::test]
async fn reports_whatever_code_the_receiver_answers() {
    let rx = Receiver::start(vec![
        Reply::Status(200),
        Reply::Status(220),
        Reply::Status(221),
        Reply::Status(500),
        Reply::Status(404),
    ])
    .await;
    let sender = HeartbeatSender::new(Secret::new(rx.url()), Some(Secret::new("k"))).unwrap();
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(sender.send(&services()).await);
    }
    assert_eq!(
        codes,
        [Some(200), Some(220), Some(221), Some(500), Some(404)]
    );
}

#[tokio::test]
async fn offline_receiver_gives_none() {
    let sender = HeartbeatSender::new(Secret::new(closed_port_url().await), None).unwrap();
    assert_eq!(sender.send(&services()).await, None);
}

#[tokio::test]
async fn hanging_receiver_gives_none_after_the_timeout() {
    let mut rx = Receiver::start(vec![Reply::Hang]).await;
    let sender =
        HeartbeatSender::with_timeout(Secret::new(rx.url()), None, Duration::from_millis(300))
            .unwrap();
    assert_eq!(sender.send(&services()).await, None);
    // The request did reach the receiver: the None is the timeout, not a refused connection.
    assert_eq!(rx.drain().len(), 1);
}

/// FORCE_IPV4: a receiver reachable only over IPv6 gets no heartbeat from an IPv4-only sender,
/// and does from a sender allowed to use IPv6.
#[tokio::test]
async fn ipv4_only_never_connects_over_ipv6() {
    let listener = match tokio::net::TcpListener::bind("[::1]:0").await {
        Ok(l) => l,
        Err(e) => {
            crate::require(false, &format!("no IPv6 loopback here: {e}"));
            return;
        }
    };
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(|| async { axum::http::StatusCode::OK });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let url = Secret::new(format!("http://[::1]:{port}/api/heartbeat"));
    let timeout = Duration::from_secs(2);
    let v4 = HeartbeatSender::with_options(url.clone(), None, timeout, true).unwrap();
    let any = HeartbeatSender::with_options(url, None, timeout, false).unwrap();
    assert_eq!(v4.send(&services()).await, None);
    assert_eq!(any.send(&services()).await, Some(200));
}
