//! Alerts are written with the cycle that created them; delivery results update the right row.

use hb_core::AlertDelivery;
use hb_store_writer::{DurableWriter, PendingOp, Writer};

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
        })
        .expect("delivery");
    writer
        .record_delivery(&AlertDelivery {
            uid: "a-1".to_string(),
            attempts: 1,
            delivered_at: Some("2026-11-29T15:41:03-05:00".to_string()),
            last_error: None,
        })
        .expect("delivery");
    writer
        .record_delivery(&AlertDelivery {
            uid: "never-stored".to_string(),
            attempts: 1,
            delivered_at: None,
            last_error: None,
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
    let mut durable = DurableWriter::new(path.clone(), 10);
    let report = durable.submit(PendingOp::Cycle(cycle(1, 1), vec![alert("a-1", "api")]));
    assert_eq!((report.written, report.pending), (1, 0));
    let report = durable.submit(PendingOp::Delivery(AlertDelivery {
        uid: "a-1".to_string(),
        attempts: 2,
        delivered_at: Some("2026-11-29T15:41:09-05:00".to_string()),
        last_error: Some("timeout".to_string()),
    }));
    assert_eq!((report.written, report.pending), (1, 0));
    let conn = read_only(&path);
    let row = alert_row(&conn, "a-1");
    assert_eq!((row.3, row.5.as_deref()), (2, Some("timeout")));
}
