//! Alerts are written with the cycle that created them; delivery results update the right row.

use hb_core::AlertDelivery;
use hb_store::{DurableWriter, PendingOp};
use hb_store_sqlite::{SqliteStore, Writer};

use crate::support::{alert, count, cycle, read_only};

type AlertRow = (
    String,
    Option<String>,
    String,
    i64,
    Option<String>,
    Option<String>,
    i64,
);

fn alert_row(conn: &rusqlite::Connection, uid: &str) -> AlertRow {
    conn.query_row(
        "SELECT item, old_status, new_status, attempts, delivered_at, last_error, created_ms \
         FROM alerts WHERE uid = ?1",
        [uid],
        |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
            ))
        },
    )
    .expect("alert row")
}

#[test]
fn alerts_are_written_with_their_cycle_and_deliveries_update_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("metrics.db");
    let mut writer = Writer::open(&path).expect("open");
    writer
        .record_cycle(&cycle(1, 2), &[alert("a-1", "api"), alert("a-2", "worker")])
        .expect("record");

    let conn = read_only(&path);
    let created_ms = 1_795_984_862_250;
    assert_eq!(
        alert_row(&conn, "a-1"),
        (
            "api".to_string(),
            Some("healthy".to_string()),
            "down".to_string(),
            0,
            None,
            None,
            created_ms
        )
    );
    let (title, message): (String, String) = conn
        .query_row(
            "SELECT title, message FROM alerts WHERE uid = 'a-2'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("texts");
    assert_eq!(title, "worker is down");
    assert_eq!(message, "**worker** is down: HTTP 503");

    writer
        .record_delivery(&AlertDelivery {
            uid: "a-2".to_string(),
            attempts: 3,
            delivered_at: None,
            last_error: Some("HTTP 502 from webhook".to_string()),
            interrupted: false,
        })
        .expect("delivery");
    writer
        .record_delivery(&AlertDelivery {
            uid: "a-1".to_string(),
            attempts: 1,
            delivered_at: Some("2026-11-29T15:41:03-05:00".to_string()),
            last_error: None,
            interrupted: false,
        })
        .expect("delivery");
    writer
        .record_delivery(&AlertDelivery {
            uid: "never-stored".to_string(),
            attempts: 1,
            delivered_at: None,
            last_error: None,
            interrupted: false,
        })
        .expect("an unknown uid is not an error");

    let a1 = alert_row(&conn, "a-1");
    assert_eq!(
        (a1.3, a1.4.as_deref(), a1.5),
        (1, Some("2026-11-29T15:41:03-05:00"), None)
    );
    let a2 = alert_row(&conn, "a-2");
    assert_eq!(
        (a2.3, a2.4, a2.5.as_deref()),
        (3, None, Some("HTTP 502 from webhook"))
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM alerts"), 2);
}

#[test]
fn deliveries_queue_behind_their_cycle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("metrics.db");
    let mut durable = DurableWriter::new(Box::new(SqliteStore::new(path.clone())), 10);
    let report = durable.submit(PendingOp::Cycle(cycle(1, 1), vec![alert("a-1", "api")]));
    assert_eq!((report.written, report.pending), (1, 0));
    let report = durable.submit(PendingOp::Delivery(AlertDelivery {
        uid: "a-1".to_string(),
        attempts: 2,
        delivered_at: Some("2026-11-29T15:41:09-05:00".to_string()),
        last_error: Some("timeout".to_string()),
        interrupted: false,
    }));
    assert_eq!((report.written, report.pending), (1, 0));
    let conn = read_only(&path);
    let row = alert_row(&conn, "a-1");
    assert_eq!((row.3, row.5.as_deref()), (2, Some("timeout")));
}

fn state(conn: &rusqlite::Connection, uid: &str) -> (Option<String>, Option<String>) {
    conn.query_row(
        "SELECT delivery_state, redelivered_at FROM alerts WHERE uid = ?1",
        [uid],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )
    .expect("alert row")
}

fn delivery(uid: &str, delivered: bool, interrupted: bool) -> AlertDelivery {
    AlertDelivery {
        uid: uid.to_owned(),
        attempts: 1,
        delivered_at: delivered.then(|| "2026-11-29T15:41:09-05:00".to_owned()),
        last_error: (!delivered).then(|| "timeout".to_owned()),
        interrupted,
    }
}

/// `alert` created `ms` after the fixture's instant.
fn alert_at(uid: &str, item: &str, created_ms: i64) -> hb_core::AlertRecord {
    let created_at = jiff::Timestamp::from_millisecond(created_ms)
        .expect("instant")
        .display_with_offset(jiff::tz::offset(-5))
        .to_string();
    hb_core::AlertRecord {
        created_at,
        ..alert(uid, item)
    }
}

