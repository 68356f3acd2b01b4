//! `bench-targets`: N HTTP targets on 127.0.0.1, each on its own port, answering every request
//! after a fixed delay. Prints one `SERVICE_URL_<name>=<url>` line per target, then a `READY`
//! line, and serves until killed. Used by `bench/agent.py`; not part of the product.
//!
//! The runtime's timer works in whole milliseconds (a "20 ms" sleep lasts 20–22 ms), which would
//! blur the agent's measurement error, so the delays come from a dedicated timer thread that
//! sleeps with the operating system's precision (tens of microseconds). Every target also
//! records how long it really held each request (from the request being parsed to the response
//! being handed back): `GET /__held` on any target returns those hold times in microseconds (and
//! clears them). The benchmark compares the agent's measured latency with them, which isolates
//! the agent's own error.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::mpsc;
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

/// A wake-up request: fire `tx` at `at`. Ordered so the heap pops the earliest first.
struct Wake {
    at: Instant,
    seq: u64,
    tx: tokio::sync::oneshot::Sender<()>,
}

impl PartialEq for Wake {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Wake {}
impl PartialOrd for Wake {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Wake {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// The precise timer: a thread that waits on its channel until the earliest deadline and fires
/// every wake-up that is due.
fn spawn_timer() -> mpsc::Sender<(Instant, tokio::sync::oneshot::Sender<()>)> {
    let (tx, rx) = mpsc::channel::<(Instant, tokio::sync::oneshot::Sender<()>)>();
    std::thread::spawn(move || {
        let mut heap = BinaryHeap::new();
        let mut seq = 0u64;
        loop {
            let next = match heap.peek() {
                None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                Some(Wake { at, .. }) => {
                    rx.recv_timeout(at.saturating_duration_since(Instant::now()))
                }
            };
            match next {
                Ok((at, tx)) => {
                    seq += 1;
                    heap.push(Wake { at, seq, tx });
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            let now = Instant::now();
            while heap.peek().is_some_and(|w| w.at <= now) {
                if let Some(w) = heap.pop() {
                    let _ = w.tx.send(());
                }
            }
        }
    });
    tx
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
        let timer = Arc::new(Mutex::new(spawn_timer()));
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
                let timer = Arc::clone(&timer);
                async move {
                    let start = Instant::now();
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    let queued = timer.lock().map(|t| t.send((start + delay, tx)).is_ok());
                    if queued.unwrap_or(false) {
                        let _ = rx.await;
                    } else {
                        tokio::time::sleep(delay).await;
                    }
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
