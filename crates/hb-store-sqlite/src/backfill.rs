//! Rollups for raw cycles written before the rollups existed (a database of the older tool,
//! upgraded in place): one batch per transaction, newest first, each merging the aggregates of
//! the cycles in `[lo, covered_from_ms)` into the blocks of every tier and lowering
//! `covered_from_ms` to `lo` in the same transaction. A reader therefore always sees an exact
//! split (raw before `covered_from_ms`, rollups from it on), and a restart or a SIGKILL resumes
//! from the last committed batch by construction. Never deletes anything (that is `retention`).

use std::collections::{BTreeMap, HashMap};

use hb_core::aggregate::{CycleAcc, ServiceAcc, TIERS_S, stored_status};
use hb_store::Retention;
use rusqlite::{OptionalExtension, Transaction, params};

use crate::rollup;

/// Cycles a batch takes at least when there are that many, before its lower edge is rounded
/// down to the hour (so it may hold up to an hour's worth more). At 20 services ~10,000–17,000
/// check rows: a batch takes ~10–25 ms, and a cycle arriving meanwhile is written after it.
pub(crate) const BATCH_CYCLES: i64 = 500;

const HOUR_MS: i64 = 3_600_000;

/// `rollup_meta` keys (the dashboard's `/health` shows them).
pub(crate) const KEY_COVERED_FROM: &str = "covered_from_ms";
/// Raw cycles (with an instant) still older than `covered_from_ms`: what backfill has left.
pub(crate) const KEY_REMAINING: &str = "backfill_remaining_cycles";
/// Raw cycles older than `covered_from_ms` when the backfill first started (kept across
/// restarts), for a progress fraction.
pub(crate) const KEY_TOTAL: &str = "backfill_total_cycles";
/// 1 once no raw cycle with an instant is older than `covered_from_ms`; 0 while backfilling.
pub(crate) const KEY_DONE: &str = "backfill_done";
/// The agent's clock (epoch ms) at the last committed batch.
pub(crate) const KEY_UPDATED: &str = "backfill_updated_ms";

const SELECT_META: &str = "SELECT value FROM rollup_meta WHERE key = ?1";
const UPSERT_META: &str = "INSERT INTO rollup_meta (key, value) VALUES (?1, ?2) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value";

pub(crate) fn meta(tx: &rusqlite::Connection, key: &str) -> rusqlite::Result<Option<i64>> {
    tx.prepare_cached(SELECT_META)?
        .query_row([key], |r| r.get(0))
        .optional()
}

pub(crate) fn set_meta(tx: &rusqlite::Connection, key: &str, value: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(UPSERT_META)?
        .execute(params![key, value])?;
    Ok(())
}

/// `covered_from_ms`, or 0 (everything covered) when the row is missing.
pub(crate) fn covered_from(conn: &rusqlite::Connection) -> rusqlite::Result<i64> {
    Ok(meta(conn, KEY_COVERED_FROM)?.unwrap_or(0))
}

