//! `bench-store`: the SQLite store's housekeeping under load, for docs/BENCHMARKS.md (not part
//! of the product). `year` simulates a year of cycles with the default retention and prints the
//! file size as it goes; `latency` measures how long cycles wait to be written with and without
//! housekeeping (pruning or backfill) running between them, the way the agent's writer thread
//! schedules it; `backfill` times the rollup backfill of an older tool's database.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use hb_core::{CheckOutcome, CycleRecord, HostMetrics, InternetCheck, ServiceKind, ServiceResult};
use hb_store::{DAY_MS, Maintenance, Retention};
use hb_store_sqlite::Writer;

/// Benchmarks of the SQLite store's retention and backfill.
#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Writes `days` of cycles (an hour per transaction), running housekeeping as simulated
    /// time passes, and prints the file size every `report_every` days.
    Year {
        #[arg(long)]
        path: PathBuf,
        #[arg(long, default_value_t = 365)]
        days: i64,
        #[arg(long, default_value_t = 20)]
        services: usize,
        #[arg(long, default_value_t = 10)]
        interval: i64,
        #[arg(long, default_value_t = 30)]
        report_every: i64,
    },
    /// Builds a database of `days` of history (or takes the file at `path` as it), then sends `cycles` cycles every `every_ms` to a
    /// writer loop like the agent's and reports how long each waited to be written.
    Latency {
        #[arg(long)]
        path: PathBuf,
        #[arg(long, default_value_t = 10)]
        days: i64,
        #[arg(long, default_value_t = 20)]
        services: usize,
        /// Raw retention during the run (the history beyond it is the pruning backlog).
        #[arg(long, default_value_t = 1)]
        retention_days: u32,
        #[arg(long, default_value_t = 2_000)]
        cycles: usize,
        #[arg(long, default_value_t = 20)]
        every_ms: u64,
        /// Run housekeeping between cycles.
        #[arg(long)]
        maintain: bool,
        /// Build the history in the older tool's format (housekeeping is then the backfill).
        #[arg(long)]
        older: bool,
    },
    /// Builds an older tool's database of `cycles` cycles and times the upgrade and backfill.
    Backfill {
        #[arg(long)]
        path: PathBuf,
        #[arg(long, default_value_t = 250_000)]
        cycles: i64,
        #[arg(long, default_value_t = 20)]
        services: usize,
    },
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Args::parse().cmd {
        Cmd::Year {
            path,
            days,
            services,
            interval,
            report_every,
        } => year(&path, days, services, interval, report_every),
        Cmd::Latency {
            path,
            days,
            services,
            retention_days,
            cycles,
            every_ms,
            maintain,
            older,
        } => latency(
            &path,
            days,
            services,
            retention_days,
            cycles,
            every_ms,
            maintain,
            older,
        ),
        Cmd::Backfill {
            path,
            cycles,
            services,
        } => backfill(&path, cycles, services),
    }
}

/// What the agent's writer thread passes to `maintain`: one step per call, a look for a
/// waiting cycle between steps.
const MAINTAIN_BUDGET: Duration = Duration::ZERO;

/// 2026-01-01T00:00:00Z: simulated time starts here.
const START_MS: i64 = 1_767_225_600_000;

/// Cycle `n` at `ts_ms` with `services` services; deterministic pseudo-random values.
fn cycle(n: u64, ts_ms: i64, services: usize) -> CycleRecord {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut unit = move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    let timestamp = jiff::Timestamp::from_millisecond(ts_ms)
        .map(|t| t.display_with_offset(jiff::tz::offset(-5)).to_string())
        .unwrap_or_default();
    CycleRecord {
        id: format!("00000000-0000-4000-8000-{n:012x}"),
        timestamp,
        timestamp_ms: ts_ms,
        host: HostMetrics {
            cpu_percent: 5.0 + unit() * 50.0,
            ram_percent: 30.0 + unit() * 40.0,
            ram_used_mb: 2_000.0 + unit() * 1_000.0,
            disk_percent: 40.0 + unit(),
            uptime_seconds: Some(1_000_000.0 + n as f64 * 10.0),
        },
        container_count: 12,
        internet: InternetCheck {
            online: unit() > 0.01,
            ping_ms: Some(10.0 + unit() * 20.0),
        },
        worker_status: Some(200),
        cycle_duration_ms: 200 + (unit() * 300.0) as i64,
        services: (0..services)
            .map(|i| {
                let r = unit();
                let latency = (5.0 + i as f64 * 10.0) * (0.5 + unit());
                ServiceResult {
                    name: format!("svc-{i:02}"),
                    kind: ServiceKind::Http,
                    url: format!("http://10.0.0.{}:8080/health", i + 1),
                    outcome: if r < 0.01 {
                        CheckOutcome::from_http_status(500, latency)
                    } else {
                        CheckOutcome::healthy(Some(latency))
                    },
                }
            })
            .collect(),
    }
}

