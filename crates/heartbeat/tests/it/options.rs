//! Per-service options (`SERVICE_TIMEOUT_`, `SERVICE_EXPECT_`, `SERVICE_KEYWORD_`,
//! `SERVICE_METHOD_`) through the agent's real cycle and into the database.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode, Uri};
use axum::response::IntoResponse;

use crate::agent::{agent_cmd, db_in};
use crate::common::open_db;

/// `/page` answers a body with a known word, `/locked` 401, `/nohead` 405 to HEAD, `/slow`
/// after 800 ms; every request's method and path is recorded.
async fn app_server() -> (std::net::SocketAddr, Arc<Mutex<Vec<(Method, String)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = Router::new().fallback(move |method: Method, uri: Uri| {
        let record = record.clone();
        async move {
            record
                .lock()
                .expect("lock")
                .push((method.clone(), uri.path().to_owned()));
            match uri.path() {
                "/page" => (StatusCode::OK, "<h1>all-systems-go</h1>").into_response(),
                "/locked" => StatusCode::UNAUTHORIZED.into_response(),
                "/nohead" if method == Method::HEAD => {
                    StatusCode::METHOD_NOT_ALLOWED.into_response()
                }
                "/slow" => {
                    tokio::time::sleep(Duration::from_millis(800)).await;
                    StatusCode::OK.into_response()
                }
                _ => StatusCode::OK.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn each_option_decides_its_service_in_the_stored_cycle() {
    let (addr, seen) = app_server().await;
    let url = |path: &str| format!("http://{addr}{path}");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_in(&dir);
    let mut cmd = agent_cmd(
        &db,
        "10",
        &[
            ("found", url("/page")),
            ("missing", url("/page")),
            ("locked_ok", url("/locked")),
            ("locked_default", url("/locked")),
            ("head_only", url("/nohead")),
            ("get", url("/plain")),
            ("patient", url("/slow")),
            ("hurried", url("/slow")),
        ],
    );
    // agent_cmd sets SERVICE_TIMEOUT_SECONDS=0.5.
    cmd.args(["--once"])
        .env("PING_URL", url("/ping"))
        .env("SERVICE_KEYWORD_found", "all-systems-go")
        .env("SERVICE_KEYWORD_missing", "maintenance")
        .env("SERVICE_EXPECT_locked_ok", "200-299,401")
        .env("SERVICE_METHOD_head_only", "HEAD")
        .env("SERVICE_METHOD_get", "GET")
        .env("SERVICE_TIMEOUT_patient", "3")
        .env("SERVICE_TIMEOUT_hurried", "0.2");
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    let conn = open_db(&db);
    let rows: Vec<(String, String, Option<i64>, Option<String>)> = {
        let mut stmt = conn
            .prepare(
                "SELECT service_name, status, status_code, error_message FROM service_checks \
                 ORDER BY service_name",
            )
            .expect("prepare");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("query")
            .map(|r| r.expect("row"))
            .collect()
    };
    let expected = [
        ("found", "healthy", Some(200), None),
        ("get", "healthy", Some(200), None),
        ("head_only", "error", Some(405), Some("HTTP 405")),
        ("hurried", "timeout", None, Some("Timeout")),
        ("locked_default", "error", Some(401), Some("HTTP 401")),
        ("locked_ok", "healthy", Some(401), None),
        ("missing", "error", Some(200), Some("Keyword not found")),
        ("patient", "healthy", Some(200), None),
    ];
    let got: Vec<(&str, &str, Option<i64>, Option<&str>)> = rows
        .iter()
        .map(|(n, s, c, e)| (n.as_str(), s.as_str(), *c, e.as_deref()))
        .collect();
    assert_eq!(got, expected, "{stderr}");

    let seen = seen.lock().expect("lock").clone();
    let methods_of = |path: &str| -> Vec<Method> {
        seen.iter()
            .filter(|(_, p)| p == path)
            .map(|(m, _)| m.clone())
            .collect()
    };
    assert_eq!(
        methods_of("/page"),
        [Method::GET, Method::GET],
        "keyword checks GET"
    );
    assert_eq!(
        methods_of("/nohead"),
        [Method::HEAD],
        "no GET retry with METHOD=HEAD"
    );
    assert_eq!(methods_of("/plain"), [Method::GET]);
}

#[test]
fn heartbeat_config_shows_the_options() {
    let out = crate::common::heartbeat()
        .args(["config", "--role", "agent"])
        .env("SERVICE_URL_api", "http://127.0.0.1:9/")
        .env("SERVICE_EXPECT_api", "200-299,401")
        .env("SERVICE_KEYWORD_api", "ok")
        .env("SERVICE_TIMEOUT_api", "1.5")
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "SERVICE_EXPECT_api",
        "200-299,401",
        "SERVICE_KEYWORD_api",
        "SERVICE_TIMEOUT_api",
    ] {
        assert!(stdout.contains(line), "{line} in {stdout}");
    }
}
