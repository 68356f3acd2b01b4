//! The read-only reader: connections opened with `SQLITE_OPEN_READ_ONLY` (never a PRAGMA that
//! writes; `immutable` only on a database no writer has open, see [`Reader::query`]), and every
//! query the dashboard asks. Time windows are answered from the rollup tables where they cover
//! the window and from raw rows otherwise (older databases), into the same mergeable aggregates,
//! so both paths give the same numbers.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::rollup_schema::{Counts, CycleAcc, ServiceAcc, Stat, TIERS_S};

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The database is not there yet (missing file, no tables): retry later.
    #[error("database not ready: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl ReadError {
    fn classify(e: rusqlite::Error) -> ReadError {
        if let rusqlite::Error::SqliteFailure(f, msg) = &e {
            let no_table = msg.as_deref().is_some_and(|m| m.contains("no such table"));
            match f.code {
                rusqlite::ErrorCode::CannotOpen => {
                    return ReadError::Unavailable(CANNOT_OPEN.into());
                }
                rusqlite::ErrorCode::NotADatabase => {
                    return ReadError::Unavailable("the file is not a SQLite database".into());
                }
                _ if no_table => {
                    return ReadError::Unavailable("the database has no tables yet".into());
                }
                _ => {}
            }
        }
        ReadError::Sqlite(e)
    }
}

/// How many idle connections the reader keeps (callers bound concurrency to about this).
pub const POOL_MAX: usize = 4;

/// Page cache per connection, KiB. Rollup reads touch few pages; a small cache keeps the
/// dashboard's memory low. (`cache_size` is a per-connection setting: it writes nothing.)
const CACHE_KIB: i64 = 1024;

/// A pool of read-only connections to one database file. Opening never fails: a missing or
/// empty database shows up as [`ReadError::Unavailable`] on the first query.
#[derive(Debug)]
pub struct Reader {
    path: PathBuf,
    idle: Mutex<Vec<Conn>>,
    /// Whether the last connection opened was immutable; only for logging the switches once.
    immutable_mode: AtomicBool,
}

/// What the database holds, probed once per query so an upgrade by the agent is seen at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaInfo {
    pub has_ts_ms: bool,
    pub has_alerts: bool,
    /// The alerts table has the outbox columns (`delivery_state`, `redelivered_at`).
    pub has_alert_outbox: bool,
    /// `Some(ms)` when rollups exist and cover every cycle from `ms` on.
    pub rollups_from_ms: Option<i64>,
}

/// Which rows answered a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Raw,
    Rollup,
    Mixed,
}

/// A pooled connection. An immutable one carries the stamp of the file taken before it was
/// opened: it is valid only while the file still has that stamp (no writer came by).
#[derive(Debug)]
struct Conn {
    conn: Connection,
    immutable: Option<FileStamp>,
}

/// The identity and last change of the database file, taken while no `-wal`, `-shm` or
/// `-journal` file exists. A writer in WAL mode creates `-wal`/`-shm` before it reads or writes,
/// a rollback-journal writer creates `-journal`, and any change of the main file moves its
/// mtime/ctime/size (a file replaced by rename changes inode). So an equal stamp before and after
/// a read means no writer was active in between, or one came and went without changing anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

const CANNOT_OPEN: &str = "the database file cannot be opened";

/// How many times a read is retried when a writer appeared during an immutable read.
const IMMUTABLE_ATTEMPTS: usize = 4;

