//! The read-write connection: open with WAL and persistent WAL, file modes, migrations, and the
//! statements that write one cycle (with its services, alerts and aggregates) in one transaction.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::SqliteError;
use hb_core::{AlertDelivery, AlertRecord, ChannelDelivery, CycleRecord, StoredHistory};
use rusqlite::{
    Connection, DEFAULT_NAME, FileControl, OpenFlags, OptionalExtension, Transaction,
    TransactionBehavior,
};

use hb_store::{Maintenance, Outbox, PendingAlert, Retention};

use crate::{backfill, incidents, maintain, migrate, rollup};

/// How long a write waits for another connection's lock before failing with "busy".
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// Pages of write-ahead log after which a commit merges it into the main file (SQLite's default
/// is 1,000, about 4 MiB). A cycle rewrites ~20 pages of indexes and rollups, so at the default
/// the log, not the data, is what fills a small disk; at 64 (256 KiB) it is merged every few
/// cycles, which costs nothing at one transaction per cycle.
pub const WAL_AUTOCHECKPOINT_PAGES: u32 = 64;

/// After a merge the log file is cut back to this size, so a one-off big transaction does not
/// keep its space. Above the log's steady size (the pages above plus one cycle), so normal
/// cycles do not regrow it. Truncated, never deleted: read-only readers need the file.
pub const JOURNAL_SIZE_LIMIT_BYTES: i64 = 1024 * 1024;

const FILE_MODE: u32 = 0o644;
const DIR_MODE: u32 = 0o755;

const INSERT_CYCLE: &str = "INSERT INTO monitoring_cycles (id, timestamp_lima, cpu_percent, \
     ram_percent, ram_used_mb, disk_percent, uptime_seconds, container_count, internet_status, \
     ping_ms, worker_status, cycle_duration_ms, ts_ms) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
     ON CONFLICT (id) DO NOTHING";

const INSERT_CHECK: &str = "INSERT INTO service_checks (cycle_id, service_name, service_url, \
     status, status_code, latency_ms, error_message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

// Rewritten only when the expiry or its whole days left change: every expiry threshold is a
// whole number of days, so the level the agent resumes from (the stored expiry judged at the
// stored instant) is the same as at any check since, and a cycle usually writes nothing here.
const UPSERT_CERTIFICATE: &str = "INSERT INTO service_certificates AS c (service_name, expires_ms, \
     checked_ms) VALUES (?1, ?2, ?3) ON CONFLICT (service_name) DO UPDATE \
     SET expires_ms = excluded.expires_ms, checked_ms = excluded.checked_ms \
     WHERE excluded.checked_ms >= c.checked_ms AND (excluded.expires_ms != c.expires_ms \
       OR (excluded.expires_ms - excluded.checked_ms) / 86400000 != (c.expires_ms - c.checked_ms) / 86400000)";

const CERTIFICATE_OF: &str =
    "SELECT expires_ms, checked_ms FROM service_certificates WHERE service_name = ?1";

const INSERT_ALERT: &str = "INSERT INTO alerts (uid, created_at, created_ms, item, old_status, \
     new_status, title, message, attempts) \
     VALUES (?1, ?2, CAST(ROUND(unixepoch(?2, 'subsec') * 1000) AS INTEGER), ?3, ?4, ?5, ?6, ?7, 0) \
     ON CONFLICT (uid) DO NOTHING";

// An interrupted delivery (shutdown) is no final result: the row stays pending (NULL state),
// so the next start sends it.
const UPDATE_DELIVERY: &str = "UPDATE alerts SET attempts = ?2, delivered_at = ?3, last_error = ?4, \
     delivery_state = CASE WHEN ?3 IS NOT NULL THEN 'delivered' WHEN ?5 THEN NULL ELSE 'failed' END \
     WHERE uid = ?1";

const UPSERT_CHANNEL_DELIVERY: &str = "INSERT INTO alert_deliveries (alert_uid, channel, attempts, \
     delivered_at, last_error, state) VALUES (?1, ?2, ?3, ?4, ?5, \
     CASE WHEN ?4 IS NOT NULL THEN 'delivered' WHEN ?6 THEN NULL ELSE 'failed' END) \
     ON CONFLICT (alert_uid, channel) DO UPDATE SET attempts = excluded.attempts, \
     delivered_at = excluded.delivered_at, last_error = excluded.last_error, state = excluded.state";

