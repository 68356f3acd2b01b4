//! Each role's store, built from its configuration: the one place that names a backend. The
//! agent gets something to open for writing, the dashboard something it can only read.

use std::sync::Arc;

use hb_config::{AgentConfig, DashboardConfig, HealthcheckConfig};
use hb_store::{OpenWriteStore, ReadStore, Retention};
use hb_store_sqlite::SqliteStore;

/// The agent's store: the SQLite file of `SQLITE_DB_PATH`, kept as `RETENTION_*` say.
pub fn agent_store(config: &AgentConfig) -> Box<dyn OpenWriteStore> {
    Box::new(SqliteStore::new(config.db_path.clone()).with_retention(retention(config)))
}

/// The configured retention as the store takes it.
pub fn retention(config: &AgentConfig) -> Retention {
    let days = config.retention;
    Retention {
        raw_days: days.raw,
        minute_rollup_days: days.minute_rollups,
        six_minute_rollup_days: days.six_minute_rollups,
        hour_rollup_days: days.hour_rollups,
        day_rollup_days: days.day_rollups,
        alert_days: days.alerts,
    }
}

/// The fleet shipper of an agent with `FLEET_DATABASE_URL`: what it ships as whom, and the
/// local journal it reads (the agent's own SQLite file).
pub fn fleet_shipper(
    config: &AgentConfig,
) -> Option<(
    hb_store_postgres::ShipperSettings,
    Box<dyn hb_store::JournalSource>,
)> {
    let fleet = config.fleet.as_ref()?;
    let host = hb_store_postgres::HostInfo {
        name: fleet.host_name.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        interval_seconds: config.loop_interval.as_secs_f64(),
    };
    let settings = hb_store_postgres::ShipperSettings::new(fleet.url.expose().to_owned(), host);
    let journal = hb_store_sqlite::journal::Journal::new(&config.db_path);
    Some((settings, Box::new(journal)))
}

/// The dashboard's store: the same file, read-only; or with `FLEET_DATABASE_URL`, every host
/// in the fleet database (read-only sessions; the file is not opened).
pub fn dashboard_store(config: &DashboardConfig) -> Arc<dyn ReadStore> {
    match &config.fleet_url {
        Some(url) => Arc::new(hb_store_postgres::FleetReader::new(url.expose())),
        None => Arc::new(SqliteStore::new(config.db_path.clone()).reader()),
    }
}

/// The store `heartbeat healthcheck` reads the newest cycle from.
pub fn healthcheck_store(config: &HealthcheckConfig) -> Arc<dyn ReadStore> {
    Arc::new(SqliteStore::new(config.db_path.clone()).reader())
}
