//! The read-only reader: connections opened with `SQLITE_OPEN_READ_ONLY` (never a PRAGMA that
//! writes; `immutable` only on a database no writer has open, see [`SqliteReader::query`]), and every
//! query the dashboard asks. Time windows are answered from the rollup tables where they cover
//! the window and from raw rows otherwise (older databases), into the same mergeable aggregates,
//! so both paths give the same numbers.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::closed::{ClosedBuckets, Origin};
use crate::offsets::{OffsetCache, TextBounds};
use hb_core::ServiceStatus;
use hb_core::aggregate::{
    Counts, CycleAcc, ServiceAcc, Stat, bucket_index, stored_status, tier_ranges,
};
use hb_store::{
    AlertRow, BackfillProgress, BucketAcc, ChannelRow, CheckRow, IncidentRow, LatestCycle,
    ReadStore, Snapshot, Source, StoreError, StoreInfo, Window,
};

/// Why a read failed, inside this module; the store's [`StoreError`] at the interface.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The database is not there yet (missing file, no tables): retry later.
    #[error("database not ready: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl From<ReadError> for StoreError {
    fn from(e: ReadError) -> StoreError {
        match e {
            ReadError::Unavailable(reason) => StoreError::unavailable(reason),
            ReadError::Sqlite(e) => {
                StoreError::new(crate::error::kind_of(&e), format!("database error: {e}"))
            }
        }
    }
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
pub struct SqliteReader {
    path: PathBuf,
    idle: Mutex<Vec<Conn>>,
    /// Whether the last connection opened was immutable; only for logging the switches once.
    immutable_mode: AtomicBool,
    /// The offsets the timestamps carry, for databases without instants.
    offsets: Mutex<OffsetCache>,
    /// Raw windows of at least this many cycles (and a quarter of the table) read the checks
    /// in one pass; see [`Query::most_cycles`].
    scan_min_cycles: usize,
    /// Closed buckets of a database read from raw rows only (see the `closed` module).
    closed: Mutex<ClosedBuckets>,
}

/// See [`SqliteReader::scan_min_cycles`].
const SCAN_MIN_CYCLES: usize = 20_000;

/// What the database holds, probed once per query so an upgrade by the agent is seen at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SchemaInfo {
    pub has_ts_ms: bool,
    pub has_alerts: bool,
    /// The alerts table has the outbox columns (`delivery_state`, `redelivered_at`).
    pub has_alert_outbox: bool,
    pub has_incidents: bool,
    /// `service_certificates` exists (migration 6).
    pub has_certificates: bool,
    /// `fleet_progress` exists (migration 7).
    pub has_fleet_progress: bool,
    /// `alert_deliveries` exists (migration 8).
    pub has_alert_deliveries: bool,
    /// `Some(ms)` when rollups exist and cover every cycle from `ms` on.
    pub rollups_from_ms: Option<i64>,
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

