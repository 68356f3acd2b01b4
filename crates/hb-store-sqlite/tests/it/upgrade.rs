//! Databases made by the original tool: upgraded in place, additively, and appended to.

use hb_store_sqlite::SqliteError;
use hb_store_sqlite::Writer;
use hb_store_sqlite::schema::LATEST_VERSION;
use jiff::Timestamp;
use rusqlite::Connection;

use crate::schema::index_columns;
use crate::support::{count, cycle, read_only};

/// The original tool's DDL (SPEC §3.6), with index names of its own.
pub const ORIGINAL_DDL: &str = "
PRAGMA journal_mode = WAL;
CREATE TABLE monitoring_cycles (
    id TEXT PRIMARY KEY,
    timestamp_lima TEXT NOT NULL,
    cpu_percent REAL NOT NULL,
    ram_percent REAL NOT NULL,
    ram_used_mb REAL NOT NULL,
    disk_percent REAL NOT NULL,
    uptime_seconds REAL,
    container_count INTEGER NOT NULL,
    internet_status BOOLEAN NOT NULL,
    ping_ms REAL,
    worker_status INTEGER,
    cycle_duration_ms INTEGER
);
CREATE TABLE service_checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cycle_id TEXT NOT NULL REFERENCES monitoring_cycles(id),
    service_name TEXT NOT NULL,
    service_url TEXT,
    status TEXT NOT NULL,
    status_code INTEGER,
    latency_ms REAL,
    error_message TEXT
);
CREATE INDEX idx_timestamp ON monitoring_cycles(timestamp_lima);
CREATE INDEX idx_cycles_ts_id ON monitoring_cycles(timestamp_lima, id);
CREATE INDEX idx_service_name ON service_checks(service_name);
CREATE INDEX idx_cycle_id ON service_checks(cycle_id);
CREATE INDEX idx_checks_composite ON service_checks(cycle_id, service_name, latency_ms);
";

const OLD_TIMESTAMPS: [&str; 5] = [
    "2026-11-29T15:41:02.123456-05:00",
    "2026-11-29T15:42:02-05:00",
    "2026-11-29T15:43:02.5-05:00",
    "2026-11-29T15:44:02.999999-05:00",
    "2026-11-30T00:10:00.000400+00:00",
];

fn write_original(conn: &Connection) {
    for (i, ts) in OLD_TIMESTAMPS.iter().enumerate() {
        let id = format!("old-{i}");
        conn.execute(
            "INSERT INTO monitoring_cycles VALUES (?1, ?2, 1.5, 2.5, 300.0, 4.5, 99.0, 3, 1, 12.0, 200, 800)",
            (&id, ts),
        )
        .expect("old cycle");
        conn.execute(
            "INSERT INTO service_checks (cycle_id, service_name, service_url, status, status_code, latency_ms, error_message) \
             VALUES (?1, 'api', 'https://example.test/', 'healthy', 200, 45.0, NULL)",
            [&id],
        )
        .expect("old check");
    }
}

#[test]
fn original_database_is_upgraded_and_appended_to() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("metrics.db");
    {
        let conn = Connection::open(&path).expect("create original");
        conn.execute_batch(ORIGINAL_DDL).expect("original ddl");
        write_original(&conn);
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .expect("version");
        assert_eq!(version, 0);
    }

    let mut writer = Writer::open(&path).expect("upgrade");
    writer.record_cycle(&cycle(1, 2), &[]).expect("append");

    let conn = read_only(&path);
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("version");
    assert_eq!(version, LATEST_VERSION);
    assert_eq!(count(&conn, "SELECT count(*) FROM monitoring_cycles"), 6);
    assert_eq!(count(&conn, "SELECT count(*) FROM service_checks"), 7);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM service_checks WHERE cycle_id LIKE 'old-%' AND service_name = 'api' AND latency_ms = 45.0"
        ),
        5
    );

    for (i, ts) in OLD_TIMESTAMPS.iter().enumerate() {
        let stored: Option<i64> = conn
            .query_row(
                "SELECT ts_ms FROM monitoring_cycles WHERE id = ?1",
                [format!("old-{i}")],
                |row| row.get(0),
            )
            .expect("ts_ms");
        let parsed: Timestamp = ts.parse().expect("jiff parses the stored timestamp");
        // SQLite keeps whole milliseconds and drops the rest, as jiff does.
        assert_eq!(stored, Some(parsed.as_millisecond()), "{ts}");
    }
    let new_ts: i64 = conn
        .query_row(
            "SELECT ts_ms FROM monitoring_cycles WHERE id = ?1",
            [cycle(1, 2).id],
            |row| row.get(0),
        )
        .expect("new ts_ms");
    assert_eq!(new_ts, cycle(1, 2).timestamp_ms);

    // The original indexes are kept and not duplicated under other names.
    let cycles_indexes = index_columns(&conn, "monitoring_cycles");
    assert_eq!(cycles_indexes.len(), 3, "{cycles_indexes:?}");
    let checks_indexes = index_columns(&conn, "service_checks");
    assert_eq!(checks_indexes.len(), 3, "{checks_indexes:?}");
}

#[test]
fn original_database_lacking_late_columns_gets_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("metrics.db");
    {
        let conn = Connection::open(&path).expect("create original");
        conn.execute_batch(
            "CREATE TABLE monitoring_cycles (
                id TEXT PRIMARY KEY,
                timestamp_lima TEXT NOT NULL,
                cpu_percent REAL NOT NULL,
                ram_percent REAL NOT NULL,
                ram_used_mb REAL NOT NULL,
                disk_percent REAL NOT NULL,
                container_count INTEGER NOT NULL,
                internet_status BOOLEAN NOT NULL
            );
            INSERT INTO monitoring_cycles VALUES
                ('early', '2026-11-29T15:41:02-05:00', 1, 2, 3, 4, 5, 0);",
        )
        .expect("early ddl");
    }
    let mut writer = Writer::open(&path).expect("upgrade");
    let new = cycle(7, 1);
    writer.record_cycle(&new, &[]).expect("append");

    let conn = read_only(&path);
    let row: (Option<f64>, Option<f64>, Option<i64>, Option<i64>) = conn
        .query_row(
            "SELECT uptime_seconds, ping_ms, worker_status, cycle_duration_ms FROM monitoring_cycles WHERE id = ?1",
            [&new.id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .expect("new row");
    assert_eq!(row, (Some(3607.0), Some(20.0), Some(200), Some(950)));
    let early: (Option<f64>, i64) = conn
        .query_row(
            "SELECT ping_ms, ts_ms FROM monitoring_cycles WHERE id = 'early'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("early row");
    assert_eq!(early, (None, 1_795_984_862_000));
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("metrics.db");
    {
        let conn = Connection::open(&path).expect("create");
        conn.execute_batch("PRAGMA user_version = 99")
            .expect("version");
    }
    match Writer::open(&path) {
        Err(SqliteError::UnknownSchemaVersion { found, .. }) => assert_eq!(found, 99),
        other => panic!("expected UnknownSchemaVersion, got {other:?}"),
    }
}
