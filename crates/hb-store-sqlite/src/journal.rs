//! The agent's database read as a journal by the fleet shipper: cycles after a cursor in write
//! order (rowid), their service rows, the alerts after a cursor and the pending ones again, and
//! the shipper's progress (`fleet_progress`, migration 7). Its own connection: the agent's writer
//! keeps writing meanwhile (WAL), and a read never blocks it.

use std::path::{Path, PathBuf};

use hb_store::{JournalAlert, JournalBatch, JournalCheck, JournalCursor, JournalCycle};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::SqliteError;
use crate::writer::BUSY_TIMEOUT;

const CYCLES_AFTER: &str = "SELECT rowid, id, timestamp_lima, ts_ms, cpu_percent, ram_percent, \
     ram_used_mb, disk_percent, uptime_seconds, container_count, internet_status, ping_ms, \
     worker_status, cycle_duration_ms FROM monitoring_cycles WHERE rowid > ?1 ORDER BY rowid LIMIT ?2";

const CHECKS_BETWEEN: &str = "SELECT c.rowid, s.service_name, s.service_url, s.status, \
     s.status_code, s.latency_ms, s.error_message \
     FROM monitoring_cycles c JOIN service_checks s ON s.cycle_id = c.id \
     WHERE c.rowid > ?1 AND c.rowid <= ?2 ORDER BY s.id";

const ALERT_COLUMNS: &str = "id, uid, created_at, created_ms, item, old_status, new_status, \
     title, message, attempts, delivered_at, last_error, delivery_state, redelivered_at";

/// A read of the journal, and the shipper's progress in it. Its connection is opened at the
/// first use (the agent's writer creates and migrates the file) and again after a failure.
pub struct Journal {
    path: PathBuf,
    conn: Option<Connection>,
}

impl Journal {
    /// The agent's database at `path`; nothing is opened yet.
    pub fn new(path: &Path) -> Journal {
        Journal {
            path: path.to_owned(),
            conn: None,
        }
    }

