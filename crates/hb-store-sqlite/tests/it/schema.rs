//! A database created from nothing: tables, columns, indexes, version, WAL, file modes, and a
//! read-only reader that still works after the writer has gone.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hb_store_sqlite::Writer;
use hb_store_sqlite::schema::LATEST_VERSION;
use rusqlite::Connection;

use crate::support::{count, cycle, read_only};

fn columns(conn: &Connection, table: &str) -> Vec<(String, String, bool)> {
    let mut stmt = conn
        .prepare("SELECT name, type, \"notnull\" FROM pragma_table_info(?1) ORDER BY cid")
        .expect("prepare");
    stmt.query_map([table], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// Column lists of every index on `table` (names do not matter, columns do).
pub fn index_columns(conn: &Connection, table: &str) -> Vec<Vec<String>> {
    let mut list = conn
        .prepare("SELECT name FROM pragma_index_list(?1) WHERE origin = 'c'")
        .expect("prepare");
    let names: Vec<String> = list
        .query_map([table], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    names
        .iter()
        .map(|name| {
            let mut info = conn
                .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
                .expect("prepare");
            info.query_map([name], |row| row.get(0))
                .expect("query")
                .collect::<Result<Vec<String>, _>>()
                .expect("rows")
        })
        .collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

fn owned(cols: &[(&str, &str, bool)]) -> Vec<(String, String, bool)> {
    cols.iter()
        .map(|(n, t, nn)| (n.to_string(), t.to_string(), *nn))
        .collect()
}

#[test]
fn creates_the_schema_from_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("data/nested/metrics.db");
    let mut writer = Writer::open(&path).expect("open");
    writer.record_cycle(&cycle(1, 3), &[]).expect("record");

    let conn = read_only(&path);
    assert_eq!(
        columns(&conn, "monitoring_cycles"),
        owned(&[
            ("id", "TEXT", false),
            ("timestamp_lima", "TEXT", true),
            ("cpu_percent", "REAL", true),
            ("ram_percent", "REAL", true),
            ("ram_used_mb", "REAL", true),
            ("disk_percent", "REAL", true),
            ("uptime_seconds", "REAL", false),
            ("container_count", "INTEGER", true),
            ("internet_status", "BOOLEAN", true),
            ("ping_ms", "REAL", false),
            ("worker_status", "INTEGER", false),
            ("cycle_duration_ms", "INTEGER", false),
            ("ts_ms", "INTEGER", false),
        ])
    );
    assert_eq!(
        columns(&conn, "service_checks"),
        owned(&[
            ("id", "INTEGER", false),
            ("cycle_id", "TEXT", true),
            ("service_name", "TEXT", true),
            ("service_url", "TEXT", false),
            ("status", "TEXT", true),
            ("status_code", "INTEGER", false),
            ("latency_ms", "REAL", false),
            ("error_message", "TEXT", false),
        ])
    );
    let alert_columns: Vec<String> = columns(&conn, "alerts").into_iter().map(|c| c.0).collect();
    for wanted in [
        "id",
        "uid",
        "created_at",
        "created_ms",
        "item",
        "old_status",
        "new_status",
        "title",
        "message",
        "attempts",
        "delivered_at",
        "last_error",
    ] {
        assert!(alert_columns.iter().any(|c| c == wanted), "alerts.{wanted}");
    }
    let sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE name = 'service_checks'",
            [],
            |row| row.get(0),
        )
        .expect("ddl");
    assert!(sql.contains("AUTOINCREMENT"), "{sql}");
    assert!(sql.contains("REFERENCES monitoring_cycles(id)"), "{sql}");

    let mut cycles = index_columns(&conn, "monitoring_cycles");
    cycles.sort();
    assert_eq!(
        cycles,
        vec![
            vec!["timestamp_lima".to_string()],
            vec!["timestamp_lima".to_string(), "id".to_string()],
            vec!["ts_ms".to_string()],
        ]
    );
    let mut checks = index_columns(&conn, "service_checks");
    checks.sort();
    assert_eq!(
        checks,
        vec![
            vec!["cycle_id".to_string()],
            vec![
                "cycle_id".to_string(),
                "service_name".to_string(),
                "latency_ms".to_string()
            ],
            vec!["service_name".to_string()],
        ]
    );
    let mut alerts = index_columns(&conn, "alerts");
    alerts.sort();
    assert_eq!(
        alerts,
        vec![
            vec!["created_ms".to_string()],
            vec!["item".to_string(), "created_ms".to_string()],
        ]
    );

    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("version");
    assert_eq!(version, LATEST_VERSION);
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .expect("journal mode");
    assert_eq!(journal, "wal");
    drop(conn);

    let wal = dir.path().join("data/nested/metrics.db-wal");
    let shm = dir.path().join("data/nested/metrics.db-shm");
    for file in [&path, &wal, &shm] {
        assert_eq!(mode(file), 0o644, "{}", file.display());
    }
    assert_eq!(mode(&dir.path().join("data")), 0o755);
    assert_eq!(mode(&dir.path().join("data/nested")), 0o755);

    drop(writer);
    assert!(wal.exists(), "the -wal file must outlive the writer");
    assert!(shm.exists(), "the -shm file must outlive the writer");

    let reader = read_only(&path);
    assert_eq!(count(&reader, "SELECT count(*) FROM monitoring_cycles"), 1);
    assert_eq!(count(&reader, "SELECT count(*) FROM service_checks"), 3);
    let (status, reason, internet): (String, Option<String>, bool) = reader
        .query_row(
            "SELECT s.status, s.error_message, c.internet_status FROM service_checks s \
             JOIN monitoring_cycles c ON c.id = s.cycle_id WHERE s.service_name = 'svc-01'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .expect("service row");
    assert_eq!(status, "error");
    assert_eq!(reason.as_deref(), Some("HTTP 503"));
    assert!(!internet);
}

#[test]
fn reopening_changes_nothing_in_the_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("metrics.db");
    drop(Writer::open(&path).expect("first open"));
    let before: Vec<String> = {
        let conn = read_only(&path);
        let mut stmt = conn
            .prepare("SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name")
            .expect("prepare");
        stmt.query_map([], |row| row.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    let mut writer = Writer::open(&path).expect("second open");
    writer.record_cycle(&cycle(1, 2), &[]).expect("record");
    let conn = read_only(&path);
    let mut stmt = conn
        .prepare("SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name")
        .expect("prepare");
    let after: Vec<String> = stmt
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(before, after);
}

#[test]
fn the_same_cycle_twice_is_stored_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("metrics.db");
    let mut writer = Writer::open(&path).expect("open");
    writer.record_cycle(&cycle(1, 4), &[]).expect("first");
    writer.record_cycle(&cycle(1, 4), &[]).expect("second");
    let conn = read_only(&path);
    assert_eq!(count(&conn, "SELECT count(*) FROM monitoring_cycles"), 1);
    assert_eq!(count(&conn, "SELECT count(*) FROM service_checks"), 4);
}

#[test]
fn record_cycles_writes_all_of_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("metrics.db");
    let mut writer = Writer::open(&path).expect("open");
    let cycles: Vec<_> = (0..50).map(|i| cycle(i, 5)).collect();
    writer.record_cycles(&cycles).expect("bulk");
    let conn = read_only(&path);
    assert_eq!(count(&conn, "SELECT count(*) FROM monitoring_cycles"), 50);
    assert_eq!(count(&conn, "SELECT count(*) FROM service_checks"), 250);
    let ts: Vec<i64> = conn
        .prepare("SELECT ts_ms FROM monitoring_cycles ORDER BY rowid")
        .expect("prepare")
        .query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    let expected: Vec<i64> = cycles.iter().map(|c| c.timestamp_ms).collect();
    assert_eq!(ts, expected);
}
