//! `bench-heartbeats`: an open-loop heartbeat load on `heartbeat receiver` at a fixed rate, over
//! keep-alive connections, keys rotated over a fleet (the keys `bench/receiver.py` configures).
//! Prints one JSON line: the rate reached, latency percentiles from each request's send, how
//! late the sends ran behind their schedule (growing lateness means the receiver does not
//! sustain the rate), and the answers by status. Used by `bench/receiver.py`; not part of the
//! product.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Open-loop heartbeat load.
#[derive(Debug, Parser)]
struct Args {
    /// The receiver's address.
    #[arg(long, default_value = "127.0.0.1:18200")]
    addr: String,
    /// Heartbeats per second, in total.
    #[arg(long, default_value_t = 5_000)]
    rate: u32,
    /// How long to send.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Keep-alive connections sharing the rate.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// Agents (keys) to rotate over.
    #[arg(long, default_value_t = 1_000)]
    agents: u32,
    /// Services per heartbeat.
    #[arg(long, default_value_t = 10)]
    services: u32,
}

fn key(i: u32) -> String {
    format!("bench-key-{i:05}-0123456789abcdef")
}

fn body(services: u32) -> String {
    let list: Vec<String> = (0..services)
        .map(|j| format!(r#""svc{j:02}": {{"status": "healthy"}}"#))
        .collect();
    format!(r#"{{"services": {{{}}}}}"#, list.join(", "))
}

/// One sample: latency from the send, lateness of the send behind its schedule, status.
type Sample = (Duration, Duration, u16);

async fn connection(args: std::sync::Arc<Args>, index: u32, start: Instant) -> Vec<Sample> {
    let Ok(mut stream) = TcpStream::connect(&args.addr).await else {
        eprintln!("connection {index}: cannot connect to {}", args.addr);
        return Vec::new();
    };
    let _ = stream.set_nodelay(true);
    let payload = body(args.services);
    let period = Duration::from_secs_f64(f64::from(args.connections) / f64::from(args.rate));
    // Connections start spread over one period, so the total rate is even.
    let offset = period.mul_f64(f64::from(index) / f64::from(args.connections));
    let end = start + Duration::from_secs(args.seconds);
    let mut samples = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut n: u64 = 0;
    loop {
        let due = start + offset + period.mul_f64(n as f64);
        if due >= end {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let agent = (index + n as u32 * args.connections) % args.agents;
        n += 1;
        let request = format!(
            "POST /api/heartbeat HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
            args.addr,
            key(agent),
            payload.len()
        );
        let sent = Instant::now();
        if stream.write_all(request.as_bytes()).await.is_err() {
            break;
        }
        let mut filled = 0;
        let status = loop {
            let Ok(read) = stream.read(&mut buf[filled..]).await else {
                return samples;
            };
            if read == 0 {
                return samples;
            }
            filled += read;
            let text = String::from_utf8_lossy(&buf[..filled]);
            if let Some(head_end) = text.find("\r\n\r\n") {
                let length: usize = text[..head_end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                if filled >= head_end + 4 + length {
                    break text
                        .split_whitespace()
                        .nth(1)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                }
            }
        };
        samples.push((sent.elapsed(), sent.saturating_duration_since(due), status));
    }
    samples
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = std::sync::Arc::new(Args::parse());
    let start = Instant::now() + Duration::from_millis(100);
    let tasks: Vec<_> = (0..args.connections)
        .map(|i| tokio::spawn(connection(std::sync::Arc::clone(&args), i, start)))
        .collect();
    let mut samples = Vec::new();
    for t in tasks {
        if let Ok(s) = t.await {
            samples.extend(s);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut latency: Vec<Duration> = samples.iter().map(|s| s.0).collect();
    let mut late: Vec<Duration> = samples.iter().map(|s| s.1).collect();
    latency.sort();
    late.sort();
    let mut codes: BTreeMap<u16, u64> = BTreeMap::new();
    for s in &samples {
        *codes.entry(s.2).or_default() += 1;
    }
    let codes: Vec<String> = codes.iter().map(|(c, n)| format!("\"{c}\": {n}")).collect();
    println!(
        "{{\"target_rate\": {}, \"sent\": {}, \"rate\": {:.1}, \"p50_ms\": {:.3}, \"p90_ms\": {:.3}, \
         \"p99_ms\": {:.3}, \"max_ms\": {:.3}, \"late_p99_ms\": {:.3}, \"late_max_ms\": {:.3}, \
         \"codes\": {{{}}}}}",
        args.rate,
        samples.len(),
        samples.len() as f64 / elapsed,
        pct(&latency, 50.0),
        pct(&latency, 90.0),
        pct(&latency, 99.0),
        pct(&latency, 100.0),
        pct(&late, 99.0),
        pct(&late, 100.0),
        codes.join(", ")
    );
}
