//! The webhook dispatcher against a real alert sink.

use std::sync::Arc;
use std::time::Duration;

use hb_agent::notify::{AlertDispatcher, DeliverySettings};
use hb_config::Secret;
use hb_core::{AlertDelivery, AlertRecord};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::receiver::{Receiver, Reply, closed_port_url};

fn alert(uid: &str) -> AlertRecord {
    AlertRecord {
        uid: uid.to_owned(),
        created_at: "2026-11-29T15:41:02.000000-05:00".to_owned(),
        item: "api".to_owned(),
        old_status: Some("healthy".to_owned()),
        new_status: "down".to_owned(),
        title: "🔴 api is down".to_owned(),
        message: "**Service:** api\n**Status:** down \"quoted\"".to_owned(),
    }
}

fn fast_settings() -> DeliverySettings {
    DeliverySettings {
        attempts: 3,
        timeout: Duration::from_millis(300),
        pause: Duration::from_millis(20),
        tz: jiff::tz::TimeZone::get("America/Lima").unwrap(),
        ipv4_only: true,
    }
}

fn dispatcher(
    url: Option<String>,
    settings: DeliverySettings,
) -> (AlertDispatcher, mpsc::UnboundedReceiver<AlertDelivery>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let d = AlertDispatcher::spawn(url.map(Secret::new), settings, tx, CancellationToken::new());
    (d, rx)
}

