//! `heartbeat gen-db` (hidden, development): writes a deterministic synthetic database through
//! the real writer, for tests and benchmarks.

use std::path::PathBuf;
use std::process::ExitCode;

use hb_core::{CheckOutcome, CycleRecord, HostMetrics, InternetCheck, ServiceKind, ServiceResult};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Database file to create (must not exist).
    #[arg(long, value_name = "PATH")]
    pub path: PathBuf,
    /// Days of history, ending at the current time.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Number of services (three quarters http, the rest docker).
    #[arg(long, default_value_t = 20)]
    pub services: u32,
    /// Seconds between cycles.
    #[arg(long, default_value_t = 10)]
    pub interval: u32,
    /// Seed of the pseudo-random content.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Cycles per transaction.
    #[arg(long, default_value_t = 2000)]
    pub batch: usize,
    /// Seconds before now that the history ends (an agent that stopped: stale data).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub ended_ago: u64,
    /// Seconds after now that the history ends (for a benchmark that measures minutes later
    /// and wants the newest minutes still to hold cycles).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 0,
        conflicts_with = "ended_ago"
    )]
    pub ends_in: u64,
}

/// xorshift64*: small, deterministic, good enough for synthetic data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.path.exists() {
        anyhow::bail!(
            "'{}' already exists; gen-db only creates new databases",
            args.path.display()
        );
    }
    anyhow::ensure!(args.interval > 0, "--interval must be at least 1");
    let mut writer = hb_store_sqlite::Writer::open(&args.path)?;
    let interval_ms = i64::from(args.interval) * 1000;
    let ended_ago_ms = i64::try_from(args.ended_ago.saturating_mul(1000)).unwrap_or(i64::MAX);
    let ends_in_ms = i64::try_from(args.ends_in.saturating_mul(1000)).unwrap_or(i64::MAX);
    let now_ms = jiff::Timestamp::now()
        .as_millisecond()
        .saturating_sub(ended_ago_ms)
        .saturating_add(ends_in_ms);
    let end_ms = now_ms.div_euclid(interval_ms) * interval_ms;
    let count = i64::from(args.days) * 86_400_000 / interval_ms;
    let mut rng = Rng(args.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let http_count = (args.services * 3).div_ceil(4);
    let services: Vec<(String, ServiceKind, String, f64)> = (0..args.services)
        .map(|i| {
            let kind = if i < http_count {
                ServiceKind::Http
            } else {
                ServiceKind::Docker
            };
            let name = format!("svc-{i:02}");
            let url = match kind {
                ServiceKind::Http => format!("http://10.0.0.{}:8080/health", i + 1),
                ServiceKind::Docker => format!("docker:{name}"),
                ServiceKind::Tcp => format!("tcp://10.0.0.{}:5432", i + 1),
            };
            (name, kind, url, 5.0 + f64::from(i) * 10.0)
        })
        .collect();
    let started = std::time::Instant::now();
    let mut batch = Vec::with_capacity(args.batch);
    for n in 0..count {
        let ts_ms = end_ms - (count - 1 - n) * interval_ms;
        let timestamp = jiff::Timestamp::from_millisecond(ts_ms)?
            .strftime("%Y-%m-%dT%H:%M:%S%.3f+00:00")
            .to_string();
        let online = rng.unit() > 0.01;
        let worker = match rng.unit() {
            x if x < 0.005 => None,
            x if x < 0.015 => Some(220),
            _ => Some(200),
        };
        let results = services
            .iter()
            .map(|(name, kind, url, base)| {
                let r = rng.unit();
                let latency = base * (0.5 + rng.unit()) + rng.unit() * 5.0;
                let outcome = if r < 0.005 {
                    CheckOutcome::timeout()
                } else if r < 0.01 {
                    CheckOutcome::from_http_status(500, latency)
                } else if r < 0.012 {
                    CheckOutcome::down("connection refused")
                } else {
                    CheckOutcome::healthy(Some(latency))
                };
                ServiceResult {
                    name: name.clone(),
                    kind: *kind,
                    url: url.clone(),
                    outcome,
                }
            })
            .collect();
        batch.push(CycleRecord {
            id: format!("{:08x}-0000-4000-8000-{:012x}", args.seed & 0xffff_ffff, n),
            timestamp,
            timestamp_ms: ts_ms,
            host: HostMetrics {
                cpu_percent: 5.0 + rng.unit() * 50.0,
                ram_percent: 30.0 + rng.unit() * 40.0,
                ram_used_mb: 2_000.0 + rng.unit() * 1_000.0,
                disk_percent: 40.0 + rng.unit(),
                uptime_seconds: Some(1_000_000.0 + (n * i64::from(args.interval)) as f64),
            },
            container_count: 12,
            internet: InternetCheck {
                online,
                ping_ms: online.then(|| 10.0 + rng.unit() * 20.0),
            },
            worker_status: worker,
            cycle_duration_ms: 200 + (rng.unit() * 300.0) as i64,
            services: results,
        });
        if batch.len() >= args.batch {
            writer.record_cycles(&batch)?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        writer.record_cycles(&batch)?;
    }
    println!(
        "wrote {count} cycles x {} services to {} in {:.1} s",
        args.services,
        args.path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