    fn conn(&mut self) -> Result<&mut Connection, SqliteError> {
        if self.conn.is_none() {
            let conn = Connection::open_with_flags(
                &self.path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            self.conn = Some(conn);
        }
        match self.conn.as_mut() {
            Some(c) => Ok(c),
            None => unreachable!("opened above"),
        }
    }

    /// Drops the connection after a failure, so the next use opens a fresh one.
    fn reset_on_error<T>(&mut self, r: Result<T, SqliteError>) -> Result<T, SqliteError> {
        if r.is_err() {
            self.conn = None;
        }
        r
    }

    /// Up to `max_cycles` cycles after `cursor` with their service rows, up to `max_alerts`
    /// alerts after it, and the pending alerts `refresh` (uids) as they are now. When the
    /// cycle at the cursor has another rowid than the cursor says (a `VACUUM` renumbered
    /// the table), the cursor follows the cycle's id.
    pub fn read(
        &mut self,
        cursor: &mut JournalCursor,
        max_cycles: usize,
        max_alerts: usize,
        refresh: &[String],
    ) -> Result<JournalBatch, SqliteError> {
        let r = self
            .conn()
            .and_then(|conn| read_batch(conn, cursor, max_cycles, max_alerts, refresh));
        self.reset_on_error(r)
    }

    /// This journal's identity as `host`: made once (random) and kept in `fleet_progress`.
    pub fn identity(&mut self, host: &str) -> Result<String, SqliteError> {
        let r = self.conn().and_then(|conn| {
            conn.prepare_cached(
                "INSERT INTO fleet_progress (host, cycle_rowid, alert_id, updated_ms, journal_id) \
                 VALUES (?1, 0, 0, NULL, lower(hex(randomblob(16)))) ON CONFLICT (host) DO NOTHING",
            )?
            .execute([host])?;
            Ok(conn
                .prepare_cached("SELECT journal_id FROM fleet_progress WHERE host = ?1")?
                .query_row([host], |r| r.get(0))?)
        });
        self.reset_on_error(r)
    }

    /// Records how far shipping as `host` got (after PostgreSQL committed it).
    pub fn save_progress(
        &mut self,
        host: &str,
        cursor: &JournalCursor,
        cycle_ts_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<(), SqliteError> {
        let r = self
            .conn()?
            .prepare_cached(
                "INSERT INTO fleet_progress (host, cycle_rowid, cycle_id, cycle_ts_ms, alert_id, updated_ms, journal_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, lower(hex(randomblob(16)))) ON CONFLICT (host) DO UPDATE SET \
                 cycle_rowid = excluded.cycle_rowid, cycle_id = excluded.cycle_id, \
                 cycle_ts_ms = COALESCE(excluded.cycle_ts_ms, fleet_progress.cycle_ts_ms), \
                 alert_id = excluded.alert_id, updated_ms = excluded.updated_ms",
            )?
            .execute(rusqlite::params![
                host,
                cursor.cycle_seq,
                cursor.cycle_id,
                cycle_ts_ms,
                cursor.alert_seq,
                now_ms
            ])
            .map(drop)
            .map_err(SqliteError::from);
        self.reset_on_error(r)
    }
}

fn read_batch(
    conn: &mut Connection,
    cursor: &mut JournalCursor,
    max_cycles: usize,
    max_alerts: usize,
    refresh: &[String],
) -> Result<JournalBatch, SqliteError> {
    let tx = conn.transaction()?;

    if let Some(id) = &cursor.cycle_id {
        let now: Option<i64> = tx
            .prepare_cached("SELECT rowid FROM monitoring_cycles WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        if let Some(seq) = now.filter(|s| *s != cursor.cycle_seq) {
            tracing::warn!(
                from = cursor.cycle_seq,
                to = seq,
                "the journal was renumbered (VACUUM): shipping follows the last shipped cycle"
            );
            cursor.cycle_seq = seq;
        }
    }
    let limit = i64::try_from(max_cycles).unwrap_or(i64::MAX);
    let mut cycles: Vec<JournalCycle> = tx
        .prepare_cached(CYCLES_AFTER)?
        .query_map(rusqlite::params![cursor.cycle_seq, limit], |r| {
            Ok(JournalCycle {
                seq: r.get(0)?,
                id: r.get(1)?,
                timestamp: r.get(2)?,
                ts_ms: r.get(3)?,
                cpu_percent: r.get(4)?,
                ram_percent: r.get(5)?,
                ram_used_mb: r.get(6)?,
                disk_percent: r.get(7)?,
                uptime_seconds: r.get(8)?,
                container_count: r.get(9)?,
                internet_status: r.get(10)?,
                ping_ms: r.get(11)?,
                worker_status: r.get(12)?,
                cycle_duration_ms: r.get(13)?,
                checks: Vec::new(),
            })
        })?
        .collect::<Result<_, _>>()?;
    if let (Some(first), Some(last)) = (cycles.first(), cycles.last()) {
        let (from, to) = (first.seq - 1, last.seq);
        let mut stmt = tx.prepare_cached(CHECKS_BETWEEN)?;
        let rows = stmt.query_map([from, to], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                JournalCheck {
                    service_name: r.get(1)?,
                    service_url: r.get(2)?,
                    status: r.get(3)?,
                    status_code: r.get(4)?,
                    latency_ms: r.get(5)?,
                    error_message: r.get(6)?,
                },
            ))
        })?;
        let index: std::collections::HashMap<i64, usize> =
            cycles.iter().enumerate().map(|(i, c)| (c.seq, i)).collect();
        for row in rows {
            let (seq, check) = row?;
            if let Some(&i) = index.get(&seq) {
                cycles[i].checks.push(check);
            }
        }
    }
    let alerts = if has_table(&tx, "alerts")? {
        let limit = i64::try_from(max_alerts).unwrap_or(i64::MAX);
        let mut alerts: Vec<JournalAlert> = tx
            .prepare_cached(&format!(
                "SELECT {ALERT_COLUMNS} FROM alerts WHERE id > ?1 AND uid IS NOT NULL \
                 ORDER BY id LIMIT ?2"
            ))?
            .query_map(rusqlite::params![cursor.alert_seq, limit], alert_row)?
            .collect::<Result<_, _>>()?;
        let mut again = tx.prepare_cached(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE uid = ?1"
        ))?;
        for uid in refresh {
            if let Some(a) = again.query_row([uid], alert_row).optional()? {
                alerts.push(a);
            }
        }
        alerts
    } else {
        Vec::new()
    };
    let newest = tx
        .prepare_cached("SELECT rowid, ts_ms FROM monitoring_cycles ORDER BY rowid DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let certificates = if has_table(&tx, "service_certificates")? {
        tx.prepare_cached(
            "SELECT service_name, expires_ms, checked_ms FROM service_certificates \
             ORDER BY service_name",
        )?
        .query_map([], |r| {
            Ok(hb_store::JournalCertificate {
                service_name: r.get(0)?,
                expires_ms: r.get(1)?,
                checked_ms: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    drop(tx);
    Ok(JournalBatch {
        cycles,
        alerts,
        newest,
        certificates,
    })
}

fn has_table(conn: &Connection, name: &str) -> Result<bool, SqliteError> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
        )?
        .query_row([name], |r| r.get(0))?)
}

fn alert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JournalAlert> {
    Ok(JournalAlert {
        seq: r.get(0)?,
        uid: r.get(1)?,
        created_at: r.get(2)?,
        created_ms: r.get(3)?,
        item: r.get(4)?,
        old_status: r.get(5)?,
        new_status: r.get(6)?,
        title: r.get(7)?,
        message: r.get(8)?,
        attempts: r.get(9)?,
        delivered_at: r.get(10)?,
        last_error: r.get(11)?,
        delivery_state: r.get(12)?,
        redelivered_at: r.get(13)?,
    })
}

impl hb_store::JournalSource for Journal {
    fn read(
        &mut self,
        cursor: &mut JournalCursor,
        max_cycles: usize,
        max_alerts: usize,
        refresh: &[String],
    ) -> Result<JournalBatch, hb_store::StoreError> {
        Ok(Journal::read(
            self, cursor, max_cycles, max_alerts, refresh,
        )?)
    }

    fn save_progress(
        &mut self,
        host: &str,
        cursor: &JournalCursor,
        cycle_ts_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<(), hb_store::StoreError> {
        Ok(Journal::save_progress(
            self,
            host,
            cursor,
            cycle_ts_ms,
            now_ms,
        )?)
    }

    fn identity(&mut self, host: &str) -> Result<String, hb_store::StoreError> {
        Ok(Journal::identity(self, host)?)
    }
}