#[tokio::test]
async fn body_is_exact_and_first_success_is_recorded() {
    let mut sink = Receiver::start(vec![Reply::Status(204)]).await;
    let (d, mut results) = dispatcher(Some(sink.url()), fast_settings());
    d.dispatch(alert("a1"));
    let delivery = results.recv().await.unwrap();
    assert_eq!(delivery.uid, "a1");
    assert_eq!(delivery.attempts, 1);
    assert_eq!(delivery.last_error, None);
    let at = delivery.delivered_at.expect("delivered");
    assert!(at.ends_with("-05:00"), "{at}");
    assert!(
        jiff::Timestamp::strptime("%Y-%m-%dT%H:%M:%S%.f%:z", &at).is_ok(),
        "{at}"
    );

    let got = sink.drain();
    assert_eq!(got.len(), 1);
    assert_eq!(
        std::str::from_utf8(&got[0].body).unwrap(),
        r#"{"title":"🔴 api is down","message":"**Service:** api\n**Status:** down \"quoted\""}"#
    );
    assert_eq!(got[0].headers["content-type"], "application/json");
    d.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn failing_sink_gets_exactly_three_attempts() {
    let mut sink = Receiver::start(vec![Reply::Status(500)]).await;
    let (d, mut results) = dispatcher(Some(sink.url()), fast_settings());
    d.dispatch(alert("a2"));
    let delivery = results.recv().await.unwrap();
    assert_eq!(
        delivery,
        AlertDelivery {
            uid: "a2".into(),
            attempts: 3,
            delivered_at: None,
            last_error: Some("HTTP 500".into()),
            interrupted: false,
        }
    );
    d.shutdown(Duration::from_secs(1)).await;
    assert_eq!(sink.drain().len(), 3);
}

#[tokio::test]
async fn success_on_the_second_attempt() {
    let mut sink = Receiver::start(vec![Reply::Status(503), Reply::Status(200)]).await;
    let (d, mut results) = dispatcher(Some(sink.url()), fast_settings());
    d.dispatch(alert("a3"));
    let delivery = results.recv().await.unwrap();
    assert_eq!(delivery.attempts, 2);
    assert!(delivery.delivered_at.is_some());
    assert_eq!(delivery.last_error, None);
    d.shutdown(Duration::from_secs(1)).await;
    assert_eq!(sink.drain().len(), 2);
}

#[tokio::test]
async fn hanging_sink_times_out_each_attempt() {
    let mut sink = Receiver::start(vec![Reply::Hang]).await;
    let (d, mut results) = dispatcher(Some(sink.url()), fast_settings());
    d.dispatch(alert("a4"));
    let delivery = results.recv().await.unwrap();
    assert_eq!(delivery.attempts, 3);
    assert_eq!(delivery.delivered_at, None);
    let error = delivery.last_error.unwrap();
    assert!(error.starts_with("timeout"), "{error}");
    assert!(
        !error.contains("127.0.0.1"),
        "the URL must not leak: {error}"
    );
    assert_eq!(sink.drain().len(), 3);
    d.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn dispatch_returns_before_the_delivery_completes() {
    let release = Arc::new(Semaphore::new(0));
    let mut sink = Receiver::start(vec![Reply::WaitThen200(Arc::clone(&release))]).await;
    let settings = DeliverySettings {
        timeout: Duration::from_secs(30),
        ..fast_settings()
    };
    let (d, mut results) = dispatcher(Some(sink.url()), settings);
    d.dispatch(alert("a5"));
    d.dispatch(alert("a6"));
    // Both calls returned; the sink is holding the requests, so no result can exist yet.
    assert!(matches!(
        results.try_recv(),
        Err(mpsc::error::TryRecvError::Empty)
    ));
    // Both deliveries are in flight at once, neither waited for the other.
    sink.requests.recv().await.unwrap();
    sink.requests.recv().await.unwrap();
    assert!(matches!(
        results.try_recv(),
        Err(mpsc::error::TryRecvError::Empty)
    ));
    release.add_permits(2);
    let mut uids = vec![
        results.recv().await.unwrap().uid,
        results.recv().await.unwrap().uid,
    ];
    uids.sort();
    assert_eq!(uids, ["a5", "a6"]);
    d.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn unset_url_records_not_configured() {
    let (d, mut results) = dispatcher(None, fast_settings());
    d.dispatch(alert("a7"));
    assert_eq!(
        results.recv().await.unwrap(),
        AlertDelivery {
            uid: "a7".into(),
            attempts: 0,
            delivered_at: None,
            last_error: Some("webhook not configured".into()),
            interrupted: false,
        }
    );
    d.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn offline_sink_reports_a_connection_error() {
    let (d, mut results) = dispatcher(Some(closed_port_url().await), fast_settings());
    d.dispatch(alert("a8"));
    let delivery = results.recv().await.unwrap();
    assert_eq!(delivery.attempts, 3);
    let error = delivery.last_error.unwrap();
    assert!(error.starts_with("connection failed"), "{error}");
    assert!(!error.contains("/hook"), "the URL must not leak: {error}");
    d.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn shutdown_abandons_deliveries_after_the_grace() {
    let mut sink = Receiver::start(vec![Reply::Hang]).await;
    let settings = DeliverySettings {
        timeout: Duration::from_secs(30),
        ..fast_settings()
    };
    let (d, mut results) = dispatcher(Some(sink.url()), settings);
    d.dispatch(alert("a9"));
    sink.requests.recv().await.unwrap();
    d.shutdown(Duration::from_millis(50)).await;
    // shutdown returned only after the abandoned task reported.
    assert_eq!(
        results.try_recv().unwrap(),
        AlertDelivery {
            uid: "a9".into(),
            attempts: 1,
            delivered_at: None,
            last_error: Some("abandoned at shutdown".into()),
            interrupted: true,
        }
    );
}

#[tokio::test]
async fn cancelled_token_stops_retries() {
    let mut sink = Receiver::start(vec![Reply::Status(500)]).await;
    let (tx, mut results) = mpsc::unbounded_channel();
    let token = CancellationToken::new();
    let settings = DeliverySettings {
        pause: Duration::from_secs(30),
        ..fast_settings()
    };
    let d = AlertDispatcher::spawn(Some(Secret::new(sink.url())), settings, tx, token.clone());
    d.dispatch(alert("a10"));
    sink.requests.recv().await.unwrap();
    token.cancel();
    let delivery = results.recv().await.unwrap();
    assert_eq!(delivery.attempts, 1);
    assert_eq!(delivery.last_error.as_deref(), Some("HTTP 500"));
    assert!(
        delivery.interrupted,
        "stopped by shutdown: not a final failure"
    );
    d.shutdown(Duration::from_secs(1)).await;
    assert!(sink.drain().is_empty());
}

fn body(r: &super::receiver::Recorded) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap()
}

/// The backlog of a previous run goes out one at a time, oldest first, each saying it is late,
/// and an alert of this run waits for it (no recovery before the failure it ends).
#[tokio::test]
async fn redelivery_is_ordered_marked_late_and_ahead_of_new_alerts() {
    let release = Arc::new(Semaphore::new(0));
    let mut sink = Receiver::start(vec![
        Reply::WaitThen200(Arc::clone(&release)),
        Reply::Status(200),
    ])
    .await;
    let (d, mut results) = dispatcher(Some(sink.url()), fast_settings());
    d.redeliver(vec![alert("old-1"), alert("old-2")]);
    d.dispatch(AlertRecord {
        title: "✅ api recovered".into(),
        ..alert("new")
    });
    let first = sink.requests.recv().await.unwrap();
    // The first redelivery is held by the sink: nothing else may go out meanwhile.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        sink.drain().is_empty(),
        "sent while the backlog was in flight"
    );
    release.add_permits(1);
    let second = sink.requests.recv().await.unwrap();
    let third = sink.requests.recv().await.unwrap();
    let message = |r: &super::receiver::Recorded| body(r)["message"].as_str().unwrap().to_owned();
    assert!(
        message(&first).contains("Delivered late"),
        "{}",
        message(&first)
    );
    assert!(message(&second).contains("Delivered late"));
    assert!(!message(&third).contains("Delivered late"));
    assert_eq!(body(&third)["title"], "✅ api recovered");
    let mut uids = Vec::new();
    for _ in 0..3 {
        let delivery = results.recv().await.unwrap();
        assert!(delivery.delivered_at.is_some(), "{delivery:?}");
        uids.push(delivery.uid);
    }
    assert_eq!(uids, ["old-1", "old-2", "new"]);
    d.shutdown(Duration::from_secs(1)).await;
}

/// A dead webhook fails the first redelivered alert; the rest of the backlog is recorded as
/// failed without trying, so this run's alerts are not held back for all its retries.
#[tokio::test]
async fn a_failing_webhook_stops_the_backlog() {
    let mut sink = Receiver::start(vec![Reply::Status(500)]).await;
    let (d, mut results) = dispatcher(Some(sink.url()), fast_settings());
    d.redeliver(vec![alert("old-1"), alert("old-2"), alert("old-3")]);
    let first = results.recv().await.unwrap();
    assert_eq!((first.uid.as_str(), first.attempts), ("old-1", 3));
    for uid in ["old-2", "old-3"] {
        let skipped = results.recv().await.unwrap();
        assert_eq!(skipped.uid, uid);
        assert_eq!(skipped.attempts, 0);
        assert!(!skipped.interrupted);
        assert!(skipped.last_error.unwrap().contains("not redelivered"));
    }
    d.dispatch(alert("new"));
    assert_eq!(results.recv().await.unwrap().attempts, 3);
    d.shutdown(Duration::from_secs(1)).await;
    assert_eq!(sink.drain().len(), 6);
}

/// At shutdown the backlog not yet reached reports nothing: it stays pending in the database
/// for the next start.
#[tokio::test]
async fn shutdown_leaves_the_rest_of_the_backlog_pending() {
    let mut sink = Receiver::start(vec![Reply::Hang]).await;
    let settings = DeliverySettings {
        timeout: Duration::from_secs(30),
        ..fast_settings()
    };
    let (d, mut results) = dispatcher(Some(sink.url()), settings);
    d.redeliver(vec![alert("old-1"), alert("old-2")]);
    d.dispatch(alert("new"));
    sink.requests.recv().await.unwrap();
    d.shutdown(Duration::from_millis(50)).await;
    let mut got = Vec::new();
    while let Ok(delivery) = results.try_recv() {
        assert!(delivery.interrupted, "{delivery:?}");
        got.push(delivery.uid);
    }
    got.sort();
    assert_eq!(got, ["new", "old-1"]);
}
