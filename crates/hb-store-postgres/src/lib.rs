//! The fleet database: every agent ships its cycles to one PostgreSQL (`FLEET_DATABASE_URL`),
//! each under its `HOST_NAME`. [`connect`] opens a session (TLS through rustls when the URL
//! asks for it), [`schema::migrate`] brings the schema up to date, [`Sink::ship`] writes one
//! batch of the local journal in one transaction together with the host's position in it, so
//! a replayed batch inserts nothing twice. [`shipper`] is the agent's task that does all of it,
//! off the cycle's path.
//!
//! Never logs or returns the URL's password: errors name `FLEET_DATABASE_URL` with the URL
//! redacted.

mod fold;
mod reader;
pub mod schema;
pub mod shipper;
mod sink;
mod tls;

pub use reader::FleetReader;
pub use shipper::{ShipperHandle, ShipperSettings, spawn};
pub use sink::{HostInfo, Sink, connect};

/// Why the fleet database cannot be used (now).
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The URL does not parse or asks for something we do not do.
    #[error("FLEET_DATABASE_URL ({shown}): {why}")]
    Url { shown: String, why: String },
    /// Connecting, authenticating or a statement failed. `shown` is the redacted URL.
    #[error("FLEET_DATABASE_URL ({shown}): {why}")]
    Server { shown: String, why: String },
    /// The database holds tables that are not ours and no `heartbeat_migrations`.
    #[error(
        "the fleet database is not Heartbeat Monitor's: it has other tables ({0}) and no \
         heartbeat_migrations; point FLEET_DATABASE_URL at an empty database of its own"
    )]
    NotOurs(String),
    /// Another agent's journal already ships under this `HOST_NAME`.
    #[error(
        "HOST_NAME {0} is already shipped to the fleet database by another agent (another local \
         database): give each agent its own HOST_NAME"
    )]
    HostTaken(String),
    /// A newer version of this program migrated it.
    #[error(
        "the fleet database has schema version {found}, newer than this program knows ({known}): \
         upgrade the agent"
    )]
    TooNew { found: i32, known: i32 },
    /// A statement failed (before the URL was known to the error).
    #[error("{0}")]
    Db(String),
}

impl FleetError {
    /// The same error with the redacted URL as its context.
    fn at(self, shown: &str) -> FleetError {
        match self {
            FleetError::Db(why) => FleetError::Server {
                shown: shown.to_owned(),
                why,
            },
            other => other,
        }
    }
}

impl From<tokio_postgres::Error> for FleetError {
    fn from(e: tokio_postgres::Error) -> FleetError {
        FleetError::Db(describe(&e))
    }
}

/// A driver error in words: the server's message when it sent one (never containing the
/// password), else the error chain.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

pub use hb_core::redact_password as redact;
