//! Fleet ingest benchmark: `--hosts` simulated agents, each with `--services` services and one
//! cycle every `--interval` seconds, ship to one PostgreSQL through the agent's own sink (one
//! session per host, one transaction per cycle, as a caught-up shipper does), for `--seconds`.
//! Prints one JSON line: cycles and checks shipped, checks per second sustained, how late the
//! hosts fell behind their schedule, and this process's CPU per 1,000 checks. The database's
//! CPU is measured by the caller (`bench/fleet.py`), from /proc.
//!
//!     bench-fleet --url postgres://… --hosts 100 --services 200 --interval 10 --seconds 60

use std::time::{Duration, Instant};

use clap::Parser;
use hb_store::{JournalBatch, JournalCheck, JournalCursor, JournalCycle};
use hb_store_postgres::{HostInfo, connect};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 100)]
    hosts: usize,
    #[arg(long, default_value_t = 200)]
    services: usize,
    #[arg(long, default_value_t = 10.0)]
    interval: f64,
    #[arg(long, default_value_t = 60)]
    seconds: u64,
}

/// This process's user + system CPU seconds (`/proc/self/stat`, in 10 ms ticks).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line: 11 and 12 counted from the state.
    (ticks(11) + ticks(12)) / 100.0
}

fn cycle(host: usize, n: i64, services: usize, now_ms: i64) -> JournalCycle {
    JournalCycle {
        seq: n,
        id: format!("bench-{host}-{n}-{now_ms}"),
        timestamp: format!("{now_ms}"),
        ts_ms: Some(now_ms),
        cpu_percent: 12.5,
        ram_percent: 40.0,
        ram_used_mb: 512.0,
        disk_percent: 70.0,
        uptime_seconds: Some(1000.0),
        container_count: 3,
        internet_status: true,
        ping_ms: Some(4.2),
        worker_status: Some(200),
        cycle_duration_ms: Some(25),
        checks: (0..services)
            .map(|s| JournalCheck {
                service_name: format!("svc-{s:03}"),
                service_url: Some(format!("http://svc-{s:03}.internal/health")),
                status: if s % 50 == 0 { "down" } else { "healthy" }.to_owned(),
                status_code: Some(200),
                latency_ms: Some(20.0 + (s % 7) as f64),
                error_message: None,
            })
            .collect(),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let interval = Duration::from_secs_f64(args.interval);
    let run_for = Duration::from_secs(args.seconds);
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for h in 0..args.hosts {
        let url = args.url.clone();
        let services = args.services;
        tasks.push(tokio::spawn(async move {
            let mut sink = connect(&url, "bench-fleet", Duration::from_secs(10)).await?;
            sink.migrate().await?;
            let host = HostInfo {
                name: format!("bench-host-{h:03}"),
                version: "bench".to_owned(),
                interval_seconds: interval.as_secs_f64(),
            };
            // Spread the hosts over the interval, as real agents are.
            let offset = interval.mul_f64(h as f64 / args.hosts as f64);
            tokio::time::sleep(offset).await;
            let begin = Instant::now();
            let (mut n, mut late_max) = (0i64, Duration::ZERO);
            while begin.elapsed() < run_for {
                let due = begin + interval.mul_f64(n as f64);
                let now = Instant::now();
                if due > now {
                    tokio::time::sleep(due - now).await;
                } else {
                    late_max = late_max.max(now - due);
                }
                n += 1;
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)?
                    .as_millis() as i64;
                let c = cycle(h, n, services, now_ms);
                let to = JournalCursor {
                    cycle_seq: n,
                    cycle_id: Some(c.id.clone()),
                    alert_seq: 0,
                };
                let batch = JournalBatch {
                    cycles: vec![c],
                    alerts: Vec::new(),
                    newest: None,
                    certificates: Vec::new(),
                };
                sink.ship(&host, &batch, &to, now_ms).await?;
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((n, late_max))
        }));
    }
    let (mut cycles, mut late_max) = (0i64, Duration::ZERO);
    for t in tasks {
        let (n, late) = t.await?.map_err(|e| e.to_string())?;
        cycles += n;
        late_max = late_max.max(late);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let checks = cycles as f64 * args.services as f64;
    let cpu = cpu_seconds() - cpu_before;
    println!(
        "{{\"hosts\": {}, \"services\": {}, \"interval_s\": {}, \"cycles\": {cycles}, \"checks\": {checks}, \"elapsed_s\": {elapsed:.1}, \"checks_per_s\": {:.0}, \"late_max_ms\": {}, \"client_cpu_s\": {cpu:.2}, \"client_cpu_ms_per_1000_checks\": {:.2}}}",
        args.hosts,
        args.services,
        args.interval,
        checks / elapsed,
        late_max.as_millis(),
        cpu * 1e6 / checks
    );
    Ok(())
}