impl Reader {
    pub fn new(path: impl Into<PathBuf>) -> Reader {
        Reader {
            path: path.into(),
            idle: Mutex::new(Vec::new()),
            immutable_mode: AtomicBool::new(false),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sidecar(&self, suffix: &str) -> PathBuf {
        let mut name = self.path.as_os_str().to_os_string();
        name.push(suffix);
        PathBuf::from(name)
    }

    /// The stamp of the database file when no writer leaves a trace next to it (no `-wal`,
    /// `-shm` or `-journal`; with persistent WAL the first two stay after a writer exits), else
    /// `None`. Only then may it be read immutable.
    fn quiet_stamp(&self) -> Option<FileStamp> {
        if ["-wal", "-shm", "-journal"]
            .iter()
            .any(|s| std::fs::symlink_metadata(self.sidecar(s)).is_ok())
        {
            return None;
        }
        let m = std::fs::metadata(&self.path).ok().filter(|m| m.is_file())?;
        Some(FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }

    fn open(&self, immutable: Option<FileStamp>) -> Result<Conn, ReadError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = if immutable.is_some() {
            let uri = format!("file:{}?immutable=1", uri_path(&self.path));
            Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI)
        } else {
            Connection::open_with_flags(&self.path, flags)
        }
        .map_err(ReadError::classify)?;
        conn.busy_timeout(std::time::Duration::from_secs(2))
            .map_err(ReadError::classify)?;
        conn.set_prepared_statement_cache_capacity(64);
        conn.execute_batch(&format!("PRAGMA cache_size = -{CACHE_KIB}"))
            .map_err(ReadError::classify)?;
        Ok(Conn { conn, immutable })
    }

    /// A connection inside a fresh read transaction, with the schema probed.
    ///
    /// A WAL database whose `-wal`/`-shm` files are absent cannot be read with a normal
    /// read-only connection where SQLite may not create them: on a read-only mount it reports
    /// "cannot open", in a directory the user may not write (`0555`) "attempt to write a
    /// readonly database". Only then, and only when no writer's file is there
    /// ([`Reader::quiet_stamp`]), it is opened `immutable`. Such a connection is dropped as soon
    /// as the file's stamp changes; [`Reader::query`] also checks the stamp after the read.
    fn begin(&self) -> Result<(Conn, SchemaInfo), ReadError> {
        let stamp = self.quiet_stamp();
        loop {
            let pooled = self.idle.lock().ok().and_then(|mut v| v.pop());
            let Some(c) = pooled else { break };
            if c.immutable.is_some() && c.immutable != stamp {
                continue;
            }
            if let Ok(schema) = begin_probe(&c.conn) {
                return Ok((c, schema));
            }
        }
        let attempt = self
            .open(None)
            .and_then(|c| begin_probe(&c.conn).map(|s| (c, s)));
        match attempt {
            Ok(found) => {
                if self.immutable_mode.swap(false, Ordering::Relaxed) {
                    tracing::info!(
                        path = %self.path.display(),
                        "a writer appeared: reading the database with normal read-only connections"
                    );
                }
                Ok(found)
            }
            Err(e) if needs_wal_files(&e) && stamp.is_some() => {
                let c = self.open(stamp)?;
                let schema = begin_probe(&c.conn)?;
                if !self.immutable_mode.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        path = %self.path.display(),
                        "no writer and no -wal/-shm files: reading the database immutable"
                    );
                }
                Ok((c, schema))
            }
            Err(e) => Err(e),
        }
    }

    /// Runs `f` inside one read transaction (a consistent snapshot; no write lock).
    ///
    /// An immutable read is trusted only if the file's stamp is unchanged after it: a writer
    /// that started meanwhile (its `-wal`/`-shm` appeared, or the file changed) voids the answer,
    /// and `f` runs again on a fresh connection, normally a read-only one that sees the writer's
    /// WAL. So an answer from an immutable connection is never returned once a writer started.
    pub fn query<T>(
        &self,
        mut f: impl FnMut(&Query<'_>) -> Result<T, ReadError>,
    ) -> Result<T, ReadError> {
        for _ in 0..IMMUTABLE_ATTEMPTS {
            let (c, schema) = self.begin()?;
            let result = f(&Query {
                conn: &c.conn,
                schema,
            });
            // COMMIT of a read transaction only releases the snapshot.
            let end = c
                .conn
                .execute_batch(if result.is_ok() { "COMMIT" } else { "ROLLBACK" });
            if c.immutable.is_some() && c.immutable != self.quiet_stamp() {
                tracing::info!(
                    path = %self.path.display(),
                    "the database changed during an immutable read: reading it again"
                );
                continue;
            }
            let value = result?;
            end.map_err(ReadError::classify)?;
            if let Ok(mut idle) = self.idle.lock()
                && idle.len() < POOL_MAX
            {
                idle.push(c);
            }
            return Ok(value);
        }
        Err(ReadError::Unavailable(
            "the database kept changing while it was read immutable (a writer is starting)".into(),
        ))
    }

    /// Whether the last query was answered by an immutable connection.
    #[cfg(test)]
    fn is_immutable(&self) -> bool {
        self.idle
            .lock()
            .map(|v| v.last().is_some_and(|c| c.immutable.is_some()))
            .unwrap_or(false)
    }
}

/// Whether a normal read-only open failed only because SQLite could not create the `-wal`/`-shm`
/// files: "cannot open" (read-only mount) or SQLITE_READONLY (a directory the user may not
/// write). The reader issues no write, so a read-only error can only come from that.
fn needs_wal_files(e: &ReadError) -> bool {
    match e {
        ReadError::Unavailable(reason) => reason == CANNOT_OPEN,
        ReadError::Sqlite(e) => e.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly),
    }
}

/// Percent-encodes what a SQLite URI filename cannot hold literally.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for ch in path.to_string_lossy().chars() {
        match ch {
            '%' | '?' | '#' => out.push_str(&format!("%{:02X}", ch as u32)),
            _ => out.push(ch),
        }
    }
    out
}

