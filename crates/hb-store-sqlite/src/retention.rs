//! Deleting what is past its retention, in small transactions on the writer's connection: raw
//! cycles with their service checks (only those the rollups cover: from `covered_from_ms` on),
//! rollup blocks per tier, alerts; then giving freed pages back to the file system in bounded
//! steps where the database allows it (`auto_vacuum = INCREMENTAL`, which new databases get).
//! Never builds rollups (that is `backfill`) and never touches a cycle the rollups do not cover.

use hb_core::aggregate::TIERS_S;
use hb_store::Retention;
use rusqlite::{Connection, TransactionBehavior, params};

use crate::backfill;

/// Raw cycles deleted per transaction at most, with their checks: at 20 services ~500 rows,
/// each in five b-trees, a few milliseconds (measured ~0.2 ms a cycle, docs/BENCHMARKS.md), so
/// a cycle that arrives meanwhile waits no more than that.
pub(crate) const CYCLES_PER_STEP: i64 = 25;
/// Alerts deleted per transaction at most.
const ALERTS_PER_STEP: i64 = 100;
/// Blocks of one tier deleted per transaction at most (times the services; a key range).
const BLOCKS_PER_STEP: i64 = 60;
/// Free pages kept in the file rather than given back: the next hours' cycles reuse them, and
/// giving back every page only for the file to grow again churns the disk. 2 MiB at 4 KiB pages.
const KEEP_FREE_PAGES: i64 = 512;
/// Pages given back per step at most (1 MiB at 4 KiB pages): each moved page rewrites its
/// parent's pointer, so a step stays a few milliseconds.
const VACUUM_PAGES_PER_STEP: i64 = 256;

/// What one pruning step deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Pruned {
    pub cycles: u64,
    pub checks: u64,
    pub rollups: u64,
    pub alerts: u64,
    pub pages: u64,
}

impl Pruned {
    pub(crate) fn any(&self) -> bool {
        *self != Pruned::default()
    }
}

