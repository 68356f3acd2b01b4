//! Reminders and maintenance windows through the real agent: a webhook sink on 127.0.0.1, a
//! target that changes behaviour, and the alerts and per-channel deliveries in the database.

use std::path::Path;
use std::time::Duration;

use crate::agent::{agent_cmd, db_in};
use crate::common::{AgentProcess, Server, count, open_db, wait_for};

fn titles(sink: &Server) -> Vec<String> {
    sink.posted_json()
        .iter()
        .map(|a| a["title"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// `(title, created_ms)` of every stored alert, oldest first.
fn stored_alerts(db: &Path) -> Vec<(String, i64)> {
    open_db(db)
        .prepare("SELECT title, created_ms FROM alerts ORDER BY created_ms, id")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

fn cycle_instants(db: &Path) -> Vec<i64> {
    open_db(db)
        .prepare("SELECT ts_ms FROM monitoring_cycles ORDER BY ts_ms")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

fn iso(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .expect("instant")
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A failure inside a one-off window is stored but not sent; the window's end brings one
/// summary naming what is still bad, and the recovery after it is sent as usual.
#[tokio::test(flavor = "multi_thread")]
async fn a_window_holds_a_failure_and_its_summary_comes_at_the_end() {
    let api = Server::start(200).await;
    let ping = Server::start(204).await;
    let sink = Server::start(200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_in(&dir);
    // Whole seconds, so the window's instants are the cycle grid's.
    let now_s = jiff::Timestamp::now().as_second();
    let (start_ms, end_ms) = ((now_s - 1) * 1000, (now_s + 7) * 1000);
    let mut cmd = agent_cmd(&db, "1", &[("api", api.url("/health"))]);
    cmd.env("STATUS_CHANGE_THRESHOLD", "1")
        .env("PING_URL", ping.url("/"))
        .env("N8N_WEBHOOK_URL", sink.url("/webhook"))
        .env(
            "MAINTENANCE_WINDOWS",
            format!("{}/{} @api", iso(start_ms), iso(end_ms)),
        );
    let agent = AgentProcess::spawn(cmd);
    wait_for("a first cycle", Duration::from_secs(15), || {
        count(&db, "SELECT count(*) FROM monitoring_cycles") >= 1
    })
    .await;
    api.set_status(500);
    wait_for("two failed checks", Duration::from_secs(15), || {
        count(
            &db,
            "SELECT count(*) FROM service_checks WHERE status = 'error'",
        ) >= 2
    })
    .await;
    wait_for("the summary", Duration::from_secs(20), || {
        titles(&sink).iter().any(|t| t.contains("Maintenance over"))
    })
    .await;
    api.set_status(200);
    wait_for("the recovery", Duration::from_secs(15), || {
        titles(&sink).iter().any(|t| t.contains("recovered"))
    })
    .await;
    wait_for("the deliveries recorded", Duration::from_secs(10), || {
        count(
            &db,
            "SELECT count(*) FROM alerts WHERE delivery_state = 'delivered'",
        ) >= 2
    })
    .await;
    let (status, stderr) = tokio::task::spawn_blocking(move || agent.stop())
        .await
        .expect("join");
    assert!(status.success(), "{stderr}");

    assert_eq!(
        titles(&sink),
        ["🛠 Maintenance over: 1 still bad", "✅ api recovered"],
        "the failure itself is never sent"
    );
    let summary = &sink.posted_json()[0];
    let message = summary["message"].as_str().expect("message");
    assert!(message.contains("- **api**: error (HTTP 500)"), "{message}");
    assert!(message.contains("**Alerts held:** 1"), "{message}");
    // Checks ran and were stored all through the window.
    let failed_inside = count(
        &db,
        &format!(
            "SELECT count(*) FROM service_checks s JOIN monitoring_cycles c ON c.id = s.cycle_id \
             WHERE s.status = 'error' AND c.ts_ms >= {start_ms} AND c.ts_ms < {end_ms}"
        ),
    );
    assert!(
        failed_inside >= 2,
        "{failed_inside} failed checks stored inside"
    );
    // The summary belongs to the first cycle at or after the window's end.
    let alerts = stored_alerts(&db);
    let first_after = cycle_instants(&db)
        .into_iter()
        .find(|&t| t >= end_ms)
        .expect("a cycle after the window");
    assert_eq!(alerts[0].0, "🛠 Maintenance over: 1 still bad");
    assert_eq!(alerts[0].1, first_after, "{alerts:?}");
    // Each alert has its channel's record: the webhook, delivered at the first attempt.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM alert_deliveries WHERE channel = 'n8n' AND state = 'delivered' AND attempts = 1"
        ),
        2
    );
}

/// With `ALERT_REMINDER_MINUTES=0.05` (3 s) a failure is reminded of in the first cycle 3 s
/// after the alert, again 3 s after that, and never after the recovery.
#[tokio::test(flavor = "multi_thread")]
async fn a_reminder_arrives_on_time_and_stops_at_recovery() {
    let api = Server::start(200).await;
    let ping = Server::start(204).await;
    let sink = Server::start(200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_in(&dir);
    let mut cmd = agent_cmd(&db, "1", &[("api", api.url("/health"))]);
    cmd.env("STATUS_CHANGE_THRESHOLD", "1")
        .env("PING_URL", ping.url("/"))
        .env("N8N_WEBHOOK_URL", sink.url("/webhook"))
        .env("ALERT_REMINDER_MINUTES", "0.05");
    let agent = AgentProcess::spawn(cmd);
    wait_for("a first cycle", Duration::from_secs(15), || {
        count(&db, "SELECT count(*) FROM monitoring_cycles") >= 1
    })
    .await;
    api.set_status(503);
    wait_for("two reminders", Duration::from_secs(30), || {
        titles(&sink).iter().filter(|t| t.starts_with("🔁")).count() >= 2
    })
    .await;
    api.set_status(200);
    wait_for("the recovery", Duration::from_secs(15), || {
        titles(&sink).iter().any(|t| t.contains("recovered"))
    })
    .await;
    let recovered_at = count(&db, "SELECT count(*) FROM monitoring_cycles");
    // Longer than the interval: a reminder that did not stop would be here by now.
    wait_for("4 more cycles", Duration::from_secs(20), || {
        count(&db, "SELECT count(*) FROM monitoring_cycles") >= recovered_at + 4
    })
    .await;
    let (status, stderr) = tokio::task::spawn_blocking(move || agent.stop())
        .await
        .expect("join");
    assert!(status.success(), "{stderr}");

    let sent = titles(&sink);
    assert_eq!(
        sent,
        [
            "🔴 api returns errors",
            "🔁 api still returns errors",
            "🔁 api still returns errors",
            "✅ api recovered"
        ]
    );
    let reminder = sink.posted_json()[1]["message"]
        .as_str()
        .expect("message")
        .to_owned();
    let down_for: i64 = reminder
        .split("**Still down for:** ")
        .nth(1)
        .and_then(|rest| rest.split(" s").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no duration in seconds: {reminder}"));
    assert!(down_for >= 3, "{reminder}");

    // On time: each reminder is made by the first cycle at least 3 s after what came before.
    let alerts = stored_alerts(&db);
    let cycles = cycle_instants(&db);
    let first_at_or_after = |ms: i64| cycles.iter().copied().find(|&t| t >= ms);
    assert_eq!(
        Some(alerts[1].1),
        first_at_or_after(alerts[0].1 + 3_000),
        "{alerts:?}"
    );
    assert_eq!(
        Some(alerts[2].1),
        first_at_or_after(alerts[1].1 + 3_000),
        "{alerts:?}"
    );
}

/// `heartbeat alert-test` through the real binary: each channel's outcome, the exit code,
/// and no secret in what it prints.
#[tokio::test(flavor = "multi_thread")]
async fn alert_test_reports_each_channel_and_fails_when_one_fails() {
    let good = Server::start(204).await;
    let bad = Server::start(500).await;
    let run = |envs: Vec<(&'static str, String)>| async move {
        let mut cmd = crate::common::heartbeat();
        cmd.arg("alert-test")
            .env_remove("N8N_WEBHOOK_URL")
            .env_remove("ALERT_URLS")
            .env("SERVICE_URL_web", "http://127.0.0.1:9/");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = tokio::task::spawn_blocking(move || cmd.output().expect("run"))
            .await
            .expect("join");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };

    let (code, out) = run(vec![("N8N_WEBHOOK_URL", good.url("/hook/t0ken-abc"))]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ok      n8n: delivered (1 attempt)"), "{out}");
    assert!(!out.contains("t0ken-abc"), "secret printed: {out}");
    let posted = good.posted_json();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0]["title"], "🧪 Heartbeat test alert");

    let (code, out) = run(vec![("N8N_WEBHOOK_URL", bad.url("/hook/t0ken-abc"))]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("FAILED  n8n: HTTP 500 (1 attempt)"), "{out}");
    assert!(out.contains("0 of 1 channels"), "{out}");

    let (code, out) = run(Vec::new()).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no alert channel configured"), "{out}");
}