/// Raw cycles with an instant before `covered_from_ms` (rows whose timestamp never parsed have
/// none and are left out: they cannot be placed in a block, so they must not keep backfill busy).
pub(crate) fn uncovered_cycles(conn: &rusqlite::Connection) -> rusqlite::Result<u64> {
    let covered = covered_from(conn)?;
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM monitoring_cycles WHERE ts_ms < ?1")?
        .query_row([covered], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// What one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Batch {
    /// Raw cycles rolled up.
    pub cycles: u64,
    /// The new `covered_from_ms`.
    pub covered_from_ms: i64,
}

/// Rolls up one batch inside `tx` (the caller commits). `None` when nothing is left: then
/// `backfill_done` is recorded. Blocks of a tier whose retention has already passed at `now_ms`
/// are not built (pruning would delete them at once).
pub(crate) fn batch(
    tx: &Transaction<'_>,
    now_ms: i64,
    retention: &Retention,
    remaining_before: u64,
) -> rusqlite::Result<Option<Batch>> {
    let covered = covered_from(tx)?;
    let nth: Option<i64> = tx
        .prepare_cached(
            "SELECT ts_ms FROM monitoring_cycles WHERE ts_ms < ?1 \
             ORDER BY ts_ms DESC LIMIT 1 OFFSET ?2",
        )?
        .query_row(params![covered, BATCH_CYCLES - 1], |r| r.get(0))
        .optional()?;
    let edge = match nth {
        Some(ts) => Some(ts),
        None => tx
            .prepare_cached("SELECT MIN(ts_ms) FROM monitoring_cycles WHERE ts_ms < ?1")?
            .query_row([covered], |r| r.get::<_, Option<i64>>(0))?,
    };
    let Some(edge) = edge else {
        set_meta(tx, KEY_REMAINING, 0)?;
        set_meta(tx, KEY_DONE, 1)?;
        set_meta(tx, KEY_UPDATED, now_ms)?;
        return Ok(None);
    };
    // Hour edges: after the first batch `covered_from_ms` sits on an hour, so the reader's
    // long ranges (hour and six-minute buckets) never need minute blocks at the split, which
    // are pruned after two days.
    let lo = edge.div_euclid(HOUR_MS) * HOUR_MS;

    let mut cycles: BTreeMap<i64, CycleAcc> = BTreeMap::new();
    let mut n_cycles = 0u64;
    {
        let mut st = tx.prepare_cached(
            "SELECT ts_ms, cpu_percent, ram_percent, disk_percent, cycle_duration_ms, \
                    internet_status, ping_ms, worker_status \
               FROM monitoring_cycles WHERE ts_ms >= ?1 AND ts_ms < ?2",
        )?;
        let mut rows = st.query(params![lo, covered])?;
        while let Some(r) = rows.next()? {
            let minute = r.get::<_, i64>(0)?.div_euclid(60_000) * 60;
            cycles.entry(minute).or_default().add(
                r.get::<_, Option<f64>>(1)?.unwrap_or(0.0),
                r.get::<_, Option<f64>>(2)?.unwrap_or(0.0),
                r.get::<_, Option<f64>>(3)?.unwrap_or(0.0),
                r.get::<_, Option<f64>>(4)?,
                r.get::<_, Option<bool>>(5)?.unwrap_or(false),
                r.get::<_, Option<f64>>(6)?,
                r.get::<_, Option<i64>>(7)?,
            );
            n_cycles += 1;
        }
    }
    let mut services: HashMap<String, BTreeMap<i64, ServiceAcc>> = HashMap::new();
    {
        let mut st = tx.prepare_cached(
            "SELECT c.ts_ms, s.service_name, s.status, s.latency_ms \
               FROM monitoring_cycles c JOIN service_checks s ON s.cycle_id = c.id \
              WHERE c.ts_ms >= ?1 AND c.ts_ms < ?2",
        )?;
        let mut rows = st.query(params![lo, covered])?;
        while let Some(r) = rows.next()? {
            let minute = r.get::<_, i64>(0)?.div_euclid(60_000) * 60;
            let name = r.get_ref(1)?.as_str()?;
            let status = stored_status(r.get_ref(2)?.as_str().unwrap_or(""));
            let latency = r.get::<_, Option<f64>>(3)?;
            if !services.contains_key(name) {
                services.insert(name.to_owned(), BTreeMap::new());
            }
            if let Some(blocks) = services.get_mut(name) {
                blocks.entry(minute).or_default().add(status, latency);
            }
        }
    }

    for tier in TIERS_S {
        let keep_from_s = retention
            .rollup_days(tier)
            .and_then(|days| Retention::cutoff_ms(days, now_ms))
            .map(|ms| ms.div_euclid(1000));
        let kept = |start: i64| keep_from_s.is_none_or(|from| start >= from);
        let mut blocks: BTreeMap<i64, CycleAcc> = BTreeMap::new();
        for (minute, acc) in &cycles {
            blocks
                .entry(minute.div_euclid(tier) * tier)
                .or_default()
                .merge(acc);
        }
        for (start, acc) in blocks.iter().filter(|(s, _)| kept(**s)) {
            rollup::merge_cycle(tx, tier, *start, None, acc)?;
        }
        for (name, minutes) in &services {
            let mut blocks: BTreeMap<i64, ServiceAcc> = BTreeMap::new();
            for (minute, acc) in minutes {
                blocks
                    .entry(minute.div_euclid(tier) * tier)
                    .or_default()
                    .merge(acc);
            }
            for (start, acc) in blocks.iter().filter(|(s, _)| kept(**s)) {
                rollup::merge_service(tx, tier, *start, name, None, acc)?;
            }
        }
    }

    set_meta(tx, KEY_COVERED_FROM, lo)?;
    set_meta(
        tx,
        KEY_REMAINING,
        i64::try_from(remaining_before.saturating_sub(n_cycles)).unwrap_or(i64::MAX),
    )?;
    set_meta(tx, KEY_DONE, 0)?;
    set_meta(tx, KEY_UPDATED, now_ms)?;
    Ok(Some(Batch {
        cycles: n_cycles,
        covered_from_ms: lo,
    }))
}