fn file_mib(path: &Path) -> f64 {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut wal = path.as_os_str().to_os_string();
    wal.push("-wal");
    (size(path) + size(Path::new(&wal))) as f64 / 1_048_576.0
}

/// MiB the rollup tables and their indexes take (SQLite's `dbstat`), when available.
fn rollup_mib(conn: &rusqlite::Connection) -> Option<f64> {
    conn.query_row(
        "SELECT SUM(pgsize) FROM dbstat WHERE name LIKE 'rollup%' OR name LIKE 'sqlite_autoindex_rollup%'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .ok()
    .map(|b| b as f64 / 1_048_576.0)
}

fn until_done(w: &mut Writer, now_ms: i64) -> Result<Maintenance, Box<dyn std::error::Error>> {
    let mut total = Maintenance::default();
    loop {
        let m = w.maintain(now_ms, Duration::from_millis(25))?;
        total.cycles_pruned += m.cycles_pruned;
        total.checks_pruned += m.checks_pruned;
        total.rollups_pruned += m.rollups_pruned;
        total.alerts_pruned += m.alerts_pruned;
        total.cycles_backfilled += m.cycles_backfilled;
        if !m.more {
            return Ok(total);
        }
    }
}

fn fresh_history(
    path: &Path,
    from_ms: i64,
    to_ms: i64,
    services: usize,
    interval_ms: i64,
) -> Result<Writer, Box<dyn std::error::Error>> {
    let mut w = Writer::open(path)?.with_retention(Retention::KEEP_ALL);
    let mut n = 0u64;
    let mut t = from_ms;
    let mut batch = Vec::new();
    while t < to_ms {
        batch.push(cycle(n, t, services));
        n += 1;
        t += interval_ms;
        if batch.len() == 360 {
            w.record_cycles(&batch)?;
            batch.clear();
        }
    }
    w.record_cycles(&batch)?;
    Ok(w)
}

/// The older tool's tables (SPEC §3.6), filled with `-05:00` text timestamps, no `ts_ms`.
fn older_history(
    path: &Path,
    from_ms: i64,
    to_ms: i64,
    services: usize,
    interval_ms: i64,
) -> Result<u64, Box<dyn std::error::Error>> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE monitoring_cycles (id TEXT PRIMARY KEY, timestamp_lima TEXT NOT NULL,
            cpu_percent REAL NOT NULL, ram_percent REAL NOT NULL, ram_used_mb REAL NOT NULL,
            disk_percent REAL NOT NULL, uptime_seconds REAL, container_count INTEGER NOT NULL,
            internet_status BOOLEAN NOT NULL, ping_ms REAL, worker_status INTEGER,
            cycle_duration_ms INTEGER);
         CREATE TABLE service_checks (id INTEGER PRIMARY KEY AUTOINCREMENT,
            cycle_id TEXT NOT NULL REFERENCES monitoring_cycles(id), service_name TEXT NOT NULL,
            service_url TEXT, status TEXT NOT NULL, status_code INTEGER, latency_ms REAL,
            error_message TEXT);
         CREATE INDEX idx_timestamp ON monitoring_cycles(timestamp_lima);
         CREATE INDEX idx_cycles_ts_id ON monitoring_cycles(timestamp_lima, id);
         CREATE INDEX idx_service_name ON service_checks(service_name);
         CREATE INDEX idx_cycle_id ON service_checks(cycle_id);
         CREATE INDEX idx_checks_composite ON service_checks(cycle_id, service_name, latency_ms);",
    )?;
    let tx = conn.transaction()?;
    let mut n = 0u64;
    {
        let mut ins = tx.prepare(
            "INSERT INTO monitoring_cycles VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        let mut chk = tx.prepare(
            "INSERT INTO service_checks (cycle_id, service_name, service_url, status, \
             status_code, latency_ms, error_message) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut t = from_ms;
        while t < to_ms {
            let c = cycle(n, t, services);
            ins.execute(rusqlite::params![
                c.id,
                c.timestamp,
                c.host.cpu_percent,
                c.host.ram_percent,
                c.host.ram_used_mb,
                c.host.disk_percent,
                c.host.uptime_seconds,
                c.container_count,
                c.internet.online,
                c.internet.ping_ms,
                c.worker_status,
                c.cycle_duration_ms,
            ])?;
            for s in &c.services {
                chk.execute(rusqlite::params![
                    c.id,
                    s.name,
                    s.url,
                    s.outcome.status.as_str(),
                    s.outcome.status_code,
                    s.outcome.latency_ms,
                    s.outcome.reason,
                ])?;
            }
            n += 1;
            t += interval_ms;
        }
    }
    tx.commit()?;
    Ok(n)
}