fn changes(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The raw cycles that may go: `[covered_from_ms, now − retention)`. Rows before
/// `covered_from_ms` are the ones no rollup holds yet (the reader answers them from raw rows),
/// so they wait for the backfill to lower `covered_from_ms` below them. `None` when raw rows are
/// kept forever.
pub(crate) fn raw_prunable_ms(
    conn: &Connection,
    retention: &Retention,
    now_ms: i64,
) -> rusqlite::Result<Option<(i64, i64)>> {
    let Some(cutoff) = Retention::cutoff_ms(retention.raw_days, now_ms) else {
        return Ok(None);
    };
    let covered = backfill::covered_from(conn)?;
    Ok((covered < cutoff).then_some((covered, cutoff)))
}

/// One step: the first kind of row that has something past its retention loses up to one
/// batch of it, in one `BEGIN IMMEDIATE … COMMIT`; else free pages are given back. An empty
/// result means nothing is left to do at `now_ms`.
pub(crate) fn step(
    conn: &mut Connection,
    retention: &Retention,
    now_ms: i64,
) -> rusqlite::Result<Pruned> {
    let pruned = delete_step(conn, retention, now_ms)?;
    if pruned.any() {
        return Ok(pruned);
    }
    Ok(Pruned {
        pages: vacuum_step(conn)?,
        ..Pruned::default()
    })
}

fn delete_step(
    conn: &mut Connection,
    retention: &Retention,
    now_ms: i64,
) -> rusqlite::Result<Pruned> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut pruned = Pruned::default();
    if let Some((from, cutoff)) = raw_prunable_ms(&tx, retention, now_ms)? {
        let victims: Vec<(i64, String)> = tx
            .prepare_cached(
                "SELECT rowid, id FROM monitoring_cycles WHERE ts_ms >= ?1 AND ts_ms < ?2 \
                 ORDER BY ts_ms LIMIT ?3",
            )?
            .query_map(params![from, cutoff, CYCLES_PER_STEP], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut checks = tx.prepare_cached("DELETE FROM service_checks WHERE cycle_id = ?1")?;
        let mut cycles = tx.prepare_cached("DELETE FROM monitoring_cycles WHERE rowid = ?1")?;
        for (rowid, id) in &victims {
            pruned.checks += changes(checks.execute([id])?);
            pruned.cycles += changes(cycles.execute([rowid])?);
        }
    }
    if !pruned.any() {
        for tier in TIERS_S {
            let Some(cutoff_ms) = retention
                .rollup_days(tier)
                .and_then(|days| Retention::cutoff_ms(days, now_ms))
            else {
                continue;
            };
            let cutoff_s = cutoff_ms.div_euclid(1000);
            let first: Option<i64> = tx
                .prepare_cached("SELECT MIN(start_s) FROM rollup_cycles WHERE tier_s = ?1")?
                .query_row([tier], |r| r.get(0))?;
            let first_service: Option<i64> = tx
                .prepare_cached("SELECT MIN(start_s) FROM rollup_services WHERE tier_s = ?1")?
                .query_row([tier], |r| r.get(0))?;
            let Some(first) = first.into_iter().chain(first_service).min() else {
                continue;
            };
            if first >= cutoff_s {
                continue;
            }
            let upto = cutoff_s.min(first.saturating_add(BLOCKS_PER_STEP * tier));
            pruned.rollups += changes(
                tx.prepare_cached("DELETE FROM rollup_cycles WHERE tier_s = ?1 AND start_s < ?2")?
                    .execute(params![tier, upto])?,
            );
            pruned.rollups += changes(
                tx.prepare_cached(
                    "DELETE FROM rollup_services WHERE tier_s = ?1 AND start_s < ?2",
                )?
                .execute(params![tier, upto])?,
            );
            break;
        }
    }
    if !pruned.any()
        && let Some(cutoff) = Retention::cutoff_ms(retention.alert_days, now_ms)
    {
        // Their channel results first, chosen exactly as the alerts below are.
        tx.prepare_cached(
            "DELETE FROM alert_deliveries WHERE alert_uid IN \
             (SELECT uid FROM alerts WHERE created_ms < ?1 ORDER BY created_ms LIMIT ?2)",
        )?
        .execute(params![cutoff, ALERTS_PER_STEP])?;
        pruned.alerts += changes(
            tx.prepare_cached(
                "DELETE FROM alerts WHERE id IN \
                 (SELECT id FROM alerts WHERE created_ms < ?1 ORDER BY created_ms LIMIT ?2)",
            )?
            .execute(params![cutoff, ALERTS_PER_STEP])?,
        );
    }
    tx.commit()?;
    Ok(pruned)
}

/// Whether the database gives pages back (`auto_vacuum = INCREMENTAL`); an older database
/// (`NONE`) keeps its size and reuses the freed pages.
pub(crate) fn incremental(conn: &Connection) -> rusqlite::Result<bool> {
    let mode: i64 = conn.pragma_query_value(None, "auto_vacuum", |r| r.get(0))?;
    Ok(mode == 2)
}

/// Gives back up to [`VACUUM_PAGES_PER_STEP`] free pages beyond [`KEEP_FREE_PAGES`]; the
/// number given back (0 when the database is not incremental or has little free).
fn vacuum_step(conn: &Connection) -> rusqlite::Result<u64> {
    if !incremental(conn)? {
        return Ok(0);
    }
    let free: i64 = conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
    let give = (free - KEEP_FREE_PAGES).min(VACUUM_PAGES_PER_STEP);
    if give <= 0 {
        return Ok(0);
    }
    // Each step of the statement frees one page: run it to its end.
    let mut vacuum = conn.prepare(&format!("PRAGMA incremental_vacuum({give})"))?;
    let mut rows = vacuum.query([])?;
    while rows.next()?.is_some() {}
    let after: i64 = conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
    Ok(u64::try_from(free - after).unwrap_or(0))
}
