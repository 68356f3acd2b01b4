//! The alerts table as an outbox, through the real binary: an alert in flight at `kill -9` is
//! sent after the restart and marked late, an old one is given up, and the restarted agent's
//! debouncer starts from what the database remembers of each service.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::agent::{agent_cmd, db_in};
use crate::common::{HANG, LoggedAgent, Server, count, open_db, wait_for};

fn agent(db: &Path, api: &Server, hook: &Server) -> Command {
    let mut cmd = agent_cmd(db, "1", &[("api", api.url("/"))]);
    cmd.env("STATUS_CHANGE_THRESHOLD", "2")
        .env("PING_URL", api.url("/ping"))
        .env("N8N_WEBHOOK_URL", hook.url("/hook"));
    cmd
}

fn cycles(db: &Path) -> i64 {
    count(db, "SELECT count(*) FROM monitoring_cycles")
}

fn titles(hook: &Server) -> Vec<String> {
    hook.posted_json()
        .iter()
        .map(|a| a["title"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// An undelivered alert from two hours ago, as a crashed agent of an earlier run left it.
fn insert_old_undelivered_alert(db: &Path) {
    let created = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(2))
        .expect("two hours ago");
    let created_at = created
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .strftime("%Y-%m-%dT%H:%M:%S%.6f%:z")
        .to_string();
    let conn = rusqlite::Connection::open(db).expect("open read-write");
    conn.execute(
        "INSERT INTO alerts (uid, created_at, created_ms, item, old_status, new_status, title, \
         message, attempts) VALUES ('old-1', ?1, ?2, 'db', 'healthy', 'down', '🔴 db is down', \
         '**Service:** db', 0)",
        rusqlite::params![created_at, created.as_millisecond()],
    )
    .expect("insert the old alert");
}

/// The chaos pass of issue #21: webhook hanging, alert raised, `kill -9` 1.7 s later. The row
/// was left at attempts 0 and never sent after the restart; the restarted agent's first
/// observation of the still-failing service was silent.
#[tokio::test(flavor = "multi_thread")]
async fn an_alert_in_flight_at_kill_9_is_sent_late_after_the_restart() {
    let api = Server::start(200).await;
    let hanging = Server::start(HANG).await;
    let healthy = Server::start(200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_in(&dir);

    let first = LoggedAgent::spawn(agent(&db, &api, &hanging));
    wait_for("a first cycle", Duration::from_secs(15), || {
        cycles(&db) >= 1
    })
    .await;
    api.set_status(500);
    wait_for("the alert row", Duration::from_secs(15), || {
        count(&db, "SELECT count(*) FROM alerts") == 1
    })
    .await;
    wait_for("the first attempt", Duration::from_secs(5), || {
        !hanging.received().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1700)).await;
    tokio::task::spawn_blocking(move || first.kill9())
        .await
        .expect("join");
    let uid: String = open_db(&db)
        .query_row(
            "SELECT uid FROM alerts WHERE attempts = 0 AND delivered_at IS NULL \
             AND last_error IS NULL",
            [],
            |r| r.get(0),
        )
        .expect("the alert as the crash left it");
    insert_old_undelivered_alert(&db);

    // The webhook is healthy again, the service is still failing.
    let second = LoggedAgent::spawn(agent(&db, &api, &healthy));
    wait_for("the late alert", Duration::from_secs(15), || {
        !healthy.posted_json().is_empty()
    })
    .await;
    let after_restart = cycles(&db);
    wait_for("five more cycles", Duration::from_secs(20), || {
        cycles(&db) >= after_restart + 5
    })
    .await;
    let sent = healthy.posted_json();
    assert_eq!(
        titles(&healthy),
        ["🔴 api returns errors"],
        "only the late alert: no duplicate for the still-failing service, not the old one"
    );
    let message = sent[0]["message"].as_str().expect("message");
    assert!(message.contains("HTTP 500"), "{message}");
    assert!(message.contains("Delivered late"), "{message}");

    let conn = open_db(&db);
    let (state, delivered, late): (Option<String>, Option<String>, Option<String>) = conn
        .query_row(
            "SELECT delivery_state, delivered_at, redelivered_at FROM alerts WHERE uid = ?1",
            [&uid],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("the late alert's row");
    assert_eq!(state.as_deref(), Some("delivered"));
    assert!(
        delivered.is_some() && late.is_some(),
        "{delivered:?} {late:?}"
    );
    let (state, delivered, error): (Option<String>, Option<String>, Option<String>) = conn
        .query_row(
            "SELECT delivery_state, delivered_at, last_error FROM alerts WHERE uid = 'old-1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("the old alert's row");
    assert_eq!(state.as_deref(), Some("given_up"));
    assert_eq!(delivered, None);
    assert!(
        error.as_deref().is_some_and(|e| e.contains("given up")),
        "{error:?}"
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM alerts WHERE item = 'api'"),
        1
    );

    // The restarted agent knows the service was failing: its recovery is reported.
    api.set_status(200);
    wait_for("the recovery alert", Duration::from_secs(15), || {
        healthy.posted_json().len() >= 2
    })
    .await;
    assert_eq!(titles(&healthy)[1], "✅ api recovered");
    let (status, log) = tokio::task::spawn_blocking(move || second.stop())
        .await
        .expect("join");
    assert!(status.success(), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_down_before_a_restart_and_healthy_after_it_gets_a_recovery_alert() {
    let api = Server::start(200).await;
    let hook = Server::start(200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_in(&dir);

    let first = LoggedAgent::spawn(agent(&db, &api, &hook));
    wait_for("a first cycle", Duration::from_secs(15), || {
        cycles(&db) >= 1
    })
    .await;
    api.set_status(500);
    wait_for("the delivered down alert", Duration::from_secs(15), || {
        count(
            &db,
            "SELECT count(*) FROM alerts WHERE delivered_at IS NOT NULL",
        ) == 1
    })
    .await;
    tokio::task::spawn_blocking(move || first.kill9())
        .await
        .expect("join");

    api.set_status(200);
    let second = LoggedAgent::spawn(agent(&db, &api, &hook));
    wait_for("the recovery alert", Duration::from_secs(15), || {
        hook.posted_json().len() >= 2
    })
    .await;
    assert_eq!(titles(&hook), ["🔴 api returns errors", "✅ api recovered"]);
    let (status, log) = tokio::task::spawn_blocking(move || second.stop())
        .await
        .expect("join");
    assert!(status.success(), "{log}");
}

/// No alert was ever raised, but the stored rows say the service was healthy: a failure after
/// the restart is a failure, not a silent first observation.
#[tokio::test(flavor = "multi_thread")]
async fn a_service_healthy_before_a_restart_and_failing_after_it_is_alerted() {
    let api = Server::start(200).await;
    let hook = Server::start(200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = db_in(&dir);

    let first = LoggedAgent::spawn(agent(&db, &api, &hook));
    wait_for("two cycles", Duration::from_secs(15), || cycles(&db) >= 2).await;
    tokio::task::spawn_blocking(move || first.kill9())
        .await
        .expect("join");

    api.set_status(500);
    let second = LoggedAgent::spawn(agent(&db, &api, &hook));
    wait_for("the down alert", Duration::from_secs(15), || {
        !hook.posted_json().is_empty()
    })
    .await;
    assert_eq!(titles(&hook), ["🔴 api returns errors"]);
    let (status, log) = tokio::task::spawn_blocking(move || second.stop())
        .await
        .expect("join");
    assert!(status.success(), "{log}");
}
