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

/// A cycle at `ts_ms` (shown at -05:00, whole milliseconds) with `services` services whose
/// values vary with `i`. Every value is a multiple of 1/4, so sums are exact in any order and
/// aggregates built in different orders (per cycle, per backfill batch) compare equal.
pub fn cycle_at(i: u64, ts_ms: i64, services: usize) -> CycleRecord {
    let mut c = cycle(i, services);
    c.id = format!("10000000-0000-4000-8000-{i:012}");
    c.timestamp_ms = ts_ms;
    c.timestamp = Timestamp::from_millisecond(ts_ms)
        .expect("test instants are in range")
        .display_with_offset(tz::offset(-5))
        .to_string();
    let q = |n: u64| (n % 97) as f64 * 0.25;
    c.host.cpu_percent = q(i);
    c.host.ram_percent = 20.0 + q(i * 3);
    c.host.disk_percent = 50.0 + q(i / 7);
    c.internet.online = !i.is_multiple_of(5);
    c.internet.ping_ms = (!i.is_multiple_of(5)).then(|| 5.0 + q(i * 11));
    c.worker_status = match i % 7 {
        0 => None,
        1 => Some(503),
        _ => Some(200),
    };
    c.cycle_duration_ms = 900 + (i % 50) as i64;
    for (j, s) in c.services.iter_mut().enumerate() {
        let k = i + j as u64 * 13;
        s.outcome = match k % 9 {
            0 => CheckOutcome::from_http_status(503, 31.0 + q(k)),
            1 => CheckOutcome::timeout(),
            _ => CheckOutcome::healthy(Some(10.0 + q(k * 5))),
        };
    }
    c
}

/// The older tool's database at `path` (its DDL, no `ts_ms`, no rollups, `-05:00` text
/// timestamps) holding `cycles`, written as its Python `sqlite3` would.
pub fn older_tool_db(path: &Path, cycles: &[CycleRecord]) {
    let mut conn = Connection::open(path).expect("create original");
    conn.execute_batch(crate::upgrade::ORIGINAL_DDL)
        .expect("original ddl");
    let tx = conn.transaction().expect("tx");
    {
        let mut ins = tx
            .prepare(
                "INSERT INTO monitoring_cycles VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .expect("prepare cycle");
        let mut chk = tx
            .prepare(
                "INSERT INTO service_checks (cycle_id, service_name, service_url, status, \
                 status_code, latency_ms, error_message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .expect("prepare check");
        for c in cycles {
            ins.execute(rusqlite::params![
                c.id,
                c.timestamp,
                c.host.cpu_percent,
                c.host.ram_percent,
                c.host.ram_used_mb,
                c.host.disk_percent,
                c.host.uptime_seconds,
                c.container_count,
                c.internet.online,
                c.internet.ping_ms,
                c.worker_status,
                c.cycle_duration_ms,
            ])
            .expect("old cycle");
            for s in &c.services {
                chk.execute(rusqlite::params![
                    c.id,
                    s.name,
                    s.url,
                    s.outcome.status.as_str(),
                    s.outcome.status_code,
                    s.outcome.latency_ms,
                    s.outcome.reason,
                ])
                .expect("old check");
            }
        }
    }
    tx.commit().expect("commit");
}

/// The rollup_meta value of `key`.
pub fn meta(conn: &Connection, key: &str) -> Option<i64> {
    use rusqlite::OptionalExtension;
    conn.query_row("SELECT value FROM rollup_meta WHERE key = ?1", [key], |r| {
        r.get(0)
    })
    .optional()
    .expect("rollup_meta")
}

/// Windows of `path` as the dashboard reads them, one per `(start_s, width_s, count)`.
pub fn windows(path: &Path, layouts: &[(i64, i64, usize)]) -> Vec<hb_store::Window> {
    let reader = hb_store_sqlite::SqliteReader::new(path.to_path_buf());
    let r: &dyn hb_store::ReadStore = &reader;
    layouts
        .iter()
        .map(|&(start, width, count)| r.query(|q| q.window(start, width, count)).expect("window"))
        .collect()
}

/// The dashboard's layout of a range ending at `end_s`: `count` buckets of `width_s` aligned
/// to multiples of the width, the last one holding `end_s`.
pub fn layout(end_s: i64, width_s: i64, count: usize) -> (i64, i64, usize) {
    let last = end_s.div_euclid(width_s) * width_s;
    (last - (count as i64 - 1) * width_s, width_s, count)
}

/// Raw cycles with no service check, and service checks with no cycle.
pub fn orphans(conn: &Connection) -> (i64, i64) {
    (
        count(
            conn,
            "SELECT count(*) FROM monitoring_cycles c \
             WHERE NOT EXISTS (SELECT 1 FROM service_checks s WHERE s.cycle_id = c.id)",
        ),
        count(
            conn,
            "SELECT count(*) FROM service_checks s \
             WHERE NOT EXISTS (SELECT 1 FROM monitoring_cycles c WHERE c.id = s.cycle_id)",
        ),
    )
}

/// Cycle instants ending at `end_ms`: one every ten minutes over `days` days, then one every
/// ten seconds over the last three hours (so narrow ranges have data too), oldest first.
pub fn schedule(end_ms: i64, days: i64) -> Vec<i64> {
    let dense_from = end_ms - 3 * 3_600_000;
    let mut out: Vec<i64> = (0..)
        .map(|k| end_ms - days * 86_400_000 + k * 600_000 + 123)
        .take_while(|&t| t < dense_from)
        .collect();
    out.extend(
        (0..)
            .map(|k| dense_from + k * 10_000 + 457)
            .take_while(|&t| t <= end_ms),
    );
    out
}

/// Cycles at the instants of [`schedule`], numbered from 0.
pub fn cycles_on(instants: &[i64], services: usize) -> Vec<CycleRecord> {
    instants
        .iter()
        .enumerate()
        .map(|(i, &t)| cycle_at(i as u64, t, services))
        .collect()
}
