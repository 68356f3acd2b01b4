//! SQLite's errors: the detailed one of the writer ([`SqliteError`]) and how every SQLite
//! failure maps onto the store's backend-neutral [`StoreError`] kinds. Messages name the
//! database path and never carry row contents (so nothing secret can leak through them).

use std::path::PathBuf;

use hb_store::{ErrorKind, StoreError};
use rusqlite::ErrorCode;

/// Everything that can go wrong opening, migrating, reading or writing the database.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    #[error("cannot create database directory '{}': {source}", path.display())]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open database '{}': {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database '{}' did not switch to WAL journal mode (it reports '{mode}')", path.display())]
    NotWal { path: PathBuf, mode: String },
    #[error(
        "database '{}' has schema version {found}; this program knows versions up to {supported}",
        path.display()
    )]
    UnknownSchemaVersion {
        path: PathBuf,
        found: i64,
        supported: u32,
    },
    #[error("schema migration {version} ({description}) failed: {source}")]
    Migration {
        version: u32,
        description: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot set permissions of '{}': {source}", path.display())]
    Permissions {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl SqliteError {
    /// The SQLite primary error code behind this error, when there is one.
    pub fn sqlite_code(&self) -> Option<rusqlite::ErrorCode> {
        match self {
            SqliteError::Open { source, .. }
            | SqliteError::Migration { source, .. }
            | SqliteError::Sqlite(source) => source.sqlite_error_code(),
            _ => None,
        }
    }
}

/// The kind of a SQLite failure: busy, locked, full and out of memory are worth retrying on the
/// same connection; constraint and type failures never succeed; anything else (I/O, a damaged
/// or vanished file) is retried on a new connection.
pub(crate) fn kind_of(e: &rusqlite::Error) -> ErrorKind {
    match e.sqlite_error_code() {
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::DiskFull
            | ErrorCode::OutOfMemory,
        ) => ErrorKind::Busy,
        Some(ErrorCode::ConstraintViolation | ErrorCode::TypeMismatch | ErrorCode::TooBig) => {
            ErrorKind::Rejected
        }
        Some(ErrorCode::CannotOpen) => ErrorKind::Unavailable,
        None if matches!(e, rusqlite::Error::ToSqlConversionFailure(_)) => ErrorKind::Rejected,
        _ => ErrorKind::Broken,
    }
}

impl From<SqliteError> for StoreError {
    fn from(e: SqliteError) -> StoreError {
        let kind = match &e {
            SqliteError::CreateDir { .. } | SqliteError::Permissions { .. } => {
                ErrorKind::Misconfigured
            }
            SqliteError::NotWal { .. } | SqliteError::UnknownSchemaVersion { .. } => {
                ErrorKind::Misconfigured
            }
            SqliteError::Open { source, .. } => match kind_of(source) {
                ErrorKind::Busy => ErrorKind::Busy,
                _ => ErrorKind::Unavailable,
            },
            SqliteError::Migration { source, .. } | SqliteError::Sqlite(source) => kind_of(source),
        };
        StoreError::new(kind, e.to_string())
    }
}
