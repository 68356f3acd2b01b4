//! Applies [`crate::schema::MIGRATIONS`] to a read-write connection, one transaction per
//! migration, recording progress in `PRAGMA user_version`.

use std::path::Path;

use crate::SqliteError;
use crate::schema::{IndexSpec, LATEST_VERSION, MIGRATIONS, Migration};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

fn check_known(path: &Path, found: i64) -> Result<(), SqliteError> {
    if found < 0 || found > i64::from(LATEST_VERSION) {
        return Err(SqliteError::UnknownSchemaVersion {
            path: path.to_path_buf(),
            found,
            supported: LATEST_VERSION,
        });
    }
    Ok(())
}

/// Brings the database up to [`LATEST_VERSION`]. Safe to run concurrently with another writer
/// doing the same: each step re-reads the version under the write lock.
pub(crate) fn run(conn: &mut Connection, path: &Path) -> Result<(), SqliteError> {
    let found = user_version(conn)?;
    check_known(path, found)?;
    for migration in MIGRATIONS {
        if i64::from(migration.version) <= found {
            continue;
        }
        let failed = |source| SqliteError::Migration {
            version: migration.version,
            description: migration.description,
            source,
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed)?;
        let now = user_version(&tx).map_err(failed)?;
        check_known(path, now)?;
        if now >= i64::from(migration.version) {
            continue;
        }
        apply(&tx, migration).map_err(failed)?;
        tx.commit().map_err(failed)?;
        tracing::info!(
            version = migration.version,
            description = migration.description,
            "database schema migrated"
        );
    }
    Ok(())
}

fn apply(tx: &Transaction<'_>, migration: &Migration) -> rusqlite::Result<()> {
    for add in migration.add_columns {
        if table_exists(tx, add.table)? && !column_exists(tx, add.table, add.column)? {
            tx.execute_batch(&format!(
                "ALTER TABLE {} ADD COLUMN {} {}",
                quote(add.table),
                quote(add.column),
                add.decl
            ))?;
        }
    }
    tx.execute_batch(migration.sql)?;
    for index in migration.indexes {
        if !has_index_on(tx, index)? {
            let columns: Vec<String> = index.columns.iter().map(|c| quote(c)).collect();
            tx.execute_batch(&format!(
                "CREATE INDEX IF NOT EXISTS {} ON {} ({})",
                quote(index.name),
                quote(index.table),
                columns.join(", ")
            ))?;
        }
    }
    tx.pragma_update(None, "user_version", migration.version)
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

fn table_exists(tx: &Transaction<'_>, table: &str) -> rusqlite::Result<bool> {
    tx.query_row(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [table],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
}

fn column_exists(tx: &Transaction<'_>, table: &str, column: &str) -> rusqlite::Result<bool> {
    tx.query_row(
        "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2",
        [table, column],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
}

/// True when some full (non-partial) index of the table covers exactly `index.columns` in order,
/// so an original database keeps its own indexes instead of getting duplicates under our names.
fn has_index_on(tx: &Transaction<'_>, index: &IndexSpec) -> rusqlite::Result<bool> {
    let mut list = tx.prepare("SELECT name FROM pragma_index_list(?1) WHERE partial = 0")?;
    let names = list
        .query_map([index.table], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    let mut info = tx.prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")?;
    for name in names {
        let columns = info
            .query_map([&name], |row| row.get::<_, Option<String>>(0))?
            .collect::<rusqlite::Result<Vec<Option<String>>>>()?;
        let same = columns.len() == index.columns.len()
            && columns
                .iter()
                .zip(index.columns)
                .all(|(have, want)| have.as_deref() == Some(*want));
        if same {
            return Ok(true);
        }
    }
    Ok(false)
}
