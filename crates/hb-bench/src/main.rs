//! `bench-targets`: N HTTP targets on 127.0.0.1, each on its own port, answering every request
//! after a fixed delay. Prints one `SERVICE_URL_<name>=<url>` line per target, then a `READY`
//! line, and serves until killed. Used by `bench/agent.py`; not part of the product.
//!
//! A timer never fires exactly on time, so every target records how long it really held each
//! request (from the request being parsed to the response being handed back): `GET /__held`
//! on any target returns those hold times in microseconds (and clears them). The benchmark
//! compares the agent's measured latency with them, which isolates the agent's own error.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{any, get};
use clap::Parser;

/// Local benchmark targets.
#[derive(Debug, Parser)]
struct Args {
    /// Number of targets (one port each).
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// Delay before the response headers, in milliseconds.
    #[arg(long, default_value_t = 20)]
    delay_ms: u64,
    /// Worker threads for the targets' runtime.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn raise_nofile_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    raise_nofile_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let delay = Duration::from_millis(args.delay_ms);
        let held: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&held);
        let app = Router::new()
            .route(
                "/__held",
                get(move || {
                    let held = Arc::clone(&held);
                    async move {
                        let list = held
                            .lock()
                            .map(|mut v| std::mem::take(&mut *v))
                            .unwrap_or_default();
                        let body: Vec<String> = list.iter().map(u64::to_string).collect();
                        format!("[{}]", body.join(","))
                    }
                }),
            )
            .fallback(any(move || {
                let record = Arc::clone(&record);
                async move {
                    let start = Instant::now();
                    tokio::time::sleep(delay).await;
                    let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
                    if let Ok(mut v) = record.lock() {
                        v.push(micros);
                    }
                    StatusCode::OK
                }
            }));
        let mut out = String::new();
        let mut servers = Vec::with_capacity(args.count);
        for i in 0..args.count {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let port = listener.local_addr()?.port();
            out.push_str(&format!(
                "SERVICE_URL_t{i:05}=http://127.0.0.1:{port}/health\n"
            ));
            let app = app.clone();
            servers.push(tokio::spawn(
                async move { axum::serve(listener, app).await },
            ));
        }
        println!("{out}READY");
        use std::io::Write as _;
        std::io::stdout().flush()?;
        for s in servers {
            let _ = s.await;
        }
        Ok(())
    })
}
