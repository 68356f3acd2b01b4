//! The fleet database's schema: the agent's tables and columns with a `host` (and the journal
//! position `seq`), a `hosts` table, and numbered migrations recorded in
//! `heartbeat_migrations`, applied under an advisory lock so agents starting together do not
//! race. A database with tables of its own and no `heartbeat_migrations` is not ours: nothing
//! is written to it.

use tokio_postgres::Client;

use crate::FleetError;

/// Taken (for the transaction) by every agent applying migrations.
const MIGRATION_LOCK: i64 = 0x6862_666c_6565_7401; // "hbfleet" + 1

pub struct Migration {
    pub version: i32,
    pub description: &'static str,
    pub sql: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "hosts, and the agent's cycles, service rows and alerts by host",
        sql: "
CREATE TABLE hosts (
    name TEXT PRIMARY KEY,
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    interval_seconds DOUBLE PRECISION,
    version TEXT NOT NULL,
    cycle_seq BIGINT NOT NULL DEFAULT 0,
    cycle_id TEXT,
    alert_seq BIGINT NOT NULL DEFAULT 0,
    shipped_ms BIGINT,
    journal_id TEXT
);
CREATE TABLE monitoring_cycles (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL REFERENCES hosts (name),
    seq BIGINT NOT NULL,
    timestamp_lima TEXT NOT NULL,
    ts_ms BIGINT,
    cpu_percent DOUBLE PRECISION NOT NULL,
    ram_percent DOUBLE PRECISION NOT NULL,
    ram_used_mb DOUBLE PRECISION NOT NULL,
    disk_percent DOUBLE PRECISION NOT NULL,
    uptime_seconds DOUBLE PRECISION,
    container_count BIGINT NOT NULL,
    internet_status BOOLEAN NOT NULL,
    ping_ms DOUBLE PRECISION,
    worker_status BIGINT,
    cycle_duration_ms BIGINT
);
CREATE INDEX monitoring_cycles_host_ts ON monitoring_cycles (host, ts_ms);
CREATE INDEX monitoring_cycles_host_seq ON monitoring_cycles (host, seq);
CREATE TABLE service_checks (
    id BIGSERIAL PRIMARY KEY,
    host TEXT NOT NULL,
    cycle_id TEXT NOT NULL REFERENCES monitoring_cycles (id) ON DELETE CASCADE,
    service_name TEXT NOT NULL,
    service_url TEXT,
    status TEXT NOT NULL,
    status_code BIGINT,
    latency_ms DOUBLE PRECISION,
    error_message TEXT
);
CREATE INDEX service_checks_cycle ON service_checks (cycle_id);
CREATE INDEX service_checks_host_service ON service_checks (host, service_name, id);
CREATE TABLE alerts (
    host TEXT NOT NULL REFERENCES hosts (name),
    uid TEXT NOT NULL,
    seq BIGINT NOT NULL,
    created_at TEXT,
    created_ms BIGINT,
    item TEXT,
    old_status TEXT,
    new_status TEXT,
    title TEXT,
    message TEXT,
    attempts BIGINT,
    delivered_at TEXT,
    last_error TEXT,
    delivery_state TEXT,
    redelivered_at TEXT,
    PRIMARY KEY (host, uid)
);
CREATE INDEX alerts_host_created ON alerts (host, created_ms);
",
    },
    Migration {
        version: 2,
        description: "per-host rollups: minute, six-minute, hour and day blocks (UTC) of cycles and services",
        sql: "
CREATE TABLE rollup_cycles (
    host TEXT NOT NULL REFERENCES hosts (name),
    tier_s INTEGER NOT NULL,
    start_s BIGINT NOT NULL,
    n BIGINT NOT NULL,
    cpu_sum DOUBLE PRECISION NOT NULL,
    ram_sum DOUBLE PRECISION NOT NULL,
    disk_sum DOUBLE PRECISION NOT NULL,
    dur_n BIGINT NOT NULL,
    dur_sum DOUBLE PRECISION NOT NULL,
    dur_min DOUBLE PRECISION,
    dur_max DOUBLE PRECISION,
    ping_n BIGINT NOT NULL,
    ping_sum DOUBLE PRECISION NOT NULL,
    ping_min DOUBLE PRECISION,
    ping_max DOUBLE PRECISION,
    inet_up BIGINT NOT NULL,
    PRIMARY KEY (host, tier_s, start_s)
);
CREATE TABLE rollup_services (
    host TEXT NOT NULL REFERENCES hosts (name),
    tier_s INTEGER NOT NULL,
    start_s BIGINT NOT NULL,
    service_name TEXT NOT NULL,
    n BIGINT NOT NULL,
    healthy BIGINT NOT NULL,
    error BIGINT NOT NULL,
    timeout BIGINT NOT NULL,
    down BIGINT NOT NULL,
    unknown BIGINT NOT NULL,
    lat_n BIGINT NOT NULL,
    lat_sum DOUBLE PRECISION NOT NULL,
    lat_min DOUBLE PRECISION,
    lat_max DOUBLE PRECISION,
    PRIMARY KEY (host, tier_s, start_s, service_name)
);
",
    },
    Migration {
        version: 3,
        description: "rollups with the latency histograms and worker codes, folded as the agent folds its own",
        // The blocks of version 2 had no histograms: they are dropped, and each host's rollups
        // start after its newest cycle shipped so far; the raw rows (all kept) answer before.
        sql: "
DELETE FROM rollup_services;
DELETE FROM rollup_cycles;
ALTER TABLE rollup_cycles ADD COLUMN workers BYTEA NOT NULL DEFAULT '\\x';
ALTER TABLE rollup_services ADD COLUMN hist BYTEA NOT NULL DEFAULT '\\x';
ALTER TABLE hosts ADD COLUMN rollups_from_ms BIGINT NOT NULL DEFAULT 0;
UPDATE hosts h SET rollups_from_ms =
    COALESCE((SELECT max(c.ts_ms) + 1 FROM monitoring_cycles c WHERE c.host = h.name), 0);
",
    },
];

/// The version a fully migrated fleet database records.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Applies the missing migrations in one transaction under the advisory lock. Returns the
/// versions applied (none when another agent got there first).
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, FleetError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let ours: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = 'heartbeat_migrations')",
            &[],
        )
        .await?
        .get(0);
    let current = if ours {
        let v: Option<i32> = tx
            .query_one("SELECT max(version) FROM heartbeat_migrations", &[])
            .await?
            .get(0);
        v.unwrap_or(0)
    } else {
        let foreign: Vec<String> = tx
            .query(
                "SELECT table_name::text FROM information_schema.tables \
                 WHERE table_schema = current_schema() ORDER BY table_name LIMIT 4",
                &[],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if !foreign.is_empty() {
            return Err(FleetError::NotOurs(foreign.join(", ")));
        }
        tx.batch_execute(
            "CREATE TABLE heartbeat_migrations (
                 version INTEGER PRIMARY KEY,
                 description TEXT NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .await?;
        0
    };
    if current > latest_version() {
        return Err(FleetError::TooNew {
            found: current,
            known: latest_version(),
        });
    }
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.batch_execute(m.sql).await?;
        tx.execute(
            "INSERT INTO heartbeat_migrations (version, description) VALUES ($1, $2)",
            &[&m.version, &m.description],
        )
        .await?;
        applied.push(m.version);
    }
    tx.commit().await?;
    Ok(applied)
}
