//! The database schema as data: numbered migrations, applied in order by the writer (`migrate`) and
//! recorded in `PRAGMA user_version`. A migration that has landed is never edited; changes go in
//! a new one appended at the end. This module only describes; it executes nothing.

/// A column that a migration adds to an existing table when the table lacks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddColumn {
    pub table: &'static str,
    pub column: &'static str,
    /// Type and constraints after the column name; must be nullable or carry a default, as
    /// SQLite requires for `ALTER TABLE ADD COLUMN` and SPEC §3.6 requires for extra columns.
    pub decl: &'static str,
}

/// An index that a migration ensures. It is created under `name` unless the table already has
/// an index on exactly these columns, whatever its name (the original tool named its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSpec {
    pub name: &'static str,
    pub table: &'static str,
    pub columns: &'static [&'static str],
}

/// One schema step. The writer applies it in a single transaction, in this order:
/// `add_columns` (only for tables that exist and lack the column), `sql`, then `indexes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    pub version: u32,
    pub description: &'static str,
    pub add_columns: &'static [AddColumn],
    pub sql: &'static str,
    pub indexes: &'static [IndexSpec],
}

impl Migration {
    /// A migration that is plain SQL.
    pub const fn sql_only(version: u32, description: &'static str, sql: &'static str) -> Self {
        Migration {
            version,
            description,
            add_columns: &[],
            sql,
            indexes: &[],
        }
    }
}

const ORIGINAL_TABLES: &str = "
CREATE TABLE IF NOT EXISTS monitoring_cycles (
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
CREATE TABLE IF NOT EXISTS service_checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    cycle_id TEXT NOT NULL REFERENCES monitoring_cycles(id),
    service_name TEXT NOT NULL,
    service_url TEXT,
    status TEXT NOT NULL,
    status_code INTEGER,
    latency_ms REAL,
    error_message TEXT
);
";

/// Early versions of the original tool created `monitoring_cycles` without these.
const ORIGINAL_LATE_COLUMNS: &[AddColumn] = &[
    AddColumn {
        table: "monitoring_cycles",
        column: "uptime_seconds",
        decl: "REAL",
    },
    AddColumn {
        table: "monitoring_cycles",
        column: "ping_ms",
        decl: "REAL",
    },
    AddColumn {
        table: "monitoring_cycles",
        column: "worker_status",
        decl: "INTEGER",
    },
    AddColumn {
        table: "monitoring_cycles",
        column: "cycle_duration_ms",
        decl: "INTEGER",
    },
];

const ORIGINAL_INDEXES: &[IndexSpec] = &[
    IndexSpec {
        name: "idx_cycles_timestamp",
        table: "monitoring_cycles",
        columns: &["timestamp_lima"],
    },
    IndexSpec {
        name: "idx_cycles_timestamp_id",
        table: "monitoring_cycles",
        columns: &["timestamp_lima", "id"],
    },
    IndexSpec {
        name: "idx_checks_service_name",
        table: "service_checks",
        columns: &["service_name"],
    },
    IndexSpec {
        name: "idx_checks_cycle_id",
        table: "service_checks",
        columns: &["cycle_id"],
    },
    IndexSpec {
        name: "idx_checks_cycle_service_latency",
        table: "service_checks",
        columns: &["cycle_id", "service_name", "latency_ms"],
    },
];

// SQLite keeps whole milliseconds of a parsed time string (the sub-millisecond rest is dropped,
// as jiff's `as_millisecond` does); unixepoch returns them as a float of seconds, and ROUND keeps
// the product from landing one millisecond low. Unparseable strings leave ts_ms NULL.
const INSTANTS_AND_ALERTS: &str = "
UPDATE monitoring_cycles
   SET ts_ms = CAST(ROUND(unixepoch(timestamp_lima, 'subsec') * 1000) AS INTEGER)
 WHERE ts_ms IS NULL;
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    uid TEXT UNIQUE,
    created_at TEXT,
    created_ms INTEGER,
    item TEXT,
    old_status TEXT,
    new_status TEXT,
    title TEXT,
    message TEXT,
    attempts INTEGER,
    delivered_at TEXT,
    last_error TEXT
);
";

