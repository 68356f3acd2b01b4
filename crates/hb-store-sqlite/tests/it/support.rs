//! Shared test data and read-side helpers.

use std::path::Path;

use hb_core::{
    AlertRecord, CheckOutcome, CycleRecord, HostMetrics, InternetCheck, ServiceKind, ServiceResult,
};
use jiff::{Timestamp, tz};
use rusqlite::{Connection, OpenFlags};

/// 2026-11-29T15:41:02-05:00
pub const BASE_MS: i64 = 1_795_984_862_000;

/// Cycle number `i`: one second after cycle `i - 1`, with `services` service results.
pub fn cycle(i: u64, services: usize) -> CycleRecord {
    let ts_ms = BASE_MS + i as i64 * 1000 + (i as i64 % 997);
    let timestamp = Timestamp::from_millisecond(ts_ms)
        .expect("test instants are in range")
        .display_with_offset(tz::offset(-5))
        .to_string();
    CycleRecord {
        id: cycle_id(i),
        timestamp,
        timestamp_ms: ts_ms,
        host: HostMetrics {
            cpu_percent: 12.5,
            ram_percent: 40.0,
            ram_used_mb: 2048.0,
            disk_percent: 15.0,
            uptime_seconds: Some(3600.0 + i as f64),
        },
        container_count: 7,
        internet: InternetCheck {
            online: i.is_multiple_of(2),
            ping_ms: Some(20.0),
        },
        worker_status: Some(200),
        cycle_duration_ms: 950,
        services: (0..services)
            .map(|j| ServiceResult {
                name: format!("svc-{j:02}"),
                kind: if j % 3 == 0 {
                    ServiceKind::Docker
                } else {
                    ServiceKind::Http
                },
                url: format!("http://127.0.0.1:8{j:03}/health"),
                outcome: if j % 4 == 1 {
                    CheckOutcome::from_http_status(503, 31.0)
                } else {
                    CheckOutcome::healthy(Some(10.0 + j as f64))
                },
            })
            .collect(),
    }
}

pub fn cycle_id(i: u64) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

pub fn alert(uid: &str, item: &str) -> AlertRecord {
    AlertRecord {
        uid: uid.to_owned(),
        created_at: "2026-11-29T15:41:02.250-05:00".to_owned(),
        item: item.to_owned(),
        old_status: Some("healthy".to_owned()),
        new_status: "down".to_owned(),
        title: format!("{item} is down"),
        message: format!("**{item}** is down: HTTP 503"),
    }
}

/// A connection as the dashboard opens one.
pub fn read_only(path: &Path) -> Connection {
    Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .expect("open read-only")
}

pub fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |row| row.get(0)).expect(sql)
}

/// Cycle ids in the order they were inserted.
pub fn stored_cycle_ids(conn: &Connection) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT id FROM monitoring_cycles ORDER BY rowid")
        .expect("prepare");
    stmt.query_map([], |row| row.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// Cycles whose number of service rows is not `services`.
pub fn incomplete_cycles(conn: &Connection, services: i64) -> i64 {
    conn.query_row(
        "SELECT count(*) FROM monitoring_cycles c \
         WHERE (SELECT count(*) FROM service_checks s WHERE s.cycle_id = c.id) != ?1",
        [services],
        |row| row.get(0),
    )
    .expect("incomplete cycles")
}

/// Pseudo-random numbers without a crate: a xorshift seeded from the clock.
pub struct Rng(u64);

impl Rng {
    pub fn from_clock() -> Rng {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos() as u64;
        Rng(nanos | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

pub use hb_testkit::require;
