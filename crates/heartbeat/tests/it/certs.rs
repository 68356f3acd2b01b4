//! TLS certificate expiry through the agent's real cycle: three local https servers whose leaf
//! certificates (rcgen, signed by a test CA the agent trusts through `SSL_CERT_FILE`) expire in
//! 40, 10 and 2 days. The expiry is stored with each cycle's checks, read back by the dashboard's API
//! and `/metrics`, and alerted once per threshold, also across a restart.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::agent::{agent_cmd, db_in};
use crate::common::{AgentProcess, Server, ServerProcess, count, open_db, wait_for};

/// A test CA: its PEM (for `SSL_CERT_FILE`) and what signs the leaves.
pub(crate) struct TestCa {
    pub(crate) pem: String,
    pub(crate) issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

pub(crate) fn test_ca() -> TestCa {
    let key = rcgen::KeyPair::generate().expect("CA key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "heartbeat test CA");
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let cert = params.self_signed(&key).expect("CA cert");
    TestCa {
        pem: cert.pem(),
        issuer: rcgen::Issuer::new(params, key),
    }
}

/// An https server on 127.0.0.1 (name `localhost`) whose certificate ends `ends_in` from now.
/// Answers every request `200` with no body, keeping connections alive. Returns its address
/// and the certificate's `notAfter` in epoch seconds.
pub(crate) fn tls_server(ca: &TestCa, ends_in: time::Duration) -> (SocketAddr, i64) {
    let key = rcgen::KeyPair::generate().expect("leaf key");
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("leaf params");
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + ends_in;
    let not_after = params.not_after.unix_timestamp();
    let cert = params.signed_by(&key, &ca.issuer).expect("leaf cert");
    let chain = vec![CertificateDer::from(cert.der().to_vec())];
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .expect("server config");
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let config = config.clone();
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else {
                    return;
                };
                let mut tls = BufReader::new(rustls::StreamOwned::new(conn, stream));
                loop {
                    // One request head, then the answer; until the client closes.
                    let mut line = String::new();
                    loop {
                        line.clear();
                        match tls.read_line(&mut line) {
                            Ok(0) | Err(_) => return,
                            Ok(_) if line == "\r\n" => break,
                            Ok(_) => {}
                        }
                    }
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                    if tls.get_mut().write_all(answer).is_err() || tls.get_mut().flush().is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, not_after)
}

/// `service_certificates`: (service, expiry in ms), only for services seen over https.
fn stored_expiries(db: &Path) -> Vec<(String, i64)> {
    let conn = open_db(db);
    let mut stmt = conn
        .prepare("SELECT service_name, expires_ms FROM service_certificates ORDER BY service_name")
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

fn cert_alerts(db: &Path) -> Vec<(String, String, String)> {
    let conn = open_db(db);
    let mut stmt = conn
        .prepare("SELECT item, new_status, title FROM alerts WHERE item LIKE 'cert:%' ORDER BY id")
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_expiry_is_stored_shown_exported_and_alerted_once() {
    let ca = test_ca();
    let (far, far_end) = tls_server(&ca, time::Duration::days(40));
    let (soon, soon_end) = tls_server(&ca, time::Duration::days(10) + time::Duration::hours(2));
    let (critical, critical_end) =
        tls_server(&ca, time::Duration::days(2) + time::Duration::hours(2));
    let hook = Server::start(200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).expect("write CA");
    let db = db_in(&dir);
    let services = [
        ("far", format!("https://localhost:{}/", far.port())),
        ("soon", format!("https://localhost:{}/", soon.port())),
        (
            "critical",
            format!("https://localhost:{}/", critical.port()),
        ),
        ("plain", hook.url("/plain")),
    ];
    let agent_with = |extra: &[(&str, &str)]| {
        let mut cmd = agent_cmd(&db, "1", &services);
        cmd.env("SSL_CERT_FILE", &ca_file)
            .env("SERVICE_TIMEOUT_SECONDS", "2")
            .env("PING_URL", hook.url("/ping"))
            .env("N8N_WEBHOOK_URL", hook.url("/hook"));
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd
    };

    let agent = AgentProcess::spawn(agent_with(&[]));
    wait_for("three cycles", Duration::from_secs(30), || {
        db.exists() && count(&db, "SELECT count(*) FROM monitoring_cycles") >= 3
    })
    .await;
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");

    // Stored for each https service with its newest check; nothing for plain http.
    let expected = vec![
        ("critical".to_owned(), critical_end * 1000),
        ("far".to_owned(), far_end * 1000),
        ("soon".to_owned(), soon_end * 1000),
    ];
    assert_eq!(stored_expiries(&db), expected, "{log}");
    // Written by the first cycle and not again: neither the expiry nor its whole days left
    // changed since.
    let first_only = count(
        &db,
        "SELECT count(*) FROM service_certificates \
         WHERE checked_ms = (SELECT min(ts_ms) FROM monitoring_cycles)",
    );
    assert_eq!(first_only, 3, "the rows are not rewritten every cycle");
    let healthy = count(
        &db,
        "SELECT count(*) FROM service_checks WHERE status != 'healthy'",
    );
    assert_eq!(healthy, 0, "every check passed (the CA is trusted): {log}");

    // One alert per certificate under a threshold, over three cycles.
    let alerts = cert_alerts(&db);
    assert_eq!(
        alerts,
        [
            (
                "cert:critical".to_owned(),
                "cert_critical".to_owned(),
                "🔴 critical certificate expires in 2 days".to_owned()
            ),
            (
                "cert:soon".to_owned(),
                "cert_expiring".to_owned(),
                "🟠 soon certificate expires in 10 days".to_owned()
            ),
        ]
        .into_iter()
        .collect::<Vec<_>>(),
        "{log}"
    );
    let posted: Vec<String> = hook
        .posted_json()
        .into_iter()
        .filter_map(|v| v["title"].as_str().map(str::to_owned))
        .filter(|t| t.contains("certificate"))
        .collect();
    assert_eq!(posted.len(), 2, "each sent once to the webhook: {posted:?}");

    // A restart does not repeat them.
    let agent = AgentProcess::spawn(agent_with(&[]));
    let before = count(&db, "SELECT count(*) FROM monitoring_cycles");
    wait_for("two more cycles", Duration::from_secs(30), || {
        count(&db, "SELECT count(*) FROM monitoring_cycles") >= before + 2
    })
    .await;
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert_eq!(
        cert_alerts(&db).len(),
        2,
        "no repeat after a restart: {log}"
    );

    // The dashboard: days left on the service, the expiry in /metrics.
    let dash = ServerProcess::dashboard_on(&db);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let live: serde_json::Value = reqwest::get(dash.url("/api/live?range=live"))
        .await
        .expect("live")
        .json()
        .await
        .expect("json");
    let service = |name: &str| {
        live["services"]
            .as_array()
            .expect("services")
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .expect(name)
    };
    for (name, days, expiring) in [
        ("far", 39, false),
        ("soon", 10, true),
        ("critical", 2, true),
    ] {
        let s = service(name);
        assert_eq!(s["cert_days_left"], days, "{name}: {s}");
        assert_eq!(s["cert_expiring"], expiring, "{name}: {s}");
        assert!(
            s["cert_expires_at"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z')),
            "{s}"
        );
    }
    assert!(service("plain")["cert_days_left"].is_null());
    let metrics = reqwest::get(dash.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(&format!(
            "heartbeat_service_cert_expiry_timestamp_seconds{{service=\"soon\"}} {soon_end}"
        )),
        "{metrics}"
    );
    assert!(!metrics.contains("cert_expiry_timestamp_seconds{service=\"plain\"}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_expiry_warn_days_zero_records_but_never_alerts() {
    let ca = test_ca();
    let (soon, soon_end) = tls_server(&ca, time::Duration::days(1) + time::Duration::hours(2));
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).expect("write CA");
    let db = db_in(&dir);
    let mut cmd = agent_cmd(
        &db,
        "1",
        &[("soon", format!("https://localhost:{}/", soon.port()))],
    );
    cmd.args(["--once"])
        .env("SSL_CERT_FILE", &ca_file)
        .env("SERVICE_TIMEOUT_SECONDS", "2")
        .env("TLS_EXPIRY_WARN_DAYS", "0")
        .env("PING_URL", "http://127.0.0.1:9/");
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        stored_expiries(&db),
        [("soon".to_owned(), soon_end * 1000)],
        "{stderr}"
    );
    assert!(cert_alerts(&db).is_empty());
}