// Rows written before the outbox columns: a delivered one is delivered, a failed one failed
// (the shutdown abandonment is the one error that was never final: it stays pending, like the
// rows a crash left with no result at all).
const ALERT_OUTBOX: &str = "
UPDATE alerts
   SET delivery_state = CASE
           WHEN delivered_at IS NOT NULL THEN 'delivered'
           WHEN last_error IS NOT NULL AND last_error != 'abandoned at shutdown' THEN 'failed'
       END
 WHERE delivery_state IS NULL;
";

// One row per outage of a service: from its first bad check (`started_*`) to the first healthy
// check after it (`ended_*`, NULL while it goes on), with the count of its bad checks by status
// and the first and last status and reason. Written inside each cycle's transaction.
const INCIDENTS: &str = "
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY,
    service_name TEXT NOT NULL,
    started_ms INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    last_bad_ms INTEGER NOT NULL,
    ended_ms INTEGER,
    ended_at TEXT,
    checks INTEGER NOT NULL,
    error INTEGER NOT NULL DEFAULT 0,
    timeout INTEGER NOT NULL DEFAULT 0,
    down INTEGER NOT NULL DEFAULT 0,
    unknown INTEGER NOT NULL DEFAULT 0,
    first_status TEXT NOT NULL,
    last_status TEXT NOT NULL,
    first_code INTEGER,
    last_code INTEGER,
    first_reason TEXT,
    last_reason TEXT
);
CREATE INDEX IF NOT EXISTS idx_incidents_open ON incidents(service_name) WHERE ended_ms IS NULL;
CREATE INDEX IF NOT EXISTS idx_incidents_started ON incidents(started_ms);
";

// One row per https service: the `notAfter` of the leaf certificate its newest answer came
// with, and that check's instant. A table of its own, so `service_checks` keeps the columns the
// Python tool reads and writes.
const SERVICE_CERTIFICATES: &str = "
CREATE TABLE IF NOT EXISTS service_certificates (
    service_name TEXT PRIMARY KEY,
    expires_ms INTEGER NOT NULL,
    checked_ms INTEGER NOT NULL
) WITHOUT ROWID;
";

// One row per fleet host name this journal was shipped as: the last cycle and alert shipped
// (their rowids, the cycle's id and instant) and when, and this journal's identity (a random
// id made once), so two agents given one HOST_NAME cannot mix their journals in the fleet. The shipper writes it after PostgreSQL
// committed a batch; the dashboard reads the lag from it.
const FLEET_PROGRESS: &str = "
CREATE TABLE IF NOT EXISTS fleet_progress (
    host TEXT PRIMARY KEY,
    cycle_rowid INTEGER NOT NULL,
    cycle_id TEXT,
    cycle_ts_ms INTEGER,
    alert_id INTEGER NOT NULL,
    updated_ms INTEGER,
    journal_id TEXT NOT NULL
) WITHOUT ROWID;
";

/// Every migration, in order. `MIGRATIONS[i].version == i + 1`.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "the original tool's tables and indexes",
        add_columns: ORIGINAL_LATE_COLUMNS,
        sql: ORIGINAL_TABLES,
        indexes: ORIGINAL_INDEXES,
    },
    Migration {
        version: 2,
        description: "cycle instants in epoch milliseconds (ts_ms) and the alerts table",
        add_columns: &[AddColumn {
            table: "monitoring_cycles",
            column: "ts_ms",
            decl: "INTEGER",
        }],
        sql: INSTANTS_AND_ALERTS,
        indexes: &[
            IndexSpec {
                name: "idx_cycles_ts_ms",
                table: "monitoring_cycles",
                columns: &["ts_ms"],
            },
            IndexSpec {
                name: "idx_alerts_created_ms",
                table: "alerts",
                columns: &["created_ms"],
            },
        ],
    },
    Migration::sql_only(
        3,
        "minute, hour and day rollups the dashboard reads",
        MIGRATION_3_SQL,
    ),
    Migration {
        version: 4,
        description: "alert outbox: delivery_state (NULL while pending) and redelivered_at (late)",
        add_columns: &[
            AddColumn {
                table: "alerts",
                column: "delivery_state",
                decl: "TEXT",
            },
            AddColumn {
                table: "alerts",
                column: "redelivered_at",
                decl: "TEXT",
            },
        ],
        sql: ALERT_OUTBOX,
        // The agent resumes every service from its newest alert at start: without it, one scan
        // of the whole table per service.
        indexes: &[IndexSpec {
            name: "idx_alerts_item_created_ms",
            table: "alerts",
            columns: &["item", "created_ms"],
        }],
    },
    Migration::sql_only(
        5,
        "incidents: every run of bad checks of a service, open or ended",
        INCIDENTS,
    ),
    Migration::sql_only(
        6,
        "service_certificates: the newest leaf certificate expiry of each https service",
        SERVICE_CERTIFICATES,
    ),
    Migration::sql_only(
        7,
        "fleet_progress: how far the cycles were shipped to the fleet database",
        FLEET_PROGRESS,
    ),
    Migration::sql_only(
        8,
        "alert_deliveries: each alert's delivery result per channel (ALERT_URLS, the webhook)",
        ALERT_DELIVERIES,
    ),
];