// The channels of a pending alert that already have a final result.
const SELECT_DONE_CHANNELS: &str = "SELECT channel, attempts, delivered_at, last_error \
     FROM alert_deliveries WHERE alert_uid = ?1 AND state IS NOT NULL ORDER BY channel";

const GIVE_UP_CHANNELS: &str = "UPDATE alert_deliveries SET state = 'given_up', last_error = ?1 \
     WHERE state IS NULL AND alert_uid IN (SELECT uid FROM alerts WHERE delivery_state = 'given_up')";

const GIVE_UP_OLD_ALERTS: &str = "UPDATE alerts SET delivery_state = 'given_up', last_error = ?2 \
     WHERE delivery_state IS NULL AND delivered_at IS NULL \
       AND (uid IS NULL OR created_ms IS NULL OR created_ms < ?1)";

const SELECT_PENDING_ALERTS: &str = "SELECT uid, created_at, item, old_status, new_status, title, \
     message FROM alerts WHERE delivery_state IS NULL AND delivered_at IS NULL \
     ORDER BY created_ms, id";

const MARK_REDELIVERED: &str = "UPDATE alerts SET redelivered_at = ?1 \
     WHERE delivery_state IS NULL AND delivered_at IS NULL";

const LAST_ALERT_OF: &str = "SELECT new_status, COALESCE(created_ms, -9223372036854775808) \
     FROM alerts WHERE item = ?1 AND new_status IS NOT NULL \
     ORDER BY created_ms DESC, id DESC LIMIT 1";

const OPEN_INCIDENT_OF: &str = "SELECT started_ms FROM incidents WHERE service_name = ?1 AND ended_ms IS NULL \
     ORDER BY started_ms DESC LIMIT 1";

const RECENT_CHECKS_OF: &str = "SELECT s.status, COALESCE(c.ts_ms, -9223372036854775808) \
     FROM service_checks s JOIN monitoring_cycles c ON c.id = s.cycle_id \
     WHERE s.service_name = ?1 ORDER BY s.id DESC LIMIT ?2";

// A cycle without a heartbeat answer stores NULL, the worker's `no response`.
const RECENT_WORKER: &str = "SELECT COALESCE(CAST(worker_status AS TEXT), 'no response'), \
     COALESCE(ts_ms, -9223372036854775808) FROM monitoring_cycles ORDER BY rowid DESC LIMIT ?1";

/// The one read-write connection of the agent.
#[derive(Debug)]
pub struct Writer {
    conn: Connection,
    path: PathBuf,
    rollups: rollup::RollupCache,
    incidents: incidents::OpenIncidents,
    /// `rollup_meta.covered_from_ms` as last written (this is the only writer): cycles older
    /// than it are left to the backfill, so the rollups from it on hold exactly the raw rows.
    covered_from_ms: i64,
    housekeeping: maintain::Housekeeping,
}

