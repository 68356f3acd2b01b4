//! Folding newly shipped cycles into the host's rollup blocks, in Rust with the core's
//! aggregates: each block is read, merged one cycle at a time in journal order, and written
//! back. That is exactly what the agent's own SQLite writer does per cycle, so a block holds the
//! same numbers (to the last bit of every float sum, and the same latency histogram) on both
//! engines, and the fleet dashboard answers as the host's own dashboard does.

use std::collections::BTreeMap;

use hb_core::aggregate::{Counts, CycleAcc, ServiceAcc, Stat, TIERS_S, stored_status};
use hb_store::JournalCycle;
use tokio_postgres::Transaction;

use crate::FleetError;

type Block = (i32, i64);

const LOAD_CYCLES: &str = "SELECT r.tier_s, r.start_s, r.n, r.cpu_sum, r.ram_sum, r.disk_sum, \
     r.dur_n, r.dur_sum, r.dur_min, r.dur_max, r.ping_n, r.ping_sum, r.ping_min, r.ping_max, \
     r.inet_up, r.workers \
     FROM rollup_cycles r JOIN UNNEST($2::int[], $3::bigint[]) AS k(tier, start) \
       ON r.tier_s = k.tier AND r.start_s = k.start \
     WHERE r.host = $1";

const LOAD_SERVICES: &str = "SELECT r.tier_s, r.start_s, r.service_name, r.n, r.healthy, \
     r.error, r.timeout, r.down, r.unknown, r.lat_n, r.lat_sum, r.lat_min, r.lat_max, r.hist \
     FROM rollup_services r JOIN UNNEST($2::int[], $3::bigint[]) AS k(tier, start) \
       ON r.tier_s = k.tier AND r.start_s = k.start \
     WHERE r.host = $1";

const SAVE_CYCLES: &str = "INSERT INTO rollup_cycles (host, tier_s, start_s, n, cpu_sum, \
     ram_sum, disk_sum, dur_n, dur_sum, dur_min, dur_max, ping_n, ping_sum, ping_min, ping_max, \
     inet_up, workers) \
     SELECT $1, * FROM UNNEST($2::int[], $3::bigint[], $4::bigint[], $5::float8[], $6::float8[], \
       $7::float8[], $8::bigint[], $9::float8[], $10::float8[], $11::float8[], $12::bigint[], \
       $13::float8[], $14::float8[], $15::float8[], $16::bigint[], $17::bytea[]) \
     ON CONFLICT (host, tier_s, start_s) DO UPDATE SET n = excluded.n, \
       cpu_sum = excluded.cpu_sum, ram_sum = excluded.ram_sum, disk_sum = excluded.disk_sum, \
       dur_n = excluded.dur_n, dur_sum = excluded.dur_sum, dur_min = excluded.dur_min, \
       dur_max = excluded.dur_max, ping_n = excluded.ping_n, ping_sum = excluded.ping_sum, \
       ping_min = excluded.ping_min, ping_max = excluded.ping_max, inet_up = excluded.inet_up, \
       workers = excluded.workers";

const SAVE_SERVICES: &str = "INSERT INTO rollup_services (host, tier_s, start_s, service_name, \
     n, healthy, error, timeout, down, unknown, lat_n, lat_sum, lat_min, lat_max, hist) \
     SELECT $1, * FROM UNNEST($2::int[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[], \
       $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::float8[], \
       $13::float8[], $14::float8[], $15::bytea[]) \
     ON CONFLICT (host, tier_s, start_s, service_name) DO UPDATE SET n = excluded.n, \
       healthy = excluded.healthy, error = excluded.error, timeout = excluded.timeout, \
       down = excluded.down, unknown = excluded.unknown, lat_n = excluded.lat_n, \
       lat_sum = excluded.lat_sum, lat_min = excluded.lat_min, lat_max = excluded.lat_max, \
       hist = excluded.hist";

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A stat's stored columns, as the SQLite store keeps them (`min`/`max` NULL without samples).
fn stat_cols(s: &Stat) -> (i64, f64, Option<f64>, Option<f64>) {
    (count(s.n), s.sum, s.min_opt(), s.max_opt())
}

/// One cycle's contribution, as the agent's writer builds it.
fn cycle_acc(c: &JournalCycle) -> CycleAcc {
    let mut acc = CycleAcc::default();
    acc.add(
        c.cpu_percent,
        c.ram_percent,
        c.disk_percent,
        c.cycle_duration_ms.map(|d| d as f64),
        c.internet_status,
        c.ping_ms,
        c.worker_status,
    );
    acc
}