/// One row per alert and channel, written as each channel's delivery ends; `state` is NULL
/// while it may still be sent (interrupted by a shutdown), else `delivered`, `failed` or
/// `given_up`. The alert's own row in `alerts` sums them up once every channel is done.
const ALERT_DELIVERIES: &str = "
CREATE TABLE IF NOT EXISTS alert_deliveries (
    alert_uid TEXT NOT NULL,
    channel TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    delivered_at TEXT,
    last_error TEXT,
    state TEXT,
    PRIMARY KEY (alert_uid, channel)
) WITHOUT ROWID;
";

/// The schema version a fully migrated database records in `PRAGMA user_version`.
pub const LATEST_VERSION: u32 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// Migration 3: rollup tables. `rollup_meta.covered_from_ms` is the first instant from which
/// every cycle is rolled up (the first minute boundary after the newest cycle that existed when
/// the migration ran); earlier data is read from raw rows.
pub const MIGRATION_3_SQL: &str = "
CREATE TABLE rollup_cycles (
    tier_s INTEGER NOT NULL,
    start_s INTEGER NOT NULL,
    n INTEGER NOT NULL,
    cpu_sum REAL NOT NULL,
    ram_sum REAL NOT NULL,
    disk_sum REAL NOT NULL,
    dur_n INTEGER NOT NULL,
    dur_sum REAL NOT NULL,
    dur_min REAL,
    dur_max REAL,
    ping_n INTEGER NOT NULL,
    ping_sum REAL NOT NULL,
    ping_min REAL,
    ping_max REAL,
    inet_up INTEGER NOT NULL,
    workers BLOB NOT NULL,
    PRIMARY KEY (tier_s, start_s)
) WITHOUT ROWID;
CREATE TABLE rollup_services (
    tier_s INTEGER NOT NULL,
    start_s INTEGER NOT NULL,
    service_name TEXT NOT NULL,
    n INTEGER NOT NULL,
    healthy INTEGER NOT NULL,
    error INTEGER NOT NULL,
    timeout INTEGER NOT NULL,
    down INTEGER NOT NULL,
    unknown INTEGER NOT NULL,
    lat_n INTEGER NOT NULL,
    lat_sum REAL NOT NULL,
    lat_min REAL,
    lat_max REAL,
    hist BLOB NOT NULL,
    PRIMARY KEY (tier_s, start_s, service_name)
) WITHOUT ROWID;
CREATE TABLE rollup_meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO rollup_meta (key, value)
    SELECT 'covered_from_ms', COALESCE((MAX(ts_ms) / 60000 + 1) * 60000, 0) FROM monitoring_cycles;
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_contiguous_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "migration '{}'", m.description);
        }
        assert_eq!(LATEST_VERSION as usize, MIGRATIONS.len());
    }

    #[test]
    fn added_columns_are_nullable_or_defaulted() {
        for m in MIGRATIONS {
            for c in m.add_columns {
                let decl = c.decl.to_ascii_uppercase();
                assert!(
                    !decl.contains("NOT NULL") || decl.contains("DEFAULT"),
                    "{}.{} in migration {}",
                    c.table,
                    c.column,
                    m.version
                );
            }
        }
    }
}
