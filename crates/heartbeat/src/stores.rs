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

/// The dashboard's store: the same file, read-only.
pub fn dashboard_store(config: &DashboardConfig) -> Arc<dyn ReadStore> {
    Arc::new(SqliteStore::new(config.db_path.clone()).reader())
}

/// The store `heartbeat healthcheck` reads the newest cycle from.
pub fn healthcheck_store(config: &HealthcheckConfig) -> Arc<dyn ReadStore> {
    Arc::new(SqliteStore::new(config.db_path.clone()).reader())
}