impl Writer {
    /// Opens (creating if needed) the database at `path`, switches it to WAL with a persistent
    /// WAL file, and migrates it to the latest schema.
    ///
    /// Files and directories this call creates are made readable by everyone (0644 / 0755),
    /// because the dashboard may run as another user with the database mounted read-only; it
    /// then needs the `-wal` and `-shm` files to exist, which is why they are kept after close.
    pub fn open(path: &Path) -> Result<Writer, SqliteError> {
        create_parent(path)?;
        let companions = [
            path.to_path_buf(),
            sidecar(path, "-wal"),
            sidecar(path, "-shm"),
        ];
        let existed = companions.clone().map(|p| p.exists());

        let open_failed = |source| SqliteError::Open {
            path: path.to_path_buf(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(path, flags).map_err(open_failed)?;
        if !existed[0] {
            set_mode(path, FILE_MODE)?;
        }
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_failed)?;
        // Only a database without tables can take it (an existing one keeps its mode and
        // reuses freed pages): new databases give pruned pages back to the file system.
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(open_failed)?;
        if tables == 0 {
            conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
                .map_err(open_failed)?;
        }
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(open_failed)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(SqliteError::NotWal {
                path: path.to_path_buf(),
                mode,
            });
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_failed)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_failed)?;
        conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT_BYTES)
            .map_err(open_failed)?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
            .map_err(open_failed)?;
        let mut persist_wal = 1;
        conn.file_control(DEFAULT_NAME, FileControl::PersistWal(&mut persist_wal))
            .map_err(open_failed)?;

        migrate::run(&mut conn, path)?;
        let covered_from_ms = backfill::covered_from(&conn)?;

        for (file, existed) in companions.iter().zip(existed).skip(1) {
            if !existed && file.exists() {
                set_mode(file, FILE_MODE)?;
            }
        }
        Ok(Writer {
            conn,
            path: path.to_path_buf(),
            rollups: rollup::RollupCache::default(),
            incidents: incidents::OpenIncidents::default(),
            covered_from_ms,
            housekeeping: maintain::Housekeeping::new(Retention::default()),
        })
    }

    /// The same writer applying `retention` in [`Writer::maintain`] (the default is
    /// [`Retention::default`]).
    pub fn with_retention(mut self, retention: Retention) -> Writer {
        self.housekeeping = maintain::Housekeeping::new(retention);
        self
    }

    pub fn retention(&self) -> Retention {
        self.housekeeping.retention()
    }

    /// One small step of housekeeping at `now_ms`, within about `budget`: pruning what is past
    /// its retention (raw cycles only once the rollups cover them), then building rollups for
    /// older raw cycles (backfill), each in transactions of one batch. Call it between cycles
    /// on the writer's thread; `more` in the report says whether work is left.
    pub fn maintain(&mut self, now_ms: i64, budget: Duration) -> Result<Maintenance, SqliteError> {
        self.housekeeping.run(
            &mut self.conn,
            &self.path,
            &mut self.rollups,
            &mut self.covered_from_ms,
            now_ms,
            budget,
        )
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one cycle, its service rows, the alerts it created and the dashboard aggregates
    /// in one `BEGIN IMMEDIATE … COMMIT`, so a reader sees all of it or none of it.
    ///
    /// Writing a cycle whose id is already stored changes nothing, so retrying after an
    /// uncertain failure cannot duplicate rows.
    pub fn record_cycle(
        &mut self,
        cycle: &CycleRecord,
        alerts: &[AlertRecord],
    ) -> Result<(), SqliteError> {
        let result = write_cycles(
            &mut self.conn,
            std::slice::from_ref(cycle),
            alerts,
            &mut self.rollups,
            &mut self.incidents,
            self.covered_from_ms,
        );
        self.after_write(result)
    }

    fn after_write(&mut self, result: Result<bool, SqliteError>) -> Result<(), SqliteError> {
        match result {
            Ok(uncovered) => {
                if uncovered {
                    self.housekeeping.uncovered_write();
                }
                Ok(())
            }
            Err(e) => {
                // Rolled back: the cached rollup blocks and open incidents may hold what was
                // not written.
                self.rollups.clear();
                self.incidents.clear();
                Err(e)
            }
        }
    }

    /// Writes many cycles in one transaction (bulk loads such as test databases).
    pub fn record_cycles(&mut self, cycles: &[CycleRecord]) -> Result<(), SqliteError> {
        let result = write_cycles(
            &mut self.conn,
            cycles,
            &[],
            &mut self.rollups,
            &mut self.incidents,
            self.covered_from_ms,
        );
        self.after_write(result)
    }

    /// Merges the whole write-ahead log into the main file and empties the log file (it stays on
    /// disk, at zero bytes, for read-only readers). After a failed write on a full disk this is
    /// what frees space: the log holds many copies of the same pages, the main file needs each
    /// once. Returns whether the merge was complete (a reader may keep part of the log busy).
    pub fn checkpoint_truncate(&mut self) -> Result<bool, SqliteError> {
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
        Ok(busy == 0)
    }

    /// Records how delivering an alert went. An unknown uid (its cycle was never written) is
    /// not an error: there is nothing to update.
    pub fn record_delivery(&mut self, delivery: &AlertDelivery) -> Result<(), SqliteError> {
        let updated = self.conn.prepare_cached(UPDATE_DELIVERY)?.execute((
            &delivery.uid,
            delivery.attempts,
            &delivery.delivered_at,
            &delivery.last_error,
            delivery.interrupted,
        ))?;
        if updated == 0 {
            tracing::debug!(uid = %delivery.uid, "delivery of an alert that is not stored");
        }
        Ok(())
    }

    /// Records how delivering an alert through one channel went (replacing an earlier result
    /// of the same alert and channel).
    pub fn record_channel_delivery(
        &mut self,
        delivery: &ChannelDelivery,
    ) -> Result<(), SqliteError> {
        self.conn
            .prepare_cached(UPSERT_CHANNEL_DELIVERY)?
            .execute((
                &delivery.uid,
                &delivery.channel,
                delivery.attempts,
                &delivery.delivered_at,
                &delivery.last_error,
                delivery.interrupted,
            ))?;
        Ok(())
    }
}

