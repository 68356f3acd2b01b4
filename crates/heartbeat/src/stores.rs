//! Each role's store, built from its configuration: the one place that names a backend. The
//! agent gets something to open for writing, the dashboard something it can only read.

use std::sync::Arc;

use hb_config::{AgentConfig, DashboardConfig, HealthcheckConfig};
use hb_store::{OpenWriteStore, ReadStore};
use hb_store_sqlite::SqliteStore;

/// The agent's store: the SQLite file of `SQLITE_DB_PATH`.
pub fn agent_store(config: &AgentConfig) -> Box<dyn OpenWriteStore> {
    Box::new(SqliteStore::new(config.db_path.clone()))
}

/// The dashboard's store: the same file, read-only.
pub fn dashboard_store(config: &DashboardConfig) -> Arc<dyn ReadStore> {
    Arc::new(SqliteStore::new(config.db_path.clone()).reader())
}

/// The store `heartbeat healthcheck` reads the newest cycle from.
pub fn healthcheck_store(config: &HealthcheckConfig) -> Arc<dyn ReadStore> {
    Arc::new(SqliteStore::new(config.db_path.clone()).reader())
}
