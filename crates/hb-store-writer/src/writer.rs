//! The read-write connection: open with WAL and persistent WAL, file modes, migrations, and the
//! statements that write one cycle (with its services, alerts and aggregates) in one transaction.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hb_core::{AlertDelivery, AlertRecord, CycleRecord};
use hb_store::StoreError;
use rusqlite::{
    Connection, DEFAULT_NAME, FileControl, OpenFlags, Transaction, TransactionBehavior,
};

use crate::{migrate, rollup};

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

const INSERT_ALERT: &str = "INSERT INTO alerts (uid, created_at, created_ms, item, old_status, \
     new_status, title, message, attempts) \
     VALUES (?1, ?2, CAST(ROUND(unixepoch(?2, 'subsec') * 1000) AS INTEGER), ?3, ?4, ?5, ?6, ?7, 0) \
     ON CONFLICT (uid) DO NOTHING";

const UPDATE_DELIVERY: &str =
    "UPDATE alerts SET attempts = ?2, delivered_at = ?3, last_error = ?4 WHERE uid = ?1";

/// The one read-write connection of the agent.
#[derive(Debug)]
pub struct Writer {
    conn: Connection,
    path: PathBuf,
    rollups: rollup::RollupCache,
}

impl Writer {
    /// Opens (creating if needed) the database at `path`, switches it to WAL with a persistent
    /// WAL file, and migrates it to the latest schema.
    ///
    /// Files and directories this call creates are made readable by everyone (0644 / 0755),
    /// because the dashboard may run as another user with the database mounted read-only; it
    /// then needs the `-wal` and `-shm` files to exist, which is why they are kept after close.
    pub fn open(path: &Path) -> Result<Writer, StoreError> {
        create_parent(path)?;
        let companions = [
            path.to_path_buf(),
            sidecar(path, "-wal"),
            sidecar(path, "-shm"),
        ];
        let existed = companions.clone().map(|p| p.exists());

        let open_failed = |source| StoreError::Open {
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
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(open_failed)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NotWal {
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

        for (file, existed) in companions.iter().zip(existed).skip(1) {
            if !existed && file.exists() {
                set_mode(file, FILE_MODE)?;
            }
        }
        Ok(Writer {
            conn,
            path: path.to_path_buf(),
            rollups: rollup::RollupCache::default(),
        })
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
    ) -> Result<(), StoreError> {
        let result = write_cycles(
            &mut self.conn,
            std::slice::from_ref(cycle),
            alerts,
            &mut self.rollups,
        );
        if result.is_err() {
            // Rolled back: the cached rollup blocks may hold what was not written.
            self.rollups.clear();
        }
        result
    }

    /// Writes many cycles in one transaction (bulk loads such as test databases).
    pub fn record_cycles(&mut self, cycles: &[CycleRecord]) -> Result<(), StoreError> {
        let result = write_cycles(&mut self.conn, cycles, &[], &mut self.rollups);
        if result.is_err() {
            self.rollups.clear();
        }
        result
    }

    /// Merges the whole write-ahead log into the main file and empties the log file (it stays on
    /// disk, at zero bytes, for read-only readers). After a failed write on a full disk this is
    /// what frees space: the log holds many copies of the same pages, the main file needs each
    /// once. Returns whether the merge was complete (a reader may keep part of the log busy).
    pub fn checkpoint_truncate(&mut self) -> Result<bool, StoreError> {
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
        Ok(busy == 0)
    }

    /// Records how delivering an alert went. An unknown uid (its cycle was never written) is
    /// not an error: there is nothing to update.
    pub fn record_delivery(&mut self, delivery: &AlertDelivery) -> Result<(), StoreError> {
        let updated = self.conn.prepare_cached(UPDATE_DELIVERY)?.execute((
            &delivery.uid,
            delivery.attempts,
            &delivery.delivered_at,
            &delivery.last_error,
        ))?;
        if updated == 0 {
            tracing::debug!(uid = %delivery.uid, "delivery of an alert that is not stored");
        }
        Ok(())
    }
}

/// One `BEGIN IMMEDIATE … COMMIT` holding `cycles`, their service rows, `alerts` and rollups.
fn write_cycles(
    conn: &mut Connection,
    cycles: &[CycleRecord],
    alerts: &[AlertRecord],
    rollups: &mut rollup::RollupCache,
) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for cycle in cycles {
        insert_cycle(&tx, cycle, rollups)?;
    }
    for alert in alerts {
        insert_alert(&tx, alert)?;
    }
    tx.commit()?;
    Ok(())
}

fn insert_cycle(
    tx: &Transaction<'_>,
    cycle: &CycleRecord,
    rollups: &mut rollup::RollupCache,
) -> rusqlite::Result<()> {
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
        return Ok(());
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
    rollup::apply(tx, cycle, rollups)
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
fn create_parent(path: &Path) -> Result<(), StoreError> {
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
        fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    for dir in &missing {
        set_mode(dir, DIR_MODE)?;
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), StoreError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|source| {
        StoreError::Permissions {
            path: path.to_path_buf(),
            source,
        }
    })
}
