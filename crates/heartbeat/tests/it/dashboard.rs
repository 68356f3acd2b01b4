//! `heartbeat dashboard` on a database another program wrote: Python's `sqlite3` writes a WAL
//! database in the original tool's schema and closes it cleanly (no `-wal`/`-shm` left), the
//! directory is `0555`, and the dashboard runs as an unprivileged user, so SQLite cannot create
//! the WAL files. It must answer from the file, then follow a writer that appears.

use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// The original tool's tables, as its Python code creates them.
const SCHEMA: &str = "
CREATE TABLE monitoring_cycles (id TEXT PRIMARY KEY, timestamp_lima TEXT NOT NULL,
  cpu_percent REAL NOT NULL, ram_percent REAL NOT NULL, ram_used_mb REAL NOT NULL,
  disk_percent REAL NOT NULL, uptime_seconds REAL, container_count INTEGER NOT NULL,
  internet_status BOOLEAN NOT NULL, ping_ms REAL, worker_status INTEGER, cycle_duration_ms INTEGER);
CREATE TABLE service_checks (id INTEGER PRIMARY KEY AUTOINCREMENT,
  cycle_id TEXT NOT NULL REFERENCES monitoring_cycles(id), service_name TEXT NOT NULL,
  service_url TEXT, status TEXT NOT NULL, status_code INTEGER, latency_ms REAL, error_message TEXT);
CREATE INDEX idx_cycles_ts ON monitoring_cycles(timestamp_lima);
CREATE INDEX idx_checks_cycle ON service_checks(cycle_id);
";

/// Inserts cycles given as JSON `[[n, ts_ms, cpu, ping|null, worker|null, api_latency], ...]`
/// with Lima offsets, as the original tool wrote them. `argv`: db path, schema (or ""), cycles,
/// and "keep" to stay connected until stdin closes (a running writer).
const PY_WRITE: &str = r#"
import datetime, json, sqlite3, sys
path, schema, cycles, mode = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
conn = sqlite3.connect(path)
assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
if schema:
    conn.executescript(schema)
lima = datetime.timezone(datetime.timedelta(hours=-5))
for n, ts_ms, cpu, ping, worker, api in cycles:
    cid = "00000000-0000-4000-8000-%012d" % n
    ts = datetime.datetime.fromtimestamp(ts_ms / 1000, tz=lima).isoformat()
    conn.execute("INSERT INTO monitoring_cycles VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                 (cid, ts, cpu, 20.0, 1000.0, 30.0, 86400.0, 3, ping is not None, ping, worker, 100))
    conn.execute("INSERT INTO service_checks (cycle_id, service_name, service_url, status,"
                 " status_code, latency_ms, error_message) VALUES (?,?,?,?,?,?,?)",
                 (cid, "api", "http://api.local/health", "healthy", 200, api, None))
conn.commit()
if mode == "keep":
    print("written", flush=True)
    sys.stdin.read()
conn.close()
"#;

fn python_write(db: &Path, schema: &str, cycles: &Value, keep: bool) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg(PY_WRITE)
        .arg(db)
        .arg(schema)
        .arg(cycles.to_string())
        .arg(if keep { "keep" } else { "close" });
    cmd
}