fn year(
    path: &Path,
    days: i64,
    services: usize,
    interval: i64,
    report_every: i64,
) -> Result<(), Box<dyn std::error::Error>> {
    let interval_ms = interval * 1000;
    let mut w = Writer::open(path)?.with_retention(Retention::default());
    let reader = rusqlite::Connection::open(path)?;
    let started = Instant::now();
    let mut n = 0u64;
    let mut t = START_MS;
    let mut total = Maintenance::default();
    let mut housekeeping = Duration::ZERO;
    println!("day\tfile_mib\trollup_mib\traw_cycles\tcycles_pruned\twall_s");
    for day in 1..=days {
        for _hour in 0..24 {
            let end = t + 3_600_000;
            let mut batch = Vec::with_capacity(400);
            while t < end {
                batch.push(cycle(n, t, services));
                n += 1;
                t += interval_ms;
            }
            w.record_cycles(&batch)?;
            let h = Instant::now();
            let m = until_done(&mut w, t)?;
            housekeeping += h.elapsed();
            total.cycles_pruned += m.cycles_pruned;
            total.rollups_pruned += m.rollups_pruned;
        }
        if day % report_every == 0 || day == days {
            let raw: i64 =
                reader.query_row("SELECT count(*) FROM monitoring_cycles", [], |r| r.get(0))?;
            println!(
                "{day}\t{:.1}\t{}\t{raw}\t{}\t{:.0}",
                file_mib(path),
                rollup_mib(&reader).map_or("?".to_owned(), |m| format!("{m:.1}")),
                total.cycles_pruned,
                started.elapsed().as_secs_f64()
            );
        }
    }
    println!(
        "{n} cycles x {services} services; housekeeping {:.1} s of {:.1} s; rollup rows pruned {}",
        housekeeping.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        total.rollups_pruned
    );
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

#[allow(clippy::too_many_arguments)]
fn latency(
    path: &Path,
    days: i64,
    services: usize,
    retention_days: u32,
    cycles: usize,
    every_ms: u64,
    maintain: bool,
    older: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let end_ms = START_MS + days * DAY_MS;
    let built = Instant::now();
    // An existing file is taken as the history (a copy of an earlier run's, to save time).
    let w = if path.exists() {
        Writer::open(path)?
    } else if older {
        older_history(path, START_MS, end_ms, services, 10_000)?;
        Writer::open(path)?
    } else {
        fresh_history(path, START_MS, end_ms, services, 10_000)?
    };
    let mut w = w.with_retention(Retention {
        raw_days: retention_days,
        ..Retention::default()
    });
    eprintln!(
        "history of {days} days built (and opened) in {:.1} s",
        built.elapsed().as_secs_f64()
    );

    let (tx, rx) = mpsc::channel::<(CycleRecord, Instant)>();
    let producer = std::thread::spawn(move || {
        let next = Instant::now();
        for k in 0..cycles {
            let due = next + Duration::from_millis(every_ms * k as u64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let c = cycle(
                10_000_000 + k as u64,
                end_ms + 10_000 * (k as i64 + 1),
                services,
            );
            if tx.send((c, Instant::now())).is_err() {
                return;
            }
        }
    });

    let mut waited = Vec::with_capacity(cycles);
    let mut writes = Vec::with_capacity(cycles);
    let mut total = Maintenance::default();
    let mut housekeeping = Duration::ZERO;
    let mut calls = Vec::new();
    // Calls that pruned raw rows, rollups, backfilled, gave pages back (or other work), ended.
    let mut kinds = [0u64; 5];
    let mut now_ms = end_ms;
    let started = Instant::now();
    let mut next = None;
    loop {
        let msg = match next.take() {
            Some(m) => Some(m),
            None => rx.recv_timeout(Duration::from_secs(1)).ok(),
        };
        let Some((c, sent)) = msg else { break };
        now_ms = now_ms.max(c.timestamp_ms);
        let write = Instant::now();
        w.record_cycle(&c, &[])?;
        writes.push(write.elapsed().as_secs_f64() * 1000.0);
        waited.push(sent.elapsed().as_secs_f64() * 1000.0);
        if maintain {
            loop {
                let h = Instant::now();
                let m = w.maintain(now_ms, MAINTAIN_BUDGET)?;
                housekeeping += h.elapsed();
                calls.push(h.elapsed().as_secs_f64() * 1000.0);
                kinds[if m.cycles_pruned > 0 {
                    0
                } else if m.rollups_pruned > 0 {
                    1
                } else if m.cycles_backfilled > 0 {
                    2
                } else if m.is_empty() && m.more {
                    3
                } else {
                    4
                }] += 1;
                total.cycles_pruned += m.cycles_pruned;
                total.cycles_backfilled += m.cycles_backfilled;
                if !m.more {
                    break;
                }
                if let Ok(msg) = rx.try_recv() {
                    next = Some(msg);
                    break;
                }
            }
        }
    }
    let _ = producer.join();
    let elapsed = started.elapsed().as_secs_f64();
    waited.sort_by(f64::total_cmp);
    writes.sort_by(f64::total_cmp);
    calls.sort_by(f64::total_cmp);
    println!(
        "housekeeping calls (one step each): {} calls {kinds:?} (raw, rollups, backfill, pages, last), p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
        calls.len(),
        percentile(&calls, 50.0),
        percentile(&calls, 99.0),
        calls.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "maintain={maintain} older={older} cycles={} every_ms={every_ms}: \
         send->written p50 {:.2} ms p99 {:.2} ms max {:.2} ms; write alone p50 {:.2} ms p99 {:.2} ms; \
         housekeeping {:.1} s of {elapsed:.1} s; pruned {} cycles, backfilled {} cycles",
        waited.len(),
        percentile(&waited, 50.0),
        percentile(&waited, 99.0),
        waited.last().copied().unwrap_or(f64::NAN),
        percentile(&writes, 50.0),
        percentile(&writes, 99.0),
        housekeeping.as_secs_f64(),
        total.cycles_pruned,
        total.cycles_backfilled
    );
    Ok(())
}

fn backfill(path: &Path, cycles: i64, services: usize) -> Result<(), Box<dyn std::error::Error>> {
    let end_ms = START_MS + cycles * 10_000;
    let t = Instant::now();
    let n = older_history(path, START_MS, end_ms, services, 10_000)?;
    println!(
        "older database: {n} cycles, {} checks, {:.0} MiB, built in {:.1} s",
        n * services as u64,
        file_mib(path),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let mut w = Writer::open(path)?.with_retention(Retention::KEEP_ALL);
    println!("upgrade (migrations) {:.1} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let m = until_done(&mut w, end_ms + 60_000)?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "backfill: {} cycles ({} check rows) in {secs:.1} s = {:.0} cycles/s, {:.0} check rows/s",
        m.cycles_backfilled,
        m.cycles_backfilled * services as u64,
        m.cycles_backfilled as f64 / secs,
        (m.cycles_backfilled * services as u64) as f64 / secs
    );
    let t = Instant::now();
    let mut w = w.with_retention(Retention::default());
    let m = until_done(&mut w, end_ms + 60_000)?;
    println!(
        "then pruning with the defaults: {} cycles, {} checks, {} rollup rows in {:.1} s; file {:.0} MiB",
        m.cycles_pruned,
        m.checks_pruned,
        m.rollups_pruned,
        t.elapsed().as_secs_f64(),
        file_mib(path)
    );
    Ok(())
}