/// Folds `cycles` (new to the fleet database, in journal order) into `host`'s blocks of every
/// tier. Cycles without an instant (the older tool's) have nothing to place them by.
pub(crate) async fn fold(
    tx: &Transaction<'_>,
    host: &str,
    cycles: &[&JournalCycle],
) -> Result<(), FleetError> {
    let placed: Vec<(&JournalCycle, i64)> = cycles
        .iter()
        .filter_map(|c| c.ts_ms.map(|ms| (*c, ms.div_euclid(1000))))
        .collect();
    if placed.is_empty() {
        return Ok(());
    }
    let mut keys: Vec<Block> = placed
        .iter()
        .flat_map(|(_, at_s)| {
            TIERS_S.map(|tier| {
                (
                    i32::try_from(tier).unwrap_or(i32::MAX),
                    at_s.div_euclid(tier) * tier,
                )
            })
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    let tiers: Vec<i32> = keys.iter().map(|k| k.0).collect();
    let starts: Vec<i64> = keys.iter().map(|k| k.1).collect();

    let mut blocks: BTreeMap<Block, CycleAcc> = BTreeMap::new();
    for r in tx.query(LOAD_CYCLES, &[&host, &tiers, &starts]).await? {
        let acc = CycleAcc {
            n: unsigned(r.get(2)),
            cpu_sum: r.get(3),
            ram_sum: r.get(4),
            disk_sum: r.get(5),
            duration: Stat::from_columns(r.get(6), r.get(7), r.get(8), r.get(9)),
            ping: Stat::from_columns(r.get(10), r.get(11), r.get(12), r.get(13)),
            inet_up: unsigned(r.get(14)),
            workers: Counts::decode(r.get::<_, &[u8]>(15)),
        };
        blocks.insert((r.get(0), r.get(1)), acc);
    }
    let mut services: BTreeMap<(i32, i64, String), ServiceAcc> = BTreeMap::new();
    for r in tx.query(LOAD_SERVICES, &[&host, &tiers, &starts]).await? {
        let acc = ServiceAcc {
            n: unsigned(r.get(3)),
            statuses: [4, 5, 6, 7, 8].map(|i| unsigned(r.get(i))),
            latency: Stat::from_columns(r.get(9), r.get(10), r.get(11), r.get(12)),
            hist: Counts::decode(r.get::<_, &[u8]>(13)),
        };
        services.insert((r.get(0), r.get(1), r.get(2)), acc);
    }

    for (cycle, at_s) in &placed {
        let add = cycle_acc(cycle);
        let checks: Vec<(&str, ServiceAcc)> = cycle
            .checks
            .iter()
            .map(|k| {
                let mut acc = ServiceAcc::default();
                acc.add(stored_status(&k.status), k.latency_ms);
                (k.service_name.as_str(), acc)
            })
            .collect();
        for tier in TIERS_S {
            let block = (
                i32::try_from(tier).unwrap_or(i32::MAX),
                at_s.div_euclid(tier) * tier,
            );
            blocks.entry(block).or_default().merge(&add);
            for (name, acc) in &checks {
                services
                    .entry((block.0, block.1, (*name).to_owned()))
                    .or_default()
                    .merge(acc);
            }
        }
    }
    save_cycles(tx, host, &blocks).await?;
    save_services(tx, host, &services).await
}

async fn save_cycles(
    tx: &Transaction<'_>,
    host: &str,
    blocks: &BTreeMap<Block, CycleAcc>,
) -> Result<(), FleetError> {
    let tier: Vec<i32> = blocks.keys().map(|k| k.0).collect();
    let start: Vec<i64> = blocks.keys().map(|k| k.1).collect();
    let a: Vec<&CycleAcc> = blocks.values().collect();
    let n: Vec<i64> = a.iter().map(|c| count(c.n)).collect();
    let cpu: Vec<f64> = a.iter().map(|c| c.cpu_sum).collect();
    let ram: Vec<f64> = a.iter().map(|c| c.ram_sum).collect();
    let disk: Vec<f64> = a.iter().map(|c| c.disk_sum).collect();
    let d: Vec<_> = a.iter().map(|c| stat_cols(&c.duration)).collect();
    let p: Vec<_> = a.iter().map(|c| stat_cols(&c.ping)).collect();
    let inet: Vec<i64> = a.iter().map(|c| count(c.inet_up)).collect();
    let workers: Vec<Vec<u8>> = a.iter().map(|c| c.workers.encode()).collect();
    tx.execute(
        SAVE_CYCLES,
        &[
            &host,
            &tier,
            &start,
            &n,
            &cpu,
            &ram,
            &disk,
            &d.iter().map(|s| s.0).collect::<Vec<_>>(),
            &d.iter().map(|s| s.1).collect::<Vec<_>>(),
            &d.iter().map(|s| s.2).collect::<Vec<_>>(),
            &d.iter().map(|s| s.3).collect::<Vec<_>>(),
            &p.iter().map(|s| s.0).collect::<Vec<_>>(),
            &p.iter().map(|s| s.1).collect::<Vec<_>>(),
            &p.iter().map(|s| s.2).collect::<Vec<_>>(),
            &p.iter().map(|s| s.3).collect::<Vec<_>>(),
            &inet,
            &workers,
        ],
    )
    .await?;
    Ok(())
}

async fn save_services(
    tx: &Transaction<'_>,
    host: &str,
    services: &BTreeMap<(i32, i64, String), ServiceAcc>,
) -> Result<(), FleetError> {
    let tier: Vec<i32> = services.keys().map(|k| k.0).collect();
    let start: Vec<i64> = services.keys().map(|k| k.1).collect();
    let name: Vec<&str> = services.keys().map(|k| k.2.as_str()).collect();
    let a: Vec<&ServiceAcc> = services.values().collect();
    let status = |i: usize| -> Vec<i64> { a.iter().map(|s| count(s.statuses[i])).collect() };
    let l: Vec<_> = a.iter().map(|s| stat_cols(&s.latency)).collect();
    let hist: Vec<Vec<u8>> = a.iter().map(|s| s.hist.encode()).collect();
    tx.execute(
        SAVE_SERVICES,
        &[
            &host,
            &tier,
            &start,
            &name,
            &a.iter().map(|s| count(s.n)).collect::<Vec<_>>(),
            &status(0),
            &status(1),
            &status(2),
            &status(3),
            &status(4),
            &l.iter().map(|s| s.0).collect::<Vec<_>>(),
            &l.iter().map(|s| s.1).collect::<Vec<_>>(),
            &l.iter().map(|s| s.2).collect::<Vec<_>>(),
            &l.iter().map(|s| s.3).collect::<Vec<_>>(),
            &hist,
        ],
    )
    .await?;
    Ok(())
}