impl SqliteReader {
    pub fn new(path: impl Into<PathBuf>) -> SqliteReader {
        SqliteReader {
            path: path.into(),
            idle: Mutex::new(Vec::new()),
            immutable_mode: AtomicBool::new(false),
            offsets: Mutex::new(OffsetCache::default()),
            scan_min_cycles: SCAN_MIN_CYCLES,
            closed: Mutex::new(ClosedBuckets::default()),
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
    /// ([`SqliteReader::quiet_stamp`]), it is opened `immutable`. Such a connection is dropped as soon
    /// as the file's stamp changes; [`SqliteReader::query`] also checks the stamp after the read.
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
    pub(crate) fn query<T>(
        &self,
        mut f: impl FnMut(&Query<'_>) -> Result<T, ReadError>,
    ) -> Result<T, ReadError> {
        for _ in 0..IMMUTABLE_ATTEMPTS {
            let (c, schema) = self.begin()?;
            let result = f(&Query {
                conn: &c.conn,
                schema,
                offsets: &self.offsets,
                scan_min_cycles: self.scan_min_cycles,
                closed: &self.closed,
                path: &self.path,
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

    /// A reader that reads a window's checks in one pass from `cycles` cycles on (tests).
    #[cfg(test)]
    fn with_scan_min_cycles(mut self, cycles: usize) -> SqliteReader {
        self.scan_min_cycles = cycles;
        self
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
        has_certificates: has("service_certificates"),
        has_fleet_progress: has("fleet_progress"),
        has_alert_deliveries: has("alert_deliveries"),
        has_alerts: has("alerts"),
        has_alert_outbox,
        has_incidents: has("incidents"),
        rollups_from_ms: rollups_from_ms.filter(|_| has_ts_ms),
    })
}

/// Queries within one read transaction.
pub(crate) struct Query<'c> {
    conn: &'c Connection,
    schema: SchemaInfo,
    offsets: &'c Mutex<OffsetCache>,
    scan_min_cycles: usize,
    closed: &'c Mutex<ClosedBuckets>,
    path: &'c Path,
}

/// The instant of a stored ISO-8601 timestamp.
pub fn parse_instant_ms(ts: &str) -> Option<i64> {
    ts.trim()
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

impl Query<'_> {
    /// The newest cycle, `None` when there is none.
    pub(crate) fn latest_cycle(&self) -> Result<Option<LatestCycle>, ReadError> {
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
        let mut st = self.conn.prepare_cached(if self.schema.has_certificates {
            "SELECT s.service_name, s.service_url, s.status, s.status_code, s.latency_ms,
                    s.error_message, c.expires_ms
               FROM service_checks s
               LEFT JOIN service_certificates c ON c.service_name = s.service_name
              WHERE s.cycle_id = ?1 ORDER BY s.id"
        } else {
            "SELECT service_name, service_url, status, status_code, latency_ms, error_message, NULL
               FROM service_checks WHERE cycle_id = ?1 ORDER BY id"
        })?;
        let rows = st.query_map([&cycle.id], |r| {
            Ok(CheckRow {
                name: r.get(0)?,
                url: r.get(1)?,
                status: stored_status(text(r, 2)?),
                status_code: r.get(3)?,
                latency_ms: r.get(4)?,
                error_message: r.get(5)?,
                cert_expires_ms: r.get(6)?,
            })
        })?;
        for r in rows {
            cycle.checks.push(r?);
        }
        Ok(Some(cycle))
    }

    /// The text bounds the stored offsets allow (see [`OffsetCache`]).
    fn text_bounds(&self) -> Result<TextBounds, ReadError> {
        match self.offsets.lock() {
            Ok(mut cache) => Ok(cache.refresh(self.conn)?),
            Err(_) => Ok(TextBounds::WIDE),
        }
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
        // Without instants, the greatest string is not the latest cycle when offsets differ: a
        // later instant's text can lie below it by the spread of the offsets, so every row in
        // that margin is compared as an instant (two days when the offsets are not known).
        let max: Option<String> = self
            .conn
            .prepare_cached("SELECT MAX(timestamp_lima) FROM monitoring_cycles")?
            .query_row([], |r| r.get(0))?;
        let Some(max) = max else {
            return Ok(None);
        };
        let bounds = self.text_bounds()?;
        let lo = match bounds.below_latest(&max) {
            Some(lo) => lo,
            None => max
                .get(..10)
                .and_then(|d| d.parse::<jiff::civil::Date>().ok())
                .and_then(|d| d.checked_sub(jiff::Span::new().days(2)).ok())
                .map(|d| d.to_string())
                .unwrap_or_default(),
        };
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
    pub(crate) fn alerts(&self, limit: u32) -> Result<Vec<AlertRow>, ReadError> {
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
                    redelivered_at, uid
               FROM alerts ORDER BY created_ms DESC, id DESC LIMIT ?1"
        } else {
            "SELECT id, created_at, item, old_status, new_status, title, message, attempts,
                    delivered_at, last_error,
                    CASE WHEN delivered_at IS NOT NULL THEN 'delivered'
                         WHEN last_error IS NOT NULL THEN 'failed' ELSE 'pending' END,
                    NULL, uid
               FROM alerts ORDER BY created_ms DESC, id DESC LIMIT ?1"
        };
        let mut st = self.conn.prepare_cached(sql)?;
        let rows = st.query_map([limit], |r| {
            Ok((
                r.get::<_, Option<String>>(12)?,
                AlertRow {
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
                    deliveries: Vec::new(),
                },
            ))
        })?;
        let rows: Vec<(Option<String>, AlertRow)> = rows.collect::<Result<_, _>>()?;
        if !self.schema.has_alert_deliveries {
            return Ok(rows.into_iter().map(|(_, row)| row).collect());
        }
        let mut st = self.conn.prepare_cached(
            "SELECT channel, attempts, delivered_at, last_error, COALESCE(state, 'pending')
               FROM alert_deliveries WHERE alert_uid = ?1 ORDER BY channel",
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for (uid, mut row) in rows {
            if let Some(uid) = uid {
                row.deliveries = st
                    .query_map([uid], |r| {
                        Ok(ChannelRow {
                            channel: r.get(0)?,
                            attempts: r.get(1)?,
                            delivered_at: r.get(2)?,
                            last_error: r.get(3)?,
                            state: r.get(4)?,
                        })
                    })?
                    .collect::<Result<_, _>>()?;
            }
            out.push(row);
        }
        Ok(out)
    }

    /// Aggregates `count` buckets of `width_s` seconds from `start_s`. Rollups answer the part
    /// of the window they cover when the buckets are whole minutes; raw rows answer the rest.
    pub(crate) fn window(
        &self,
        start_s: i64,
        width_s: i64,
        count: usize,
    ) -> Result<Window, ReadError> {
        let width_s = width_s.max(1);
        if !self.schema.has_ts_ms && self.schema.rollups_from_ms.is_none() {
            return self.raw_only_window(start_s, width_s, count);
        }
        let buckets = vec![BucketAcc::default(); count];
        let end_s = start_s + width_s * count as i64;
        let minute_grid = width_s % 60 == 0 && start_s % 60 == 0;
        let split_s = match self.schema.rollups_from_ms {
            Some(from_ms) if minute_grid => Source::rollup_split_s(from_ms, start_s, end_s),
            _ => end_s,
        };
        if !minute_grid && self.schema.rollups_from_ms.is_some() {
            return self.off_grid_window(buckets, start_s, width_s, end_s);
        }
        self.in_two_parts(buckets, (start_s, width_s, end_s), split_s, Source::Raw)
    }

    /// The window `(start_s, width_s, end_s)` with `[start_s, split_s)` answered from `older`
    /// rows (raw or rollups) and `[split_s, end_s)` from the other kind.
    fn in_two_parts(
        &self,
        mut buckets: Vec<BucketAcc>,
        (start_s, width_s, end_s): (i64, i64, i64),
        split_s: i64,
        older: Source,
    ) -> Result<Window, ReadError> {
        let (parts, source) = Source::split(older, start_s, split_s, end_s);
        for (kind, a, b) in parts {
            if a >= b {
                continue;
            }
            if kind == Source::Raw {
                self.raw_into(&mut buckets, start_s, width_s, a, b)?;
            } else {
                self.rollups_into(&mut buckets, start_s, width_s, a, b)?;
            }
        }
        Ok(Window {
            start_s,
            width_s,
            buckets,
            source,
        })
    }

    /// A database not upgraded yet (the older tool's): every bucket from raw rows, but a bucket
    /// that closed well before the newest cycle is read once and then kept (see `closed`).
    fn raw_only_window(
        &self,
        start_s: i64,
        width_s: i64,
        count: usize,
    ) -> Result<Window, ReadError> {
        let mut buckets = vec![BucketAcc::default(); count];
        let bucket_start = |i: usize| start_s + width_s * i as i64;
        let Some(origin) = self.origin()? else {
            self.raw_into(&mut buckets, start_s, width_s, start_s, bucket_start(count))?;
            return Ok(Window {
                start_s,
                width_s,
                buckets,
                source: Source::Raw,
            });
        };
        // Closed: ended a minute (plus the spread of the offsets) before the newest cycle.
        let newest_text: Option<String> = self
            .conn
            .prepare_cached("SELECT MAX(timestamp_lima) FROM monitoring_cycles")?
            .query_row([], |r| r.get(0))?;
        let spread_s = self.text_bounds()?.spread_s();
        let closed_before_s = newest_text
            .as_deref()
            .and_then(parse_instant_ms)
            .map_or(i64::MIN, |ms| ms.div_euclid(1000) - spread_s - 60);
        let mut missing = Vec::new();
        if let Ok(mut closed) = self.closed.lock() {
            closed.check(origin);
            for (i, b) in buckets.iter_mut().enumerate() {
                match closed.get(width_s, bucket_start(i)) {
                    Some(kept) => *b = kept.clone(),
                    None => missing.push(i),
                }
            }
        } else {
            missing = (0..count).collect();
        }
        if let (Some(&first), Some(&last)) = (missing.first(), missing.last()) {
            // One read for the span of the missing buckets; kept ones inside it are read again.
            for b in &mut buckets[first..=last] {
                *b = BucketAcc::default();
            }
            self.raw_into(
                &mut buckets,
                start_s,
                width_s,
                bucket_start(first),
                bucket_start(last + 1),
            )?;
            if let Ok(mut closed) = self.closed.lock() {
                for (i, b) in buckets.iter().enumerate().take(last + 1).skip(first) {
                    if bucket_start(i + 1) <= closed_before_s {
                        closed.insert(width_s, bucket_start(i), b.clone());
                    }
                }
            }
        }
        Ok(Window {
            start_s,
            width_s,
            buckets,
            source: Source::Raw,
        })
    }

    /// The file and table being read, `None` when the file cannot be examined.
    fn origin(&self) -> Result<Option<Origin>, ReadError> {
        let Ok(meta) = std::fs::metadata(self.path) else {
            return Ok(None);
        };
        let max_rowid: i64 = self
            .conn
            .prepare_cached("SELECT COALESCE(MAX(rowid), 0) FROM monitoring_cycles")?
            .query_row([], |r| r.get(0))?;
        Ok(Some(Origin {
            dev: meta.dev(),
            ino: meta.ino(),
            max_rowid,
        }))
    }

    /// Buckets whose edges are not whole minutes (a `TARGET_DATA_POINTS` that does not divide
    /// the range into minutes) are answered from raw rows, which are exact; but retention may
    /// have pruned the older raw rows. Their part is answered from the rollups, each minute
    /// block in the bucket where it starts (off by at most a minute at each bucket edge).
    fn off_grid_window(
        &self,
        buckets: Vec<BucketAcc>,
        start_s: i64,
        width_s: i64,
        end_s: i64,
    ) -> Result<Window, ReadError> {
        let oldest_raw_ms: Option<i64> = self
            .conn
            .prepare_cached("SELECT MIN(ts_ms) FROM monitoring_cycles")?
            .query_row([], |r| r.get(0))?;
        let raw_from_s = oldest_raw_ms
            .map_or(end_s, |ms| ms.div_euclid(60_000) * 60)
            .clamp(start_s, end_s);
        self.in_two_parts(
            buckets,
            (start_s, width_s, end_s),
            raw_from_s,
            Source::Rollup,
        )
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
        // Rows without an instant are pre-filtered by their text, within the offsets the table's
        // timestamps carry (a day beyond any offset when those are not known), then compared as
        // instants. With instants, such rows are rare (written by another program after the
        // upgrade) and found through the instant index, so the wide margin costs nothing.
        let bounds = if self.schema.has_ts_ms {
            TextBounds::WIDE
        } else {
            self.text_bounds()?
        };
        let lo_day = bounds.lo(from_s);
        let hi_day = bounds.hi(to_s);
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
        // A row without an instant has its text parsed, once per cycle: the checks of one cycle
        // come one after another with the same text.
        let mut last_text = String::new();
        let mut last_bucket = None;
        let mut row_bucket = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Option<usize>> {
            if let Some(ms) = r.get::<_, Option<i64>>(0)? {
                return Ok(bucket_of(ms));
            }
            let ts = text(r, 1)?;
            if ts != last_text {
                last_bucket = parse_instant_ms(ts).and_then(&bucket_of);
                last_text.clear();
                last_text.push_str(ts);
            }
            Ok(last_bucket)
        };
        let ts_col = if self.schema.has_ts_ms {
            "c.ts_ms"
        } else {
            "NULL"
        };
        // The cycles of the window, and which bucket each one's checks go to.
        let mut window_cycles: HashMap<Box<str>, usize> = HashMap::new();
        for (cond, args) in &queries {
            let sql = format!(
                "SELECT {ts_col}, c.timestamp_lima, {cycle_cols}, c.id FROM monitoring_cycles c
                  WHERE {cond}"
            );
            let mut st = self.conn.prepare_cached(&sql)?;
            let mut rows = st.query(rusqlite::params_from_iter(args.iter()))?;
            while let Some(r) = rows.next()? {
                let Some(i) = row_bucket(r)? else {
                    continue;
                };
                let Some(b) = buckets.get_mut(i) else {
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
                if let Ok(id) = r.get_ref(9)?.as_str() {
                    window_cycles.insert(id.into(), i);
                }
            }
        }
        if self.most_cycles(window_cycles.len())? {
            return self.scan_checks_into(buckets, &window_cycles);
        }
        for (cond, args) in &queries {
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
                add_check(
                    b,
                    text(r, 2)?,
                    stored_status(text(r, 3)?),
                    r.get::<_, Option<f64>>(4)?,
                );
            }
        }
        Ok(())
    }

    /// Whether a window of `cycles` cycles holds a large part of the table: then reading every
    /// check in table order beats finding each cycle's checks through the index (a raw `30d`
    /// on a database holding 30 days: 5 million index lookups, each with a table lookup for the
    /// status, against one sequential pass).
    fn most_cycles(&self, cycles: usize) -> Result<bool, ReadError> {
        if cycles < self.scan_min_cycles {
            return Ok(false);
        }
        let total: i64 = self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM monitoring_cycles")?
            .query_row([], |r| r.get(0))?;
        Ok(i64::try_from(cycles).unwrap_or(i64::MAX).saturating_mul(4) >= total)
    }

    /// Every check of the table in one pass, each counted in the bucket of its cycle when that
    /// cycle is in the window (exact whatever order the rows were written in).
    fn scan_checks_into(
        &self,
        buckets: &mut [BucketAcc],
        window_cycles: &HashMap<Box<str>, usize>,
    ) -> Result<(), ReadError> {
        let mut st = self.conn.prepare_cached(
            "SELECT cycle_id, service_name, status, latency_ms FROM service_checks",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let Ok(cycle) = r.get_ref(0)?.as_str() else {
                continue;
            };
            let Some(b) = window_cycles.get(cycle).and_then(|&i| buckets.get_mut(i)) else {
                continue;
            };
            add_check(
                b,
                text(r, 1)?,
                stored_status(text(r, 2)?),
                r.get::<_, Option<f64>>(3)?,
            );
        }
        Ok(())
    }

    fn rollups_into(
        &self,
        buckets: &mut [BucketAcc],
        start_s: i64,
        width_s: i64,
        from_s: i64,
        to_s: i64,
    ) -> Result<(), ReadError> {
        // Rows are assigned to buckets by their start; no range straddles a bucket boundary.
        let merged = tier_ranges(start_s, width_s, buckets.len(), from_s, to_s);
        let idx = |s: i64| bucket_index(start_s, width_s, s);
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
                let Some(acc) = bucket.service(name) else {
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

    /// `fleet_progress` (migration 7, written by the fleet shipper) with the journal's newest
    /// cycle instant.
    pub(crate) fn fleet_progress(&self) -> Result<Vec<hb_store::FleetProgress>, ReadError> {
        if !self.schema.has_fleet_progress {
            return Ok(Vec::new());
        }
        let newest: Option<i64> = if self.schema.has_ts_ms {
            self.conn
                .prepare_cached("SELECT max(ts_ms) FROM monitoring_cycles")?
                .query_row([], |r| r.get(0))?
        } else {
            None
        };
        // Nothing shipped yet: the whole journal is behind, from its oldest cycle.
        let mut st = self.conn.prepare_cached(
            "SELECT host, COALESCE(cycle_ts_ms, (SELECT min(ts_ms) FROM monitoring_cycles)),
                    updated_ms
               FROM fleet_progress ORDER BY host",
        )?;
        let rows = st.query_map([], |r| {
            Ok(hb_store::FleetProgress {
                host: r.get(0)?,
                shipped_cycle_ms: r.get(1)?,
                updated_ms: r.get(2)?,
                newest_cycle_ms: newest,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The writer's record of its backfill in `rollup_meta` (see `backfill.rs`). A database
    /// created with rollups has nothing to backfill.
    pub(crate) fn backfill(&self) -> Result<Option<BackfillProgress>, ReadError> {
        let Some(covered_from_ms) = self.schema.rollups_from_ms else {
            return Ok(None);
        };
        let mut st = self.conn.prepare_cached(
            "SELECT key, value FROM rollup_meta
              WHERE key IN ('backfill_done', 'backfill_remaining_cycles', 'backfill_total_cycles')",
        )?;
        let mut rows = st.query([])?;
        let (mut done, mut remaining, mut total) = (None, None, None);
        while let Some(r) = rows.next()? {
            let value: i64 = r.get(1)?;
            match r.get_ref(0)?.as_str().unwrap_or_default() {
                "backfill_done" => done = Some(value != 0),
                "backfill_remaining_cycles" => remaining = u64::try_from(value).ok(),
                "backfill_total_cycles" => total = u64::try_from(value).ok(),
                _ => {}
            }
        }
        let remaining = remaining.unwrap_or(0);
        Ok(Some(BackfillProgress {
            // No record yet: done when nothing was ever older than the rollups (a database
            // created with them, whose start is 0).
            done: done.unwrap_or(covered_from_ms == 0 || remaining == 0 && total.is_some()),
            remaining_cycles: remaining,
            total_cycles: total.unwrap_or(remaining),
            covered_from_ms,
        }))
    }

    /// See [`Snapshot::incidents`].
    pub(crate) fn incidents(
        &self,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<IncidentRow>, ReadError> {
        if !self.schema.has_incidents {
            return Ok(Vec::new());
        }
        let mut st = self.conn.prepare_cached(
            "SELECT id, service_name, started_ms, started_at, last_bad_ms, ended_ms, ended_at,
                    checks, error, timeout, down, unknown, first_status, last_status,
                    first_code, last_code, first_reason, last_reason
               FROM incidents
              WHERE started_ms < ?2 AND (ended_ms IS NULL OR ended_ms >= ?1)
              ORDER BY started_ms DESC, id DESC LIMIT ?3",
        )?;
        let count = |r: &rusqlite::Row<'_>, i: usize| -> rusqlite::Result<u64> {
            Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0))
        };
        let rows = st.query_map(params![from_ms, to_ms, limit], |r| {
            Ok(IncidentRow {
                id: r.get(0)?,
                service: r.get(1)?,
                started_ms: r.get(2)?,
                started_at: r.get(3)?,
                last_bad_ms: r.get(4)?,
                ended_ms: r.get(5)?,
                ended_at: r.get(6)?,
                checks: count(r, 7)?,
                error: count(r, 8)?,
                timeout: count(r, 9)?,
                down: count(r, 10)?,
                unknown: count(r, 11)?,
                first_status: stored_status(text(r, 12)?),
                last_status: stored_status(text(r, 13)?),
                first_code: r.get(14)?,
                last_code: r.get(15)?,
                first_reason: r.get(16)?,
                last_reason: r.get(17)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The instants (epoch ms) of the newest `limit` cycles, newest first: the dashboard
    /// derives the agent's cycle interval from their spacing, so it can tell stale data from
    /// fresh without knowing the agent's configuration.
    pub(crate) fn recent_cycle_instants_ms(&self, limit: usize) -> Result<Vec<i64>, ReadError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        if self.schema.has_ts_ms {
            let mut st = self.conn.prepare_cached(
                "SELECT ts_ms FROM monitoring_cycles WHERE ts_ms IS NOT NULL
                  ORDER BY ts_ms DESC LIMIT ?1",
            )?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = st.query_map([limit], |r| r.get::<_, i64>(0))?;
            return Ok(rows.collect::<Result<_, _>>()?);
        }
        // Without instants, texts do not sort as instants when offsets differ: read them
        // newest text first, and stop below the smallest text a row later than the k-th newest
        // instant found so far can have (see `TextBounds::lo`).
        let bounds = self.text_bounds()?;
        let mut st = self.conn.prepare_cached(
            "SELECT timestamp_lima FROM monitoring_cycles ORDER BY timestamp_lima DESC",
        )?;
        let mut rows = st.query([])?;
        let mut out: Vec<i64> = Vec::new();
        let mut floor: Option<String> = None;
        while let Some(r) = rows.next()? {
            let ts = text(r, 0)?;
            if floor.as_deref().is_some_and(|f| ts < f) {
                break;
            }
            let Some(ms) = parse_instant_ms(ts) else {
                continue;
            };
            out.push(ms);
            if out.len() >= limit {
                out.sort_unstable_by(|a, b| b.cmp(a));
                out.truncate(limit);
                if let Some(&kth) = out.last() {
                    floor = Some(bounds.lo(kth.div_euclid(1000)));
                }
            }
        }
        out.sort_unstable_by(|a, b| b.cmp(a));
        out.truncate(limit);
        Ok(out)
    }
}

/// The interface on the reader: one read transaction per snapshot.
impl ReadStore for SqliteReader {
    fn snapshot(
        &self,
        f: &mut dyn FnMut(&dyn Snapshot) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        // A `StoreError` from `f` (the caller's own) travels through the reader's retry loop
        // as a value, so it comes back unchanged.
        self.query(|q| Ok(f(q)))?
    }

    fn max_concurrent_reads(&self) -> usize {
        POOL_MAX
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
}

impl Snapshot for Query<'_> {
    fn info(&self) -> StoreInfo {
        StoreInfo {
            rollups_from_ms: self.schema.rollups_from_ms,
        }
    }

    fn backfill(&self) -> Result<Option<BackfillProgress>, StoreError> {
        Ok(Query::backfill(self)?)
    }

    fn fleet_progress(&self) -> Result<Vec<hb_store::FleetProgress>, StoreError> {
        Ok(Query::fleet_progress(self)?)
    }

    fn latest_cycle(&self) -> Result<Option<LatestCycle>, StoreError> {
        Ok(Query::latest_cycle(self)?)
    }

    fn alerts(&self, limit: u32) -> Result<Vec<AlertRow>, StoreError> {
        Ok(Query::alerts(self, limit)?)
    }

    fn window(&self, start_s: i64, width_s: i64, count: usize) -> Result<Window, StoreError> {
        Ok(Query::window(self, start_s, width_s, count)?)
    }

    fn recent_cycle_instants_ms(&self, limit: usize) -> Result<Vec<i64>, StoreError> {
        Ok(Query::recent_cycle_instants_ms(self, limit)?)
    }

    fn incidents(
        &self,
        from_ms: i64,
        to_ms: i64,
        limit: u32,
    ) -> Result<Vec<IncidentRow>, StoreError> {
        Ok(Query::incidents(self, from_ms, to_ms, limit)?)
    }
}

/// Counts one check in its bucket.
fn add_check(b: &mut BucketAcc, name: &str, status: ServiceStatus, latency_ms: Option<f64>) {
    match b.services.get_mut(name) {
        Some(acc) => acc.add(status, latency_ms),
        None => {
            let mut acc = ServiceAcc::default();
            acc.add(status, latency_ms);
            b.services.insert(name.to_owned(), acc);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let reader = SqliteReader::new(&path);
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

    /// An older tool's table (no instants) whose rows carry two offsets: the greatest text is
    /// not the latest cycle, and a 5-minute window finds exactly its rows.
    #[test]
    fn without_instants_offsets_narrow_the_search_and_keep_answers_exact() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("old.db");
        let rw = legacy_tables(&path);
        // 2026-11-29T20:00:00Z + 10 s * i, alternately written at -05:00 and +01:00.
        let t0 = 1_795_982_400_i64;
        let mut want_in_window = 0;
        rw.execute_batch("BEGIN").expect("begin");
        // The last row (an even one, at -05:00) has the latest instant but not the greatest text.
        for i in 0..=2_000_i64 {
            let instant = t0 + 10 * i;
            let offset_h = if i % 2 == 0 { -5 } else { 1 };
            let local = jiff::Timestamp::from_second(instant + offset_h * 3600)
                .expect("ts")
                .strftime("%Y-%m-%dT%H:%M:%S")
                .to_string();
            let text = format!("{local}.5{:+03}:00", offset_h);
            rw.execute(
                "INSERT INTO monitoring_cycles VALUES (?1, ?2, 1, 2, 3, 4, 5, 0, 1, 1.0, 200, 7)",
                rusqlite::params![format!("c{i}"), text],
            )
            .expect("cycle");
            rw.execute(
                "INSERT INTO service_checks (cycle_id, service_name, status, latency_ms)
                 VALUES (?1, 'api', 'healthy', 2.0)",
                [format!("c{i}")],
            )
            .expect("check");
            if (t0 + 3_000..t0 + 3_300).contains(&instant) {
                want_in_window += 1;
            }
        }
        rw.execute_batch("COMMIT").expect("commit");
        let reader = SqliteReader::new(&path);
        let latest = reader
            .query(|q| q.latest_cycle())
            .expect("read")
            .expect("row");
        assert_eq!(
            latest.id, "c2000",
            "the latest instant, not the greatest text"
        );
        let window = reader
            .query(|q| q.window(t0 + 3_000, 60, 5))
            .expect("window");
        let cycles: u64 = window.buckets.iter().map(|b| b.cycles.n).sum();
        let checks: u64 = window
            .buckets
            .iter()
            .filter_map(|b| b.services.get("api"))
            .map(|a| a.n)
            .sum();
        assert_eq!((cycles, checks), (want_in_window, want_in_window));
        assert_eq!(window.source, Source::Raw);
    }

    /// One pass over every check and the per-cycle index lookups give the same window, also
    /// when checks were written out of their cycles' order.
    #[test]
    fn a_window_read_in_one_pass_equals_one_read_through_the_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("old.db");
        let rw = legacy_tables(&path);
        rw.execute_batch("BEGIN").expect("begin");
        let t0 = 1_795_982_400_i64;
        let statuses = ["healthy", "error", "timeout", "down", "healthy"];
        for i in 0..400_i64 {
            let text = jiff::Timestamp::from_second(t0 + 10 * i)
                .expect("ts")
                .display_with_offset(jiff::tz::offset(-5))
                .to_string();
            rw.execute(
                "INSERT INTO monitoring_cycles VALUES (?1, ?2, 1, 2, 3, 4, 5, 0, 1, 1.0, 200, 7)",
                rusqlite::params![format!("c{i}"), text],
            )
            .expect("cycle");
        }
        // Checks in a shuffled order of cycles, two services each.
        for k in 0..400_i64 {
            let i = (k * 157) % 400;
            for svc in ["a", "b"] {
                rw.execute(
                    "INSERT INTO service_checks (cycle_id, service_name, status, latency_ms)
                     VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![
                        format!("c{i}"),
                        svc,
                        statuses[(i % 5) as usize],
                        (i % 3 != 0).then_some(i as f64 / 7.0)
                    ],
                )
                .expect("check");
            }
        }
        rw.execute_batch("COMMIT").expect("commit");
        let layout = (t0 + 600, 120, 25);
        let one_pass = SqliteReader::new(&path)
            .with_scan_min_cycles(1)
            .query(|q| q.window(layout.0, layout.1, layout.2))
            .expect("one pass");
        let indexed = SqliteReader::new(&path)
            .with_scan_min_cycles(usize::MAX)
            .query(|q| q.window(layout.0, layout.1, layout.2))
            .expect("index");
        // The same rows in another order: equal but for the rounding of the latency sums.
        assert_eq!(one_pass.buckets.len(), indexed.buckets.len());
        for (i, (a, b)) in one_pass.buckets.iter().zip(&indexed.buckets).enumerate() {
            assert_eq!(a.cycles, b.cycles, "bucket {i}");
            let mut names: Vec<_> = a.services.keys().collect();
            names.sort();
            let mut other: Vec<_> = b.services.keys().collect();
            other.sort();
            assert_eq!(names, other, "bucket {i}");
            for name in names {
                let (x, y) = (&a.services[name], &b.services[name]);
                assert_eq!(
                    (x.n, x.statuses, &x.hist),
                    (y.n, y.statuses, &y.hist),
                    "{i} {name}"
                );
                assert_eq!(
                    (x.latency.n, x.latency.min, x.latency.max),
                    (y.latency.n, y.latency.min, y.latency.max)
                );
                assert!((x.latency.sum - y.latency.sum).abs() < 1e-9, "{i} {name}");
            }
        }
        let checks: u64 = one_pass
            .buckets
            .iter()
            .flat_map(|b| b.services.values())
            .map(|a| a.n)
            .sum();
        assert_eq!(checks, 2 * 300, "300 cycles of the 400 fall in the window");
    }

    /// The older tool's schema, empty, at `path`.
    fn legacy_tables(path: &Path) -> Connection {
        let rw = Connection::open(path).expect("open");
        rw.execute_batch(
            "CREATE TABLE monitoring_cycles (id TEXT PRIMARY KEY, timestamp_lima TEXT NOT NULL,
                 cpu_percent REAL NOT NULL, ram_percent REAL NOT NULL, ram_used_mb REAL NOT NULL,
                 disk_percent REAL NOT NULL, uptime_seconds REAL, container_count INTEGER NOT NULL,
                 internet_status BOOLEAN NOT NULL, ping_ms REAL, worker_status INTEGER,
                 cycle_duration_ms INTEGER);
             CREATE TABLE service_checks (id INTEGER PRIMARY KEY AUTOINCREMENT, cycle_id TEXT NOT NULL,
                 service_name TEXT NOT NULL, service_url TEXT, status TEXT NOT NULL,
                 status_code INTEGER, latency_ms REAL, error_message TEXT);
             CREATE INDEX idx_ts ON monitoring_cycles(timestamp_lima);
             CREATE INDEX idx_cycle ON service_checks(cycle_id);",
        )
        .expect("schema");
        rw
    }

    fn legacy_cycle(rw: &Connection, id: &str, instant_s: i64) {
        let text = jiff::Timestamp::from_second(instant_s)
            .expect("ts")
            .display_with_offset(jiff::tz::offset(-5))
            .to_string();
        rw.execute(
            "INSERT INTO monitoring_cycles VALUES (?1, ?2, 1, 2, 3, 4, 5, 0, 1, 1.0, 200, 7)",
            rusqlite::params![id, text],
        )
        .expect("cycle");
        rw.execute(
            "INSERT INTO service_checks (cycle_id, service_name, status, latency_ms)
             VALUES (?1, 'api', 'healthy', 3.0)",
            [id],
        )
        .expect("check");
    }

    /// On a database read from raw rows only, closed buckets are read once: new cycles show in
    /// the open bucket, a closed bucket is not read again, another file is read afresh.
    #[test]
    fn closed_buckets_of_a_raw_only_database_are_read_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("old.db");
        let t0 = 1_795_982_400_i64;
        let rw = legacy_tables(&path);
        for i in 0..720 {
            legacy_cycle(&rw, &format!("c{i}"), t0 + 10 * i);
        }
        let reader = SqliteReader::new(&path);
        let layout = (t0 + 7_200 - 30 * 120, 120, 31);
        let cycles = |w: &Window| w.buckets.iter().map(|b| b.cycles.n).collect::<Vec<_>>();
        let first = reader
            .query(|q| q.window(layout.0, layout.1, layout.2))
            .expect("window");
        assert_eq!(first.buckets[0].cycles.n, 12);
        assert!(
            reader.closed.lock().expect("lock").len() >= 28,
            "closed buckets kept"
        );

        legacy_cycle(&rw, "new", t0 + 7_200);
        // A row the older tool never writes: one in a bucket that closed long ago.
        legacy_cycle(&rw, "late", t0 + 7_200 - 30 * 120 + 5);
        let second = reader
            .query(|q| q.window(layout.0, layout.1, layout.2))
            .expect("window");
        assert_eq!(
            second.buckets[30].cycles.n,
            first.buckets[30].cycles.n + 1,
            "the open bucket is read"
        );
        assert_eq!(
            cycles(&second)[..30],
            cycles(&first)[..30],
            "closed buckets are kept"
        );

        // Another file at the same path: read afresh (the late row counts now).
        drop(rw);
        let copy = dir.path().join("copy.db");
        std::fs::copy(&path, &copy).expect("copy");
        std::fs::rename(&copy, &path).expect("replace");
        let third = reader
            .query(|q| q.window(layout.0, layout.1, layout.2))
            .expect("window");
        assert_eq!(third.buckets[0].cycles.n, 13);
    }

    #[test]
    fn missing_database_is_unavailable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reader = SqliteReader::new(dir.path().join("none.db"));
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
        let reader = SqliteReader::new(&ro);
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
        let reader = SqliteReader::new(&ro);
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