#[test]
fn delivery_results_set_the_state_and_an_interrupted_one_stays_pending() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("metrics.db");
    let mut writer = Writer::open(&path).expect("open");
    let alerts = [alert("d", "api"), alert("f", "api"), alert("i", "api")];
    writer.record_cycle(&cycle(1, 1), &alerts).expect("record");
    for d in [
        delivery("d", true, false),
        delivery("f", false, false),
        delivery("i", false, true),
    ] {
        writer.record_delivery(&d).expect("delivery");
    }
    let conn = read_only(&path);
    assert_eq!(state(&conn, "d").0.as_deref(), Some("delivered"));
    assert_eq!(state(&conn, "f").0.as_deref(), Some("failed"));
    assert_eq!(state(&conn, "i").0, None);
}

#[test]
fn the_outbox_gives_up_old_alerts_and_returns_the_young_ones_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("metrics.db");
    let mut writer = Writer::open(&path).expect("open");
    let base = crate::support::BASE_MS;
    let hour = 3_600_000;
    // Written out of order: the outbox sends by creation time.
    let alerts = [
        alert_at("young-2", "api", base + 2_000),
        alert_at("old", "api", base - 2 * hour),
        alert_at("young-1", "db", base + 1_000),
        alert_at("delivered", "api", base),
        alert_at("failed", "api", base),
        alert_at("interrupted", "db", base + 3_000),
    ];
    writer.record_cycle(&cycle(1, 1), &alerts).expect("record");
    writer
        .record_delivery(&delivery("delivered", true, false))
        .expect("delivery");
    writer
        .record_delivery(&delivery("failed", false, false))
        .expect("delivery");
    writer
        .record_delivery(&delivery("interrupted", false, true))
        .expect("delivery");

    let outbox = writer
        .claim_outbox(base + 10_000, "restart-time", hour, "given up: too old")
        .expect("outbox");
    let uids: Vec<&str> = outbox
        .redeliver
        .iter()
        .map(|a| a.alert.uid.as_str())
        .collect();
    assert_eq!(uids, ["young-1", "young-2", "interrupted"]);
    assert_eq!(outbox.redeliver[0].alert.item, "db");
    assert_eq!(outbox.redeliver[0].alert.message, alerts[2].message);
    assert_eq!(outbox.given_up, 1);

    let conn = read_only(&path);
    for uid in uids {
        assert_eq!(state(&conn, uid), (None, Some("restart-time".to_owned())));
    }
    let (state_old, late_old) = state(&conn, "old");
    assert_eq!((state_old.as_deref(), late_old), (Some("given_up"), None));
    assert_eq!(
        alert_row(&conn, "old").5.as_deref(),
        Some("given up: too old")
    );
    assert_eq!(state(&conn, "delivered").0.as_deref(), Some("delivered"));
    assert_eq!(state(&conn, "failed").0.as_deref(), Some("failed"));

    // Delivered late: the state follows, the mark stays.
    writer
        .record_delivery(&delivery("young-1", true, false))
        .expect("delivery");
    assert_eq!(
        state(&conn, "young-1"),
        (
            Some("delivered".to_owned()),
            Some("restart-time".to_owned())
        )
    );
}

#[test]
fn stored_history_of_services_and_the_worker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("metrics.db");
    let mut writer = Writer::open(&path).expect("open");
    let empty = writer.service_history("svc-01", 4).expect("history");
    assert_eq!(empty, hb_core::StoredHistory::default());

    let mut down = alert_at("w", "worker", cycle(2, 0).timestamp_ms);
    down.new_status = "no response".to_owned();
    for i in 0..6 {
        let mut c = cycle(i, 2);
        if i == 5 {
            c.worker_status = None;
        }
        let alerts = if i == 2 {
            vec![down.clone()]
        } else {
            Vec::new()
        };
        writer.record_cycle(&c, &alerts).expect("record");
    }
    // svc-01 is the fixture's 503 service, svc-00 a healthy one.
    let h = writer.service_history("svc-01", 3).expect("history");
    assert_eq!(h.last_alert, None);
    assert_eq!(
        h.recent,
        (3..6)
            .rev()
            .map(|i| ("error".to_owned(), cycle(i, 0).timestamp_ms))
            .collect::<Vec<_>>()
    );
    let w = writer.worker_history(2).expect("worker");
    assert_eq!(
        w.last_alert,
        Some(("no response".to_owned(), cycle(2, 0).timestamp_ms))
    );
    assert_eq!(
        w.recent,
        [
            ("no response".to_owned(), cycle(5, 0).timestamp_ms),
            ("200".to_owned(), cycle(4, 0).timestamp_ms)
        ]
    );
}