fn begin_probe(conn: &Connection) -> Result<SchemaInfo, ReadError> {
    conn.execute_batch("BEGIN").map_err(ReadError::classify)?;
    match probe_schema(conn) {
        Ok(schema) => Ok(schema),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

fn probe_schema(conn: &Connection) -> Result<SchemaInfo, ReadError> {
    let mut tables = Vec::new();
    {
        let mut st = conn
            .prepare_cached("SELECT name FROM sqlite_master WHERE type = 'table'")
            .map_err(ReadError::classify)?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(ReadError::classify)?;
        for r in rows {
            tables.push(r.map_err(ReadError::classify)?);
        }
    }
    let has = |t: &str| tables.iter().any(|n| n == t);
    if !has("monitoring_cycles") || !has("service_checks") {
        return Err(ReadError::Unavailable(
            "the database has no tables yet (waiting for the agent)".into(),
        ));
    }
    let has_ts_ms: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info('monitoring_cycles') WHERE name = 'ts_ms')",
        )?
        .query_row([], |r| r.get(0))?;
    let rollups_from_ms = if has("rollup_meta") && has("rollup_cycles") && has("rollup_services") {
        conn.prepare_cached("SELECT value FROM rollup_meta WHERE key = 'covered_from_ms'")?
            .query_row([], |r| r.get::<_, i64>(0))
            .optional()?
    } else {
        None
    };
    let has_alert_outbox: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info('alerts') WHERE name = 'delivery_state')",
        )?
        .query_row([], |r| r.get(0))?;
    Ok(SchemaInfo {
        has_ts_ms,
        has_alerts: has("alerts"),
        has_alert_outbox,
        rollups_from_ms: rollups_from_ms.filter(|_| has_ts_ms),
    })
}

/// One check of the newest cycle, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRow {
    pub name: String,
    pub url: Option<String>,
    pub status: String,
    pub status_code: Option<i64>,
    pub latency_ms: Option<f64>,
    pub error_message: Option<String>,
}

/// The newest cycle and its checks.
#[derive(Debug, Clone, PartialEq)]
pub struct LatestCycle {
    pub id: String,
    pub timestamp: String,
    /// The instant of `timestamp`, when it parses.
    pub ts_ms: Option<i64>,
    pub cpu_percent: f64,
    pub ram_percent: f64,
    pub ram_used_mb: f64,
    pub disk_percent: f64,
    pub uptime_seconds: Option<f64>,
    pub container_count: i64,
    pub internet_status: bool,
    pub ping_ms: Option<f64>,
    pub worker_status: Option<i64>,
    pub cycle_duration_ms: Option<i64>,
    pub checks: Vec<CheckRow>,
}

/// One alert row.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertRow {
    pub id: i64,
    pub created_at: Option<String>,
    pub item: Option<String>,
    pub old_status: Option<String>,
    pub new_status: Option<String>,
    pub title: Option<String>,
    pub message: Option<String>,
    pub attempts: Option<i64>,
    pub delivered_at: Option<String>,
    pub last_error: Option<String>,
    /// `pending` (waiting, or left by a crash until the agent's next start), `delivered`,
    /// `failed` (every attempt failed) or `given_up` (too old to send after a restart; the
    /// reason is in `last_error`). See the core crate's `DeliveryState`.
    pub delivery_state: String,
    /// Set when a restarted agent re-sent it: the delivery was late.
    pub redelivered_at: Option<String>,
}

/// The aggregates of one bucket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BucketAcc {
    pub cycles: CycleAcc,
    pub services: HashMap<String, ServiceAcc>,
}

/// Buckets `[start_s + i*width_s, start_s + (i+1)*width_s)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub start_s: i64,
    pub width_s: i64,
    pub buckets: Vec<BucketAcc>,
    pub source: Source,
}

/// Queries within one read transaction.
pub struct Query<'c> {
    conn: &'c Connection,
    schema: SchemaInfo,
}

