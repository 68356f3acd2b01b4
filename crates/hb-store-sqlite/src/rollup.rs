//! Aggregates the dashboard reads, maintained inside each cycle's transaction: one row per tier
//! block (day, hour, six minutes, minute) for the cycle and one per service, merged read-modify-write so a
//! block always equals the aggregate of the raw rows it spans.
//!
//! The agent is the only writer, so the blocks a cycle touches are kept in memory between
//! cycles ([`RollupCache`]) and read from the database only when a block is first touched: that
//! saves one query per block per cycle. The cache is dropped whenever a write fails, so it never
//! holds anything the database does not.

use std::collections::HashMap;

use hb_core::CycleRecord;
use hb_core::aggregate::{Counts, CycleAcc, ServiceAcc, Stat, TIERS_S};
use rusqlite::{OptionalExtension, Transaction, params};

const SELECT_CYCLE: &str = "SELECT n, cpu_sum, ram_sum, disk_sum, dur_n, dur_sum, dur_min, \
     dur_max, ping_n, ping_sum, ping_min, ping_max, inet_up, workers \
     FROM rollup_cycles WHERE tier_s = ?1 AND start_s = ?2";

const UPSERT_CYCLE: &str = "INSERT OR REPLACE INTO rollup_cycles (tier_s, start_s, n, cpu_sum, \
     ram_sum, disk_sum, dur_n, dur_sum, dur_min, dur_max, ping_n, ping_sum, ping_min, ping_max, \
     inet_up, workers) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";

const SELECT_SERVICE: &str = "SELECT n, healthy, error, timeout, down, unknown, lat_n, lat_sum, \
     lat_min, lat_max, hist FROM rollup_services \
     WHERE tier_s = ?1 AND start_s = ?2 AND service_name = ?3";

const UPSERT_SERVICE: &str = "INSERT OR REPLACE INTO rollup_services (tier_s, start_s, \
     service_name, n, healthy, error, timeout, down, unknown, lat_n, lat_sum, lat_min, lat_max, \
     hist) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn stat_cols(s: &Stat) -> (i64, f64, Option<f64>, Option<f64>) {
    (count(s.n), s.sum, s.min_opt(), s.max_opt())
}

/// The current block of every tier, as last written (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct RollupCache {
    /// Start of the block each tier's cached entries belong to.
    current: HashMap<i64, i64>,
    cycles: HashMap<(i64, i64), CycleAcc>,
    services: HashMap<(i64, i64, String), ServiceAcc>,
}

impl RollupCache {
    /// Forgets everything (after a failed write, whose changes were rolled back).
    pub(crate) fn clear(&mut self) {
        *self = RollupCache::default();
    }

    /// Keeps only `tier`'s block starting at `start`: older blocks are never written again.
    fn enter(&mut self, tier: i64, start: i64) {
        if self.current.insert(tier, start) != Some(start) {
            self.cycles.retain(|&(t, s), _| t != tier || s == start);
            self.services
                .retain(|(t, s, _), _| *t != tier || *s == start);
        }
    }
}

/// Adds `cycle` to every tier block holding its instant.
pub(crate) fn apply(
    tx: &Transaction<'_>,
    cycle: &CycleRecord,
    cache: &mut RollupCache,
) -> rusqlite::Result<()> {
    let mut c = CycleAcc::default();
    c.add(
        cycle.host.cpu_percent,
        cycle.host.ram_percent,
        cycle.host.disk_percent,
        Some(cycle.cycle_duration_ms as f64),
        cycle.internet.online,
        cycle.internet.ping_ms,
        cycle.worker_status.map(i64::from),
    );
    let services: Vec<(&str, ServiceAcc)> = cycle
        .services
        .iter()
        .map(|s| {
            let mut acc = ServiceAcc::default();
            acc.add(s.outcome.status, s.outcome.latency_ms);
            (s.name.as_str(), acc)
        })
        .collect();
    let at_s = cycle.timestamp_ms.div_euclid(1000);
    for tier in TIERS_S {
        let start = at_s.div_euclid(tier) * tier;
        cache.enter(tier, start);
        let cached = cache.cycles.remove(&(tier, start));
        let merged = merge_cycle(tx, tier, start, cached, &c)?;
        cache.cycles.insert((tier, start), merged);
        for (name, acc) in &services {
            let key = (tier, start, (*name).to_owned());
            let cached = cache.services.remove(&key);
            let merged = merge_service(tx, tier, start, name, cached, acc)?;
            cache.services.insert(key, merged);
        }
    }
    Ok(())
}

