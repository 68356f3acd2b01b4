//! The store's error type, shared by the read-only reader and the writer. Messages name the
//! database path and never carry row contents (so nothing secret can leak through them).

use std::path::PathBuf;

/// Everything that can go wrong opening, migrating, reading or writing the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
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

impl StoreError {
    /// The SQLite primary error code behind this error, when there is one.
    pub fn sqlite_code(&self) -> Option<rusqlite::ErrorCode> {
        match self {
            StoreError::Open { source, .. }
            | StoreError::Migration { source, .. }
            | StoreError::Sqlite(source) => source.sqlite_error_code(),
            _ => None,
        }
    }
}