/// The instant of a stored ISO-8601 timestamp.
pub fn parse_instant_ms(ts: &str) -> Option<i64> {
    ts.trim()
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

impl Query<'_> {
    pub fn schema(&self) -> SchemaInfo {
        self.schema
    }

    /// The newest cycle, `None` when there is none.
    pub fn latest_cycle(&self) -> Result<Option<LatestCycle>, ReadError> {
        let Some(id) = self.latest_cycle_id()? else {
            return Ok(None);
        };
        let sql = "SELECT id, timestamp_lima, cpu_percent, ram_percent, ram_used_mb, disk_percent,
                    uptime_seconds, container_count, internet_status, ping_ms, worker_status,
                    cycle_duration_ms
               FROM monitoring_cycles WHERE id = ?1";
        let row = self
            .conn
            .prepare_cached(sql)?
            .query_row([&id], |r| {
                let timestamp: String = r.get(1)?;
                Ok(LatestCycle {
                    id: r.get(0)?,
                    ts_ms: parse_instant_ms(&timestamp),
                    timestamp,
                    cpu_percent: r.get::<_, Option<f64>>(2)?.unwrap_or(0.0),
                    ram_percent: r.get::<_, Option<f64>>(3)?.unwrap_or(0.0),
                    ram_used_mb: r.get::<_, Option<f64>>(4)?.unwrap_or(0.0),
                    disk_percent: r.get::<_, Option<f64>>(5)?.unwrap_or(0.0),
                    uptime_seconds: r.get(6)?,
                    container_count: r.get::<_, Option<i64>>(7)?.unwrap_or(0),
                    internet_status: r.get::<_, Option<bool>>(8)?.unwrap_or(false),
                    ping_ms: r.get(9)?,
                    worker_status: r.get(10)?,
                    cycle_duration_ms: r.get(11)?,
                    checks: Vec::new(),
                })
            })
            .optional()?;
        let Some(mut cycle) = row else {
            return Ok(None);
        };
        let mut st = self.conn.prepare_cached(
            "SELECT service_name, service_url, status, status_code, latency_ms, error_message
               FROM service_checks WHERE cycle_id = ?1 ORDER BY id",
        )?;
        let rows = st.query_map([&cycle.id], |r| {
            Ok(CheckRow {
                name: r.get(0)?,
                url: r.get(1)?,
                status: r.get(2)?,
                status_code: r.get(3)?,
                latency_ms: r.get(4)?,
                error_message: r.get(5)?,
            })
        })?;
        for r in rows {
            cycle.checks.push(r?);
        }
        Ok(Some(cycle))
    }

    /// The id of the cycle with the latest instant.
    fn latest_cycle_id(&self) -> Result<Option<String>, ReadError> {
        if self.schema.has_ts_ms {
            return Ok(self
                .conn
                .prepare_cached("SELECT id FROM monitoring_cycles ORDER BY ts_ms DESC LIMIT 1")?
                .query_row([], |r| r.get(0))
                .optional()?);
        }
        // Without instants, the greatest string is not the latest cycle when offsets differ:
        // compare as instants every row within two days (more than any two offsets apart).
        let max: Option<String> = self
            .conn
            .prepare_cached("SELECT MAX(timestamp_lima) FROM monitoring_cycles")?
            .query_row([], |r| r.get(0))?;
        let Some(max) = max else {
            return Ok(None);
        };
        let lo = max
            .get(..10)
            .and_then(|d| d.parse::<jiff::civil::Date>().ok())
            .and_then(|d| d.checked_sub(jiff::Span::new().days(2)).ok())
            .map(|d| d.to_string())
            .unwrap_or_default();
        let mut st = self.conn.prepare_cached(
            "SELECT id, timestamp_lima FROM monitoring_cycles WHERE timestamp_lima >= ?1",
        )?;
        let mut rows = st.query([&lo])?;
        let mut best: Option<(i64, String)> = None;
        while let Some(r) = rows.next()? {
            let Some(ts) = parse_instant_ms(text(r, 1)?) else {
                continue;
            };
            if best.as_ref().is_none_or(|(b, _)| ts > *b) {
                best = Some((ts, r.get(0)?));
            }
        }
        Ok(best.map(|(_, id)| id))
    }

    /// Newest alerts first; an empty list when the database predates the alerts table.
    pub fn alerts(&self, limit: u32) -> Result<Vec<AlertRow>, ReadError> {
        if !self.schema.has_alerts {
            return Ok(Vec::new());
        }
        // A database the agent has not migrated yet has no outbox columns: its states are
        // read from the delivery result alone.
        let sql = if self.schema.has_alert_outbox {
            "SELECT id, created_at, item, old_status, new_status, title, message, attempts,
                    delivered_at, last_error,
                    COALESCE(delivery_state,
                             CASE WHEN delivered_at IS NOT NULL THEN 'delivered' ELSE 'pending' END),
                    redelivered_at
               FROM alerts ORDER BY created_ms DESC, id DESC LIMIT ?1"
        } else {
            "SELECT id, created_at, item, old_status, new_status, title, message, attempts,
                    delivered_at, last_error,
                    CASE WHEN delivered_at IS NOT NULL THEN 'delivered'
                         WHEN last_error IS NOT NULL THEN 'failed' ELSE 'pending' END,
                    NULL
               FROM alerts ORDER BY created_ms DESC, id DESC LIMIT ?1"
        };
        let mut st = self.conn.prepare_cached(sql)?;
        let rows = st.query_map([limit], |r| {
            Ok(AlertRow {
                id: r.get(0)?,
                created_at: r.get(1)?,
                item: r.get(2)?,
                old_status: r.get(3)?,
                new_status: r.get(4)?,
                title: r.get(5)?,
                message: r.get(6)?,
                attempts: r.get(7)?,
                delivered_at: r.get(8)?,
                last_error: r.get(9)?,
                delivery_state: r.get(10)?,
                redelivered_at: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Aggregates `count` buckets of `width_s` seconds from `start_s`. Rollups answer the part
    /// of the window they cover when the buckets are whole minutes; raw rows answer the rest.
    pub fn window(&self, start_s: i64, width_s: i64, count: usize) -> Result<Window, ReadError> {
        let width_s = width_s.max(1);
        let mut buckets = vec![BucketAcc::default(); count];
        let end_s = start_s + width_s * count as i64;
        let minute_grid = width_s % 60 == 0 && start_s % 60 == 0;
        let split_s = match self.schema.rollups_from_ms {
            Some(from_ms) if minute_grid => {
                // Rollups hold whole minutes only from the first full minute they cover.
                let from_s = (from_ms + 59_999).div_euclid(60_000) * 60;
                from_s.clamp(start_s, end_s)
            }
            _ => end_s,
        };
        if split_s > start_s {
            self.raw_into(&mut buckets, start_s, width_s, start_s, split_s)?;
        }
        if split_s < end_s {
            self.rollups_into(&mut buckets, start_s, width_s, split_s)?;
        }
        let source = if split_s == end_s {
            Source::Raw
        } else if split_s == start_s {
            Source::Rollup
        } else {
            Source::Mixed
        };
        Ok(Window {
            start_s,
            width_s,
            buckets,
            source,
        })
    }

    fn raw_into(
        &self,
        buckets: &mut [BucketAcc],
        start_s: i64,
        width_s: i64,
        from_s: i64,
        to_s: i64,
    ) -> Result<(), ReadError> {
        let (from_ms, to_ms) = (from_s * 1000, to_s * 1000);
        let bucket_of = |ts_ms: i64| -> Option<usize> {
            if ts_ms < from_ms || ts_ms >= to_ms {
                return None;
            }
            usize::try_from((ts_ms - start_s * 1000).div_euclid(width_s * 1000)).ok()
        };
        // Rows without an instant column are pre-filtered by date with a margin wider than any
        // UTC offset, then compared as instants.
        let day = |s: i64| {
            jiff::Timestamp::from_second(s)
                .map(|t| t.strftime("%Y-%m-%d").to_string())
                .unwrap_or_default()
        };
        let lo_day = day(from_s - 15 * 3600);
        let hi_day = day(to_s + 15 * 3600 + 86_400);
        let cycle_cols = "c.cpu_percent, c.ram_percent, c.disk_percent, c.cycle_duration_ms,
                          c.internet_status, c.ping_ms, c.worker_status";
        let mut queries: Vec<(String, Vec<rusqlite::types::Value>)> = Vec::new();
        if self.schema.has_ts_ms {
            queries.push((
                "c.ts_ms >= ?1 AND c.ts_ms < ?2".into(),
                vec![from_ms.into(), to_ms.into()],
            ));
            queries.push((
                "c.ts_ms IS NULL AND c.timestamp_lima >= ?1 AND c.timestamp_lima < ?2".into(),
                vec![lo_day.clone().into(), hi_day.clone().into()],
            ));
        } else {
            queries.push((
                "c.timestamp_lima >= ?1 AND c.timestamp_lima < ?2".into(),
                vec![lo_day.into(), hi_day.into()],
            ));
        }
        // The bucket of a row whose first two columns are `ts_ms` (or NULL) and `timestamp_lima`.
        let row_bucket = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Option<usize>> {
            let ts = match r.get::<_, Option<i64>>(0)? {
                Some(ms) => Some(ms),
                None => parse_instant_ms(&r.get::<_, String>(1)?),
            };
            Ok(ts.and_then(&bucket_of))
        };
        let ts_col = if self.schema.has_ts_ms {
            "c.ts_ms"
        } else {
            "NULL"
        };
        for (cond, args) in &queries {
            let sql = format!(
                "SELECT {ts_col}, c.timestamp_lima, {cycle_cols} FROM monitoring_cycles c WHERE {cond}"
            );
            let mut st = self.conn.prepare_cached(&sql)?;
            let mut rows = st.query(rusqlite::params_from_iter(args.iter()))?;
            while let Some(r) = rows.next()? {
                let Some(b) = row_bucket(r)?.and_then(|i| buckets.get_mut(i)) else {
                    continue;
                };
                b.cycles.add(
                    r.get::<_, Option<f64>>(2)?.unwrap_or(0.0),
                    r.get::<_, Option<f64>>(3)?.unwrap_or(0.0),
                    r.get::<_, Option<f64>>(4)?.unwrap_or(0.0),
                    r.get::<_, Option<f64>>(5)?,
                    r.get::<_, Option<bool>>(6)?.unwrap_or(false),
                    r.get::<_, Option<f64>>(7)?,
                    r.get::<_, Option<i64>>(8)?,
                );
            }
            let sql = format!(
                "SELECT {ts_col}, c.timestamp_lima, s.service_name, s.status, s.latency_ms
                   FROM monitoring_cycles c JOIN service_checks s ON s.cycle_id = c.id
                  WHERE {cond}"
            );
            let mut st = self.conn.prepare_cached(&sql)?;
            let mut rows = st.query(rusqlite::params_from_iter(args.iter()))?;
            while let Some(r) = rows.next()? {
                let Some(b) = row_bucket(r)?.and_then(|i| buckets.get_mut(i)) else {
                    continue;
                };
                let name = text(r, 2)?;
                let status = text(r, 3)?;
                let latency = r.get::<_, Option<f64>>(4)?;
                match b.services.get_mut(name) {
                    Some(acc) => acc.add(status, latency),
                    None => {
                        let mut acc = ServiceAcc::default();
                        acc.add(status, latency);
                        b.services.insert(name.to_owned(), acc);
                    }
                }
            }
        }
        Ok(())
    }

    fn rollups_into(
        &self,
        buckets: &mut [BucketAcc],
        start_s: i64,
        width_s: i64,
        from_s: i64,
    ) -> Result<(), ReadError> {
        let mut pieces = Vec::new();
        for i in 0..buckets.len() {
            let a = (start_s + width_s * i as i64).max(from_s);
            let b = start_s + width_s * (i as i64 + 1);
            if a < b {
                cover(a, b, &TIERS_S, &mut pieces);
            }
        }
        // Adjacent pieces of one tier become one range query; rows are assigned to buckets by
        // their start, and no piece straddles a bucket boundary.
        pieces.sort_by_key(|p| (p.0, p.1));
        let mut merged: Vec<(i64, i64, i64)> = Vec::new();
        for p in pieces {
            match merged.last_mut() {
                Some(last) if last.0 == p.0 && last.2 == p.1 => last.2 = p.2,
                _ => merged.push(p),
            }
        }
        let idx = |s: i64| usize::try_from((s - start_s).div_euclid(width_s)).ok();
        let mut cst = self.conn.prepare_cached(
            "SELECT start_s, n, cpu_sum, ram_sum, disk_sum, dur_n, dur_sum, dur_min, dur_max,
                    ping_n, ping_sum, ping_min, ping_max, inet_up, workers
               FROM rollup_cycles WHERE tier_s = ?1 AND start_s >= ?2 AND start_s < ?3",
        )?;
        let mut sst = self.conn.prepare_cached(
            "SELECT start_s, service_name, n, healthy, error, timeout, down, unknown,
                    lat_n, lat_sum, lat_min, lat_max, hist
               FROM rollup_services WHERE tier_s = ?1 AND start_s >= ?2 AND start_s < ?3",
        )?;
        for (tier, a, b) in merged {
            let mut rows = cst.query(params![tier, a, b])?;
            while let Some(r) = rows.next()? {
                let Some(bucket) = idx(r.get(0)?).and_then(|i| buckets.get_mut(i)) else {
                    continue;
                };
                let acc = CycleAcc {
                    n: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    cpu_sum: r.get(2)?,
                    ram_sum: r.get(3)?,
                    disk_sum: r.get(4)?,
                    duration: Stat::from_columns(r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?),
                    ping: Stat::from_columns(r.get(9)?, r.get(10)?, r.get(11)?, r.get(12)?),
                    inet_up: u64::try_from(r.get::<_, i64>(13)?).unwrap_or(0),
                    workers: Counts::default(),
                };
                bucket.cycles.merge(&acc);
                bucket.cycles.workers.merge_encoded(blob(r, 14)?);
            }
            let mut rows = sst.query(params![tier, a, b])?;
            while let Some(r) = rows.next()? {
                let Some(bucket) = idx(r.get(0)?).and_then(|i| buckets.get_mut(i)) else {
                    continue;
                };
                let count = |i: usize| -> rusqlite::Result<u64> {
                    Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0))
                };
                let name = text(r, 1)?;
                if !bucket.services.contains_key(name) {
                    bucket
                        .services
                        .insert(name.to_owned(), ServiceAcc::default());
                }
                let Some(acc) = bucket.services.get_mut(name) else {
                    continue;
                };
                // Merged in place: no per-row allocation (this loop runs for thousands of rows).
                acc.n += count(2)?;
                for (k, slot) in acc.statuses.iter_mut().enumerate() {
                    *slot += count(3 + k)?;
                }
                acc.latency.merge(&Stat::from_columns(
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                ));
                acc.hist.merge_encoded(blob(r, 12)?);
            }
        }
        Ok(())
    }

    /// The instants (epoch ms) of the newest `limit` cycles, newest first: the dashboard
    /// derives the agent's cycle interval from their spacing, so it can tell stale data from
    /// fresh without knowing the agent's configuration.
    pub fn recent_cycle_instants_ms(&self, limit: usize) -> Result<Vec<i64>, ReadError> {
        if self.schema.has_ts_ms {
            let mut st = self.conn.prepare_cached(
                "SELECT ts_ms FROM monitoring_cycles WHERE ts_ms IS NOT NULL
                  ORDER BY ts_ms DESC LIMIT ?1",
            )?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = st.query_map([limit], |r| r.get::<_, i64>(0))?;
            return Ok(rows.collect::<Result<_, _>>()?);
        }
        // Without instants, strings do not sort as instants when offsets differ: as in
        // `latest_cycle_id`, parse every row within two days of the greatest string.
        let max: Option<String> = self
            .conn
            .prepare_cached("SELECT MAX(timestamp_lima) FROM monitoring_cycles")?
            .query_row([], |r| r.get(0))?;
        let Some(max) = max else {
            return Ok(Vec::new());
        };
        let lo = max
            .get(..10)
            .and_then(|d| d.parse::<jiff::civil::Date>().ok())
            .and_then(|d| d.checked_sub(jiff::Span::new().days(2)).ok())
            .map(|d| d.to_string())
            .unwrap_or_default();
        let mut st = self.conn.prepare_cached(
            "SELECT timestamp_lima FROM monitoring_cycles WHERE timestamp_lima >= ?1",
        )?;
        let mut rows = st.query([&lo])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            if let Some(ts) = parse_instant_ms(text(r, 0)?) {
                out.push(ts);
            }
        }
        out.sort_unstable_by(|a, b| b.cmp(a));
        out.truncate(limit);
        Ok(out)
    }
}

fn text<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<&'r str> {
    r.get_ref(i)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn blob<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<&'r [u8]> {
    Ok(match r.get_ref(i)? {
        rusqlite::types::ValueRef::Blob(b) => b,
        _ => &[],
    })
}

/// Covers `[a, b)` (whole minutes) with the largest tier blocks that fit, as
/// `(tier_s, from_s, to_s)` ranges of block starts.
fn cover(a: i64, b: i64, tiers: &[i64], out: &mut Vec<(i64, i64, i64)>) {
    let Some((&tier, smaller)) = tiers.split_first() else {
        return;
    };
    if smaller.is_empty() {
        if a < b {
            out.push((tier, a, b));
        }
        return;
    }
    let ca = a.div_euclid(tier) * tier + if a.rem_euclid(tier) == 0 { 0 } else { tier };
    let cb = b.div_euclid(tier) * tier;
    if ca < cb {
        cover(a, ca, smaller, out);
        out.push((tier, ca, cb));
        cover(cb, b, smaller, out);
    } else {
        cover(a, b, smaller, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cover_uses_largest_blocks() {
        let mut out = Vec::new();
        // 23:00 on day 0 to 02:30 on day 2.
        cover(82_800, 2 * 86_400 + 9_000, &TIERS_S, &mut out);
        assert_eq!(
            out,
            vec![
                (3_600, 82_800, 86_400),
                (86_400, 86_400, 172_800),
                (3_600, 172_800, 180_000),
                (360, 180_000, 181_800),
            ]
        );
        let mut out = Vec::new();
        cover(120, 240, &TIERS_S, &mut out);
        assert_eq!(out, vec![(60, 120, 240)]);
        let mut out = Vec::new();
        cover(300, 840, &TIERS_S, &mut out);
        assert_eq!(out, vec![(60, 300, 360), (360, 360, 720), (60, 720, 840)]);
    }

    #[test]
    fn connections_are_read_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let rw = Connection::open(&path).expect("open");
        rw.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE monitoring_cycles (id TEXT, timestamp_lima TEXT);
             CREATE TABLE service_checks (id INTEGER);",
        )
        .expect("schema");
        let reader = Reader::new(&path);
        let err = reader
            .query(|q| {
                Ok(q.conn
                    .execute("INSERT INTO monitoring_cycles VALUES ('a', 'b')", [])?)
            })
            .expect_err("a read-only connection refuses writes");
        assert!(
            matches!(&err, ReadError::Sqlite(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly)),
            "{err}"
        );
        let ro = reader
            .query(|q| Ok(q.conn.is_readonly(rusqlite::MAIN_DB)?))
            .expect("query");
        assert!(ro);
    }

    #[test]
    fn missing_database_is_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reader = Reader::new(dir.path().join("none.db"));
        let err = reader.query(|q| q.latest_cycle()).expect_err("missing");
        assert!(matches!(err, ReadError::Unavailable(_)), "{err}");
        assert!(
            !dir.path().join("none.db").exists(),
            "the reader never creates the file"
        );
    }

    /// A read-only bind mount of `src` at `dst`, detached on drop (lazily: a connection still
    /// open must not leave it behind). `None`, with the reason printed, where mounting is not
    /// allowed; under `CI=true` that is a failure (CI runs as root).
    struct RoMount(PathBuf);

    impl Drop for RoMount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("--lazy")
                .arg(&self.0)
                .status();
        }
    }

    fn ro_mount(src: &Path, dst: &Path) -> Option<RoMount> {
        let ok = |args: &[&std::ffi::OsStr]| {
            std::process::Command::new("mount")
                .args(args)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let mounted = ok(&["--bind".as_ref(), src.as_os_str(), dst.as_os_str()])
            .then(|| RoMount(dst.to_path_buf()));
        let ro =
            mounted.filter(|_| ok(&["-o".as_ref(), "remount,bind,ro".as_ref(), dst.as_os_str()]));
        if ro.is_none() {
            hb_testkit::require(
                false,
                "cannot make a read-only bind mount here (needs root)",
            );
        }
        ro
    }

    /// A WAL database with one cycle (cpu 1), closed cleanly: no `-wal`/`-shm` left, as the
    /// original tool leaves it; plus a read-only view of it in `ro/`.
    fn quiet_wal_database(dir: &Path) -> Option<(PathBuf, PathBuf, RoMount)> {
        let src = dir.join("rw");
        let ro = dir.join("ro");
        std::fs::create_dir(&src).expect("mkdir");
        std::fs::create_dir(&ro).expect("mkdir");
        let conn = Connection::open(src.join("t.db")).expect("open");
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE monitoring_cycles (id TEXT, timestamp_lima TEXT, cpu_percent REAL);
             CREATE TABLE service_checks (id INTEGER);
             INSERT INTO monitoring_cycles VALUES ('a', 't', 1.0);",
        )
        .expect("schema");
        drop(conn);
        assert!(!src.join("t.db-wal").exists() && !src.join("t.db-shm").exists());
        let mount = ro_mount(&src, &ro)?;
        Some((src.join("t.db"), ro.join("t.db"), mount))
    }

    fn max_cpu(q: &Query<'_>) -> Result<f64, ReadError> {
        Ok(q.conn
            .query_row("SELECT max(cpu_percent) FROM monitoring_cycles", [], |r| {
                r.get(0)
            })?)
    }

    fn add_cycle(conn: &Connection, cpu: f64) {
        conn.execute("INSERT INTO monitoring_cycles VALUES ('b', 't', ?1)", [cpu])
            .expect("insert");
    }

    #[test]
    fn a_writer_starting_during_an_immutable_read_voids_its_answer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some((rw, ro, _mount)) = quiet_wal_database(dir.path()) else {
            return;
        };
        let reader = Reader::new(&ro);
        // The writer starts after the reader chose immutable and before it reads: its commit
        // is in the WAL only, which the immutable connection cannot see.
        let mut writer = None;
        let mut calls = 0;
        let cpu = reader
            .query(|q| {
                calls += 1;
                if writer.is_none() {
                    let w = Connection::open(&rw).expect("writer");
                    add_cycle(&w, 2.0);
                    writer = Some(w);
                }
                max_cpu(q)
            })
            .expect("query");
        assert_eq!(cpu, 2.0, "the stale immutable answer was returned");
        assert_eq!(calls, 2, "read again after the writer appeared");
        assert!(!reader.is_immutable(), "answered by a normal connection");
        drop(reader);
    }

    #[test]
    fn a_pooled_immutable_connection_is_dropped_when_the_file_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some((rw, ro, _mount)) = quiet_wal_database(dir.path()) else {
            return;
        };
        let reader = Reader::new(&ro);
        assert_eq!(reader.query(max_cpu).expect("query"), 1.0);
        assert!(reader.is_immutable());
        // A writer comes and goes between two requests: its close checkpoints into the file
        // and deletes -wal/-shm, so only the file's stamp tells.
        let w = Connection::open(&rw).expect("writer");
        add_cycle(&w, 2.0);
        drop(w);
        assert!(!rw.with_extension("db-wal").exists());
        assert_eq!(reader.query(max_cpu).expect("query"), 2.0);
        drop(reader);
    }

    #[test]
    fn parses_instants_with_any_offset() {
        assert_eq!(
            parse_instant_ms("2026-11-29T15:41:02.123456-05:00"),
            parse_instant_ms("2026-11-29T20:41:02.123456+00:00")
        );
        assert_eq!(parse_instant_ms("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_instant_ms("garbage"), None);
    }
}