fn load_cycle(tx: &Transaction<'_>, tier: i64, start: i64) -> rusqlite::Result<CycleAcc> {
    Ok(tx
        .prepare_cached(SELECT_CYCLE)?
        .query_row(params![tier, start], |r| {
            Ok(CycleAcc {
                n: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                cpu_sum: r.get(1)?,
                ram_sum: r.get(2)?,
                disk_sum: r.get(3)?,
                duration: Stat::from_columns(r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?),
                ping: Stat::from_columns(r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?),
                inet_up: u64::try_from(r.get::<_, i64>(12)?).unwrap_or(0),
                workers: Counts::decode(&r.get::<_, Vec<u8>>(13)?),
            })
        })
        .optional()?
        .unwrap_or_default())
}

/// Merges `add` into the block (`cached`, or else as stored) and writes it back.
pub(crate) fn merge_cycle(
    tx: &Transaction<'_>,
    tier: i64,
    start: i64,
    cached: Option<CycleAcc>,
    add: &CycleAcc,
) -> rusqlite::Result<CycleAcc> {
    let mut acc = match cached {
        Some(acc) => acc,
        None => load_cycle(tx, tier, start)?,
    };
    acc.merge(add);
    let d = stat_cols(&acc.duration);
    let p = stat_cols(&acc.ping);
    tx.prepare_cached(UPSERT_CYCLE)?.execute(params![
        tier,
        start,
        count(acc.n),
        acc.cpu_sum,
        acc.ram_sum,
        acc.disk_sum,
        d.0,
        d.1,
        d.2,
        d.3,
        p.0,
        p.1,
        p.2,
        p.3,
        count(acc.inet_up),
        acc.workers.encode(),
    ])?;
    Ok(acc)
}

fn load_service(
    tx: &Transaction<'_>,
    tier: i64,
    start: i64,
    name: &str,
) -> rusqlite::Result<ServiceAcc> {
    Ok(tx
        .prepare_cached(SELECT_SERVICE)?
        .query_row(params![tier, start, name], |r| {
            let c = |i: usize| -> rusqlite::Result<u64> {
                Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0))
            };
            Ok(ServiceAcc {
                n: c(0)?,
                statuses: [c(1)?, c(2)?, c(3)?, c(4)?, c(5)?],
                latency: Stat::from_columns(r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?),
                hist: Counts::decode(&r.get::<_, Vec<u8>>(10)?),
            })
        })
        .optional()?
        .unwrap_or_default())
}

/// Merges `add` into the service's block (`cached`, or else as stored) and writes it back.
pub(crate) fn merge_service(
    tx: &Transaction<'_>,
    tier: i64,
    start: i64,
    name: &str,
    cached: Option<ServiceAcc>,
    add: &ServiceAcc,
) -> rusqlite::Result<ServiceAcc> {
    let mut acc = match cached {
        Some(acc) => acc,
        None => load_service(tx, tier, start, name)?,
    };
    acc.merge(add);
    let l = stat_cols(&acc.latency);
    let [h, e, t, d, u] = acc.statuses.map(count);
    tx.prepare_cached(UPSERT_SERVICE)?.execute(params![
        tier,
        start,
        name,
        count(acc.n),
        h,
        e,
        t,
        d,
        u,
        l.0,
        l.1,
        l.2,
        l.3,
        acc.hist.encode(),
    ])?;
    Ok(acc)
}