/// Whether the test may switch to another user. Tests run as root here and in CI; under
/// `CI=true` anything else is a failure, elsewhere the test is skipped with the reason.
fn can_switch_user() -> bool {
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let setpriv = Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let reason = match (root, setpriv) {
        (true, true) => return true,
        (false, _) => "the test must run as root to start the dashboard as uid 65534",
        (true, false) => "setpriv (util-linux) is not installed",
    };
    crate::common::require(false, reason)
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The dashboard under `setpriv` as uid/gid 65534; killed when dropped.
struct Dashboard {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Dashboard {
    fn start(db: &Path) -> Dashboard {
        let mut setpriv = Command::new("setpriv");
        setpriv
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_heartbeat"))
            .args(["dashboard", "--bind", "127.0.0.1:0"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .env("LOG_FORMAT", "json")
            .env("SQLITE_DB_PATH", db)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = setpriv.spawn().expect("spawn setpriv heartbeat dashboard");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().expect("log").push(line.clone());
                let _ = tx.send(line);
            }
        });
        // The dashboard binds port 0 and logs the address: read it instead of guessing a port.
        let addr = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no 'dashboard listening' line: {:?}", log));
            let Ok(j) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if j["fields"]["message"] == "dashboard listening" {
                break j["fields"]["addr"].as_str().expect("addr").to_owned();
            }
        };
        Dashboard {
            child,
            base: format!("http://{addr}"),
            log,
        }
    }

    fn logged(&self, message: &str) -> bool {
        self.log.lock().expect("log").iter().any(|l| {
            serde_json::from_str::<Value>(l).is_ok_and(|j| j["fields"]["message"] == message)
        })
    }

    fn log_text(&self) -> String {
        self.log.lock().expect("log").join("\n")
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn read_only_directory_without_writer_on_a_python_database_then_a_writer_appears() {
    if !can_switch_user() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    chmod(dir.path(), 0o755); // uid 65534 must reach the data directory
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    let db = data.join("metrics.db");

    // Four cycles 10 s apart ending 10 s ago: cpu 10..40; ping 10, 20, offline, 40; worker
    // 200, 200, no answer, 500; api latency 10..40.
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let cycles = serde_json::json!([
        [1, now_ms - 40_000, 10.0, 10.0, 200, 10.0],
        [2, now_ms - 30_000, 20.0, 20.0, 200, 20.0],
        [3, now_ms - 20_000, 30.0, null, null, 30.0],
        [4, now_ms - 10_000, 40.0, 40.0, 500, 40.0],
    ]);
    let out = python_write(&db, SCHEMA, &cycles, false)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for sidecar in ["metrics.db-wal", "metrics.db-shm"] {
        assert!(
            !data.join(sidecar).exists(),
            "{sidecar} left by a clean close"
        );
    }
    chmod(&db, 0o644);
    chmod(&data, 0o555);

    let dash = Dashboard::start(&db);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let live = async || -> (u16, Value) {
        let r = client
            .get(format!("{}/api/live?range=live", dash.base))
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.expect("json"))
    };

    let (status, j) = live().await;
    assert_eq!(status, 200, "{j}\n{}", dash.log_text());
    assert_eq!(j["system"]["cpu"], 40.0);
    assert_eq!(
        j["network"]["uptime_counts"],
        serde_json::json!({"success": 3, "failure": 1})
    );
    assert_eq!(j["monitor"]["uptime"]["live"], 50.0);
    assert_eq!(j["services"][0]["name"], "api");
    assert_eq!(j["services"][0]["stats"]["success"], 4);
    assert_eq!(j["services"][0]["stats"]["avg"], 25.0);
    assert!(
        dash.logged("no writer and no -wal/-shm files: reading the database immutable"),
        "{}",
        dash.log_text()
    );
    assert!(
        !data.join("metrics.db-shm").exists(),
        "the dashboard created nothing"
    );

    // A writer appears (Python again, as root) and keeps its connection: the new cycle exists
    // only in its WAL, which an immutable connection would never read.
    let mut writer = python_write(
        &db,
        "",
        &serde_json::json!([[5, now_ms, 50.0, 50.0, 200, 50.0]]),
        true,
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .spawn()
    .expect("python3 writer");
    let mut ready = String::new();
    BufReader::new(writer.stdout.take().expect("stdout"))
        .read_line(&mut ready)
        .expect("writer output");
    assert_eq!(ready.trim(), "written");
    assert!(data.join("metrics.db-wal").exists());

    let (status, j) = live().await;
    assert_eq!(status, 200, "{j}\n{}", dash.log_text());
    assert_eq!(j["system"]["cpu"], 50.0, "the writer's cycle is seen");
    assert_eq!(
        j["network"]["uptime_counts"],
        serde_json::json!({"success": 4, "failure": 1})
    );
    assert_eq!(j["monitor"]["uptime"]["live"], 60.0);
    assert_eq!(j["services"][0]["stats"]["avg"], 30.0);
    assert!(
        dash.logged("a writer appeared: reading the database with normal read-only connections"),
        "{}",
        dash.log_text()
    );

    // The writer exits cleanly: history stays readable, with its cycle.
    let mut stdin = writer.stdin.take().expect("stdin");
    stdin.flush().expect("flush");
    drop(stdin);
    assert!(writer.wait().expect("wait").success());
    let (status, j) = live().await;
    assert_eq!(status, 200, "{j}\n{}", dash.log_text());
    assert_eq!(j["system"]["cpu"], 50.0);
    drop(dash);
    chmod(&data, 0o755);
}