impl Writer {
    /// The alert outbox at start-up, in one transaction: every alert still pending (a crash or
    /// a shutdown left it without a final result) created before `now_ms - max_age_ms` is
    /// marked given up with `give_up_reason`; the younger ones are marked redelivered at
    /// `now_text` and returned, oldest first, for the caller to send. Rows without an id or a
    /// creation instant cannot be sent or aged, so they are given up too.
    pub fn claim_outbox(
        &mut self,
        now_ms: i64,
        now_text: &str,
        max_age_ms: i64,
        give_up_reason: &str,
    ) -> Result<Outbox, SqliteError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let given_up = tx
            .prepare_cached(GIVE_UP_OLD_ALERTS)?
            .execute(rusqlite::params![
                now_ms.saturating_sub(max_age_ms),
                give_up_reason
            ])?;
        tx.prepare_cached(GIVE_UP_CHANNELS)?
            .execute([give_up_reason])?;
        let alerts = tx
            .prepare_cached(SELECT_PENDING_ALERTS)?
            .query_map([], |row| {
                Ok(AlertRecord {
                    uid: row.get(0)?,
                    created_at: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
                    item: row.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    old_status: row.get(3)?,
                    new_status: row.get::<_, Option<String>>(4)?.unwrap_or_default(),
                    title: row.get::<_, Option<String>>(5)?.unwrap_or_default(),
                    message: row.get::<_, Option<String>>(6)?.unwrap_or_default(),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut redeliver = Vec::with_capacity(alerts.len());
        for alert in alerts {
            let done = tx
                .prepare_cached(SELECT_DONE_CHANNELS)?
                .query_map([&alert.uid], |row| {
                    Ok(ChannelDelivery {
                        uid: alert.uid.clone(),
                        channel: row.get(0)?,
                        attempts: row.get(1)?,
                        delivered_at: row.get(2)?,
                        last_error: row.get(3)?,
                        interrupted: false,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            redeliver.push(PendingAlert { alert, done });
        }
        tx.prepare_cached(MARK_REDELIVERED)?.execute([now_text])?;
        tx.commit()?;
        Ok(Outbox {
            redeliver,
            given_up,
        })
    }

    /// What the database remembers of a service: its newest alert, its `window` newest
    /// checks (see `hb_core::Debouncer::resume`) and its newest certificate expiry.
    pub fn service_history(&self, name: &str, window: u32) -> Result<StoredHistory, SqliteError> {
        Ok(StoredHistory {
            cert: self
                .conn
                .prepare_cached(CERTIFICATE_OF)?
                .query_row([name], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?,
            last_alert: self.last_alert_of(name)?,
            bad_since_ms: self
                .conn
                .prepare_cached(OPEN_INCIDENT_OF)?
                .query_row([name], |row| row.get(0))
                .optional()?,
            recent: self
                .conn
                .prepare_cached(RECENT_CHECKS_OF)?
                .query_map(rusqlite::params![name, window], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })?
                .collect::<Result<_, _>>()?,
        })
    }

    /// [`Writer::service_history`] of the heartbeat receiver (the `worker` item).
    pub fn worker_history(&self, window: u32) -> Result<StoredHistory, SqliteError> {
        Ok(StoredHistory {
            cert: None,
            // Not kept for the worker: a reminder after a restart says it is not known.
            bad_since_ms: None,
            last_alert: self.last_alert_of(hb_core::alerting::WORKER_ITEM)?,
            recent: self
                .conn
                .prepare_cached(RECENT_WORKER)?
                .query_map([window], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<_, _>>()?,
        })
    }

    fn last_alert_of(&self, item: &str) -> Result<Option<(String, i64)>, SqliteError> {
        Ok(self
            .conn
            .prepare_cached(LAST_ALERT_OF)?
            .query_row([item], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?)
    }
}

/// One `BEGIN IMMEDIATE … COMMIT` holding `cycles`, their service rows, `alerts`, rollups and
/// incidents. Whether some cycle was older than `covered_from_ms` (its rollups left to the
/// backfill).
fn write_cycles(
    conn: &mut Connection,
    cycles: &[CycleRecord],
    alerts: &[AlertRecord],
    rollups: &mut rollup::RollupCache,
    open_incidents: &mut incidents::OpenIncidents,
    covered_from_ms: i64,
) -> Result<bool, SqliteError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut uncovered = false;
    for cycle in cycles {
        uncovered |= insert_cycle(&tx, cycle, rollups, open_incidents, covered_from_ms)?;
    }
    for alert in alerts {
        insert_alert(&tx, alert)?;
    }
    tx.commit()?;
    Ok(uncovered)
}

/// Whether the cycle was stored without rollups (older than `covered_from_ms`: the rollups
/// from there on must hold exactly the raw rows, and the backfill adds it with its neighbours).
fn insert_cycle(
    tx: &Transaction<'_>,
    cycle: &CycleRecord,
    rollups: &mut rollup::RollupCache,
    open_incidents: &mut incidents::OpenIncidents,
    covered_from_ms: i64,
) -> rusqlite::Result<bool> {
    let inserted = tx.prepare_cached(INSERT_CYCLE)?.execute(rusqlite::params![
        cycle.id,
        cycle.timestamp,
        cycle.host.cpu_percent,
        cycle.host.ram_percent,
        cycle.host.ram_used_mb,
        cycle.host.disk_percent,
        cycle.host.uptime_seconds,
        cycle.container_count,
        cycle.internet.online,
        cycle.internet.ping_ms,
        cycle.worker_status,
        cycle.cycle_duration_ms,
        cycle.timestamp_ms,
    ])?;
    if inserted == 0 {
        tracing::debug!(cycle = %cycle.id, "cycle already stored");
        return Ok(false);
    }
    let mut check = tx.prepare_cached(INSERT_CHECK)?;
    for service in &cycle.services {
        check.execute(rusqlite::params![
            cycle.id,
            service.name,
            service.url,
            service.outcome.status.as_str(),
            service.outcome.status_code,
            service.outcome.latency_ms,
            service.outcome.reason,
        ])?;
    }
    let mut certificate = tx.prepare_cached(UPSERT_CERTIFICATE)?;
    for service in &cycle.services {
        if let Some(expires_ms) = service.outcome.cert_expires_ms {
            certificate.execute(rusqlite::params![
                service.name,
                expires_ms,
                cycle.timestamp_ms
            ])?;
        }
    }
    incidents::apply(tx, cycle, open_incidents)?;
    if cycle.timestamp_ms < covered_from_ms {
        return Ok(true);
    }
    rollup::apply(tx, cycle, rollups)?;
    Ok(false)
}

fn insert_alert(tx: &Transaction<'_>, alert: &AlertRecord) -> rusqlite::Result<()> {
    tx.prepare_cached(INSERT_ALERT)?.execute(rusqlite::params![
        alert.uid,
        alert.created_at,
        alert.item,
        alert.old_status,
        alert.new_status,
        alert.title,
        alert.message,
    ])?;
    Ok(())
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// Creates the missing ancestors of `path`, each 0755 whatever the umask.
fn create_parent(path: &Path) -> Result<(), SqliteError> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    let mut missing: Vec<PathBuf> = parent
        .ancestors()
        .take_while(|dir| !dir.as_os_str().is_empty() && !dir.exists())
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    if !missing.is_empty() {
        fs::create_dir_all(parent).map_err(|source| SqliteError::CreateDir {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    for dir in &missing {
        set_mode(dir, DIR_MODE)?;
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), SqliteError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|source| {
        SqliteError::Permissions {
            path: path.to_path_buf(),
            source,
        }
    })
}
