//! Test fixtures: the binary with a clean environment, and small real HTTP servers on 127.0.0.1
//! whose behaviour a test switches while the agent runs.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;

/// The binary with an empty environment (plus PATH), so nothing from the machine leaks in.
pub fn heartbeat() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_heartbeat"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "info");
    cmd
}

/// A status code of 0 makes a server hang (accept, never answer).
pub const HANG: u16 = 0;

/// One request a server received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A real HTTP server answering every request with a switchable status and recording what it
/// received.
#[derive(Clone)]
pub struct Server {
    pub addr: SocketAddr,
    status: Arc<AtomicU16>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Server {
    pub async fn start(status: u16) -> Server {
        let state = Server {
            addr: "127.0.0.1:0".parse().expect("addr"),
            status: Arc::new(AtomicU16::new(status)),
            received: Arc::new(Mutex::new(Vec::new())),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new()
            .fallback(any(handle))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server { addr, ..state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// Bodies of the POST requests received, parsed as JSON.
    pub fn posted_json(&self) -> Vec<serde_json::Value> {
        self.received()
            .into_iter()
            .filter(|r| r.method == "POST")
            .filter_map(|r| serde_json::from_slice(&r.body).ok())
            .collect()
    }
}

async fn handle(
    State(server): State<Server>,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    server.received.lock().expect("lock").push(Received {
        method: method.to_string(),
        headers,
        body,
    });
    match server.status.load(Ordering::SeqCst) {
        HANG => std::future::pending().await,
        code => StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// Waits until `cond` holds, polling; panics with `what` after `timeout`.
pub async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A running agent process; killed when dropped.
pub struct AgentProcess {
    pub child: Child,
}

impl AgentProcess {
    pub fn spawn(mut cmd: Command) -> AgentProcess {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn heartbeat");
        AgentProcess { child }
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// SIGTERM, then the exit status and everything it logged.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        self.signal("TERM");
        let output = std::mem::replace(
            &mut self.child,
            Command::new("true").spawn().expect("placeholder"),
        )
        .wait_with_output()
        .expect("wait");
        (
            output.status,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A read-only connection to the agent's database.
pub fn open_db(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open db")
}

/// How many rows `sql` (a `SELECT count(*) …`) counts; 0 while the database does not exist.
pub fn count(path: &Path, sql: &str) -> i64 {
    if !path.exists() {
        return 0;
    }
    open_db(path).query_row(sql, [], |r| r.get(0)).unwrap_or(0)
}

pub use hb_testkit::require;

/// A running `heartbeat` server process whose stderr (JSON log lines) is collected in the
/// background, so a chatty server never blocks on a full pipe.
pub struct ServerProcess {
    pub process: AgentProcess,
    pub log: Arc<Mutex<String>>,
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// `heartbeat dashboard` on `db`, on a free loopback port.
    pub fn dashboard_on(db: &Path) -> ServerProcess {
        let mut cmd = heartbeat();
        cmd.args(["dashboard", "--bind", "127.0.0.1:0"])
            .env("SQLITE_DB_PATH", db);
        ServerProcess::spawn(cmd, "dashboard listening")
    }

    /// Spawns `cmd` with `LOG_FORMAT=json` and waits (up to 30 s) for a log line containing
    /// `ready` that carries the listening address in its `addr` field.
    pub fn spawn(mut cmd: Command, ready: &str) -> ServerProcess {
        use std::io::BufRead as _;
        let mut child = cmd
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn heartbeat");
        let stderr = child.stderr.take().expect("stderr");
        let process = AgentProcess { child };
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
        {
            let log = Arc::clone(&log);
            let ready = ready.to_owned();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stderr)
                    .lines()
                    .map_while(Result::ok)
                {
                    if line.contains(&ready)
                        && let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                        && let Some(addr) =
                            v["fields"]["addr"].as_str().and_then(|a| a.parse().ok())
                    {
                        let _ = tx.send(addr);
                    }
                    let mut log = log.lock().expect("lock");
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no '{ready}' line: {}", log.lock().expect("lock")));
        ServerProcess { process, log, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }
}

/// The resident memory of process `pid` in KiB (`VmRSS` of /proc/<pid>/status).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in {status}"))
}

/// A running agent whose stderr is collected as it is written, so a test can follow the log
/// while the agent runs (`AgentProcess` reads it only at exit); killed when dropped.
pub struct LoggedAgent {
    pub child: Child,
    log: Arc<Mutex<String>>,
}

impl LoggedAgent {
    pub fn spawn(mut cmd: Command) -> LoggedAgent {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn heartbeat");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().expect("lock");
                log.push_str(&line);
                log.push('\n');
            }
        });
        LoggedAgent { child, log }
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.lock().expect("lock").clone()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status and the whole log.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait");
        // The reader thread sees end-of-file once the process is gone.
        std::thread::sleep(Duration::from_millis(100));
        (exit, self.log())
    }
}

impl Drop for LoggedAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
