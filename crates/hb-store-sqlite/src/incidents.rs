//! Incidents, maintained inside each cycle's transaction: a service's bad check opens one (or
//! extends the open one), its next healthy check ends it (`hb_core::incident`). The open
//! incident of each service is kept in memory between cycles, read from the table when the
//! writer opens and again after a failed write (whose changes were rolled back).

use std::collections::HashMap;

use hb_core::incident::{IncidentStep, incident_step};
use hb_core::{CycleRecord, ServiceStatus};
use rusqlite::{Transaction, params};

const OPEN: &str = "INSERT INTO incidents (service_name, started_ms, started_at, last_bad_ms, \
     checks, error, timeout, down, unknown, first_status, last_status, first_code, last_code, \
     first_reason, last_reason) VALUES (?1, ?2, ?3, ?2, 1, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?9, ?10, ?10)";

const EXTEND: &str = "UPDATE incidents SET last_bad_ms = ?2, checks = checks + 1, \
     error = error + ?3, timeout = timeout + ?4, down = down + ?5, unknown = unknown + ?6, \
     last_status = ?7, last_code = ?8, last_reason = ?9 WHERE id = ?1";

const CLOSE: &str = "UPDATE incidents SET ended_ms = ?2, ended_at = ?3 WHERE id = ?1";

const SELECT_OPEN: &str =
    "SELECT service_name, id FROM incidents WHERE ended_ms IS NULL ORDER BY started_ms, id";

/// The open incident of each service (`None`: not read from the table yet).
#[derive(Debug, Default)]
pub(crate) struct OpenIncidents(Option<HashMap<String, i64>>);

impl OpenIncidents {
    /// Forgets what it knows (after a failed write); the next cycle reads the table again.
    pub(crate) fn clear(&mut self) {
        self.0 = None;
    }
}

fn counts(status: ServiceStatus) -> [i64; 4] {
    match status {
        ServiceStatus::Error => [1, 0, 0, 0],
        ServiceStatus::Timeout => [0, 1, 0, 0],
        ServiceStatus::Down => [0, 0, 1, 0],
        ServiceStatus::Unknown => [0, 0, 0, 1],
        ServiceStatus::Healthy => [0, 0, 0, 0],
    }
}

/// Records what `cycle`'s checks do to their services' incidents.
pub(crate) fn apply(
    tx: &Transaction<'_>,
    cycle: &CycleRecord,
    open: &mut OpenIncidents,
) -> rusqlite::Result<()> {
    if open.0.is_none() {
        let mut st = tx.prepare_cached(SELECT_OPEN)?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        open.0 = Some(rows.collect::<Result<_, _>>()?);
    }
    let Some(open) = open.0.as_mut() else {
        return Ok(());
    };
    for service in &cycle.services {
        let outcome = &service.outcome;
        let current = open.get(&service.name).copied();
        let [error, timeout, down, unknown] = counts(outcome.status);
        match incident_step(current.is_some(), outcome) {
            IncidentStep::Open => {
                tx.prepare_cached(OPEN)?.execute(params![
                    service.name,
                    cycle.timestamp_ms,
                    cycle.timestamp,
                    error,
                    timeout,
                    down,
                    unknown,
                    outcome.status.as_str(),
                    outcome.status_code,
                    outcome.reason,
                ])?;
                open.insert(service.name.clone(), tx.last_insert_rowid());
            }
            IncidentStep::Extend => {
                if let Some(id) = current {
                    tx.prepare_cached(EXTEND)?.execute(params![
                        id,
                        cycle.timestamp_ms,
                        error,
                        timeout,
                        down,
                        unknown,
                        outcome.status.as_str(),
                        outcome.status_code,
                        outcome.reason,
                    ])?;
                }
            }
            IncidentStep::Close => {
                if let Some(id) = current {
                    tx.prepare_cached(CLOSE)?.execute(params![
                        id,
                        cycle.timestamp_ms,
                        cycle.timestamp
                    ])?;
                    open.remove(&service.name);
                }
            }
            IncidentStep::Nothing => {}
        }
    }
    Ok(())
}
