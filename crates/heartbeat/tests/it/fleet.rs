//! Fleet shipping (issue 12) against a real PostgreSQL: Debian's `postgresql` package, a
//! throw-away cluster made with `initdb` in a temporary folder and started with `pg_ctl` on
//! 127.0.0.1 and a private socket directory (never the system cluster), stopped at the end.
//! Real agents ship to it; every cycle must be there exactly once, in order, also through
//! PostgreSQL stopped, PostgreSQL and the agent killed with SIGKILL, a wrong password and a
//! database that is not ours.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::agent::{agent_cmd, db_in};
use crate::common::{LoggedAgent, Server, ServerProcess, heartbeat, open_db, wait_for};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
pub(crate) const PASSWORD: &str = "fleet-pa55word";

/// A private PostgreSQL cluster, removed with the value.
pub(crate) struct Pg {
    dir: tempfile::TempDir,
    port: u16,
    /// More server options (`-c name=value ...`).
    extra: String,
}

impl Pg {
    /// `None` (or a failure under `CI=true`) when the PostgreSQL 15 binaries are not installed.
    pub(crate) fn start() -> Option<Pg> {
        Pg::start_with(|_| String::new())
    }

    /// [`Pg::start`] with more server options, made from the cluster's folder before it starts
    /// (files there belong to the server's user).
    pub(crate) fn start_with(extra: impl FnOnce(&Path) -> String) -> Option<Pg> {
        if !hb_testkit::require(
            Path::new(PG_BIN).join("initdb").exists(),
            "PostgreSQL 15 is not installed (apt-get install postgresql)",
        ) {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let extra = extra(dir.path());
        let pg = Pg { dir, port, extra };
        if is_root() {
            // initdb refuses to run as root: the cluster belongs to the postgres user.
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(pg.dir.path())
                .status()
                .expect("chown");
            assert!(status.success());
        }
        pg.as_owner(
            "initdb",
            &[
                "-D",
                &pg.data().display().to_string(),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ],
        );
        pg.start_again();
        pg.psql(
            "postgres",
            &format!("CREATE ROLE hb LOGIN PASSWORD '{PASSWORD}'"),
        );
        pg.psql("postgres", "CREATE DATABASE fleet OWNER hb");
        Some(pg)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn as_owner(&self, tool: &str, args: &[&str]) -> String {
        let bin = Path::new(PG_BIN).join(tool);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(bin);
            c
        } else {
            Command::new(bin)
        };
        let out = cmd.args(args).output().expect("run a PostgreSQL tool");
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub(crate) fn start_again(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off {}",
            self.port,
            self.dir.path().display(),
            self.extra
        );
        let log = self.dir.path().join("server.log").display().to_string();
        self.as_owner(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        );
    }

    pub(crate) fn stop(&self) {
        self.as_owner(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
    }

    /// SIGKILL to the postmaster and every backend: no shutdown code runs.
    fn kill9(&self) {
        let pid_file = std::fs::read_to_string(self.data().join("postmaster.pid")).expect("pid");
        let pid = pid_file.lines().next().expect("pid line").trim().to_owned();
        let _ = Command::new("pkill").args(["-9", "-P", &pid]).status();
        let _ = Command::new("kill").args(["-9", &pid]).status();
        std::thread::sleep(Duration::from_millis(300));
        let _ = std::fs::remove_file(self.data().join("postmaster.pid"));
    }

    /// `psql` as the superuser over the private socket; the rows, `|`-separated.
    pub(crate) fn psql(&self, db: &str, sql: &str) -> String {
        self.try_psql(db, sql)
            .unwrap_or_else(|e| panic!("psql {sql}: {e}"))
    }

    /// [`Pg::psql`], or its error (a table the agent has not created yet, the server down).
    pub(crate) fn try_psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(Path::new(PG_BIN).join("psql"))
            .args(["-h", &self.dir.path().display().to_string()])
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("psql");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Runs the psql script `file` as the superuser in `db`, with `-v name=value` variables.
    pub(crate) fn psql_file(&self, db: &str, file: &Path, vars: &[(&str, &str)]) -> String {
        let mut cmd = Command::new(Path::new(PG_BIN).join("psql"));
        cmd.args(["-h", &self.dir.path().display().to_string()])
            .args(["-p", &self.port.to_string(), "-U", "postgres", "-d", db])
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f"])
            .arg(file);
        for (k, v) in vars {
            cmd.arg("-v").arg(format!("{k}={v}"));
        }
        let out = cmd.output().expect("psql");
        assert!(
            out.status.success(),
            "psql -f {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    pub(crate) fn url(&self, password: &str) -> String {
        self.url_as("hb", password)
    }

    /// The fleet database's URL for another role.
    pub(crate) fn url_as(&self, role: &str, password: &str) -> String {
        format!("postgres://{role}:{password}@127.0.0.1:{}/fleet", self.port)
    }

    /// The server's log so far.
    pub(crate) fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The ids of `host`'s cycles in the fleet database, by journal position.
    /// Empty while the agent has not created the tables yet or the server is down.
    pub(crate) fn cycle_ids(&self, host: &str) -> Vec<String> {
        let rows = self
            .try_psql(
                "fleet",
                &format!("SELECT id FROM monitoring_cycles WHERE host = '{host}' ORDER BY seq"),
            )
            .unwrap_or_default();
        rows.lines().map(str::to_owned).collect()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        if self.data().join("postmaster.pid").exists() {
            let _ = Command::new(if is_root() { "runuser" } else { "true" })
                .args(["-u", "postgres", "--"])
                .arg(Path::new(PG_BIN).join("pg_ctl"))
                .args([
                    "-D",
                    &self.data().display().to_string(),
                    "-m",
                    "immediate",
                    "stop",
                ])
                .output();
            if !is_root() {
                let _ = Command::new(Path::new(PG_BIN).join("pg_ctl"))
                    .args([
                        "-D",
                        &self.data().display().to_string(),
                        "-m",
                        "immediate",
                        "stop",
                    ])
                    .output();
            }
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

pub(crate) fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Local cycle ids, in write order (none while the agent has not created its tables).
pub(crate) fn local_ids(db: &Path) -> Vec<String> {
    if !db.exists() {
        return Vec::new();
    }
    let conn = open_db(db);
    let Ok(mut stmt) = conn.prepare("SELECT id FROM monitoring_cycles ORDER BY rowid") else {
        return Vec::new();
    };
    stmt.query_map([], |r| r.get(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

/// An agent of `host` shipping to `url`, checking two services of `target`.
pub(crate) fn fleet_agent(db: &Path, host: &str, url: &str, target: &Server) -> Command {
    let mut cmd = agent_cmd(
        db,
        "0.5",
        &[("web", target.url("/web")), ("api", target.url("/api"))],
    );
    cmd.env("FLEET_DATABASE_URL", url)
        .env("HOST_NAME", host)
        .env("PING_URL", target.url("/ping"));
    cmd
}

/// Waits until the fleet database holds exactly the local journal of `host` (while the agent
/// keeps writing, that moment comes between two cycles).
pub(crate) async fn wait_caught_up(
    pg: &Pg,
    host: &str,
    db: &Path,
    at_least: usize,
    within: Duration,
) {
    wait_for(&format!("{host} caught up"), within, || {
        let local = local_ids(db);
        local.len() >= at_least && pg.cycle_ids(host) == local
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn three_agents_ship_every_cycle_once_in_order() {
    let Some(pg) = Pg::start() else { return };
    let target = Server::start(200).await;
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("tmp")).collect();
    let hosts = ["web-1", "db.internal", "home_server"];
    // Started together on an empty database: the migration must not race.
    let agents: Vec<LoggedAgent> = hosts
        .iter()
        .zip(&dirs)
        .map(|(host, dir)| {
            LoggedAgent::spawn(fleet_agent(&db_in(dir), host, &pg.url(PASSWORD), &target))
        })
        .collect();
    for (host, dir) in hosts.iter().zip(&dirs) {
        wait_caught_up(&pg, host, &db_in(dir), 6, Duration::from_secs(60)).await;
    }
    let mut logs = Vec::new();
    for a in agents {
        let (status, log) = a.stop();
        assert!(status.success(), "{log}");
        assert!(!log.contains(PASSWORD), "the password was logged: {log}");
        logs.push(log);
    }
    // Shipped up to the last moment it was caught up; the cycles after it go at the next start.
    for (host, dir) in hosts.iter().zip(&dirs) {
        let local = local_ids(&db_in(dir));
        let shipped = pg.cycle_ids(host);
        assert!(
            shipped.len() >= 6 && local.starts_with(&shipped),
            "{host}: {} shipped, a prefix of the {} local",
            shipped.len(),
            local.len()
        );
    }
    assert_eq!(
        pg.psql("fleet", "SELECT count(*) FROM heartbeat_migrations"),
        "3"
    );
    assert_rollups_exact(&pg);
    assert_eq!(
        pg.psql(
            "fleet",
            "SELECT string_agg(name, ',' ORDER BY name) FROM hosts"
        ),
        "db.internal,home_server,web-1"
    );
    let interval = pg.psql("fleet", "SELECT DISTINCT interval_seconds FROM hosts");
    assert_eq!(interval, "0.5");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_stopped_for_30_s_then_the_backlog_ships_once() {
    let Some(pg) = Pg::start() else { return };
    let target = Server::start(200).await;
    let dir = tempfile::tempdir().expect("tmp");
    let db = db_in(&dir);
    let agent = LoggedAgent::spawn(fleet_agent(&db, "h1", &pg.url(PASSWORD), &target));
    wait_caught_up(&pg, "h1", &db, 3, Duration::from_secs(30)).await;
    pg.stop();
    let before = local_ids(&db).len();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let during = local_ids(&db).len();
    assert!(
        during >= before + 50,
        "cycles go on locally: {before} -> {during}"
    );
    // The lag shows on the agent's own dashboard.
    let dash = ServerProcess::dashboard_on(&db);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let lag = || async {
        let health: serde_json::Value = reqwest::get(dash.url("/health"))
            .await
            .expect("health")
            .json()
            .await
            .expect("json");
        assert_eq!(health["fleet"][0]["host"], "h1", "{health}");
        health["fleet"][0]["lag_seconds"].as_f64().expect("lag")
    };
    let behind = lag().await;
    assert!(behind >= 25.0, "the lag during the outage: {behind}");
    let metrics = reqwest::get(dash.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("heartbeat_fleet_lag_seconds{host=\"h1\"}"),
        "{metrics}"
    );
    pg.start_again();
    wait_caught_up(&pg, "h1", &db, during, Duration::from_secs(60)).await;
    let after = lag().await;
    assert!(after < 10.0, "the lag after catching up: {after}");
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    let stopped = log.matches("fleet shipping stopped").count();
    assert_eq!(stopped, 1, "one warning when shipping stops: {log}");
    assert!(log.contains("fleet shipping caught up"), "{log}");
    let shipped = pg.cycle_ids("h1");
    assert!(local_ids(&db).starts_with(&shipped));
    assert_shipped_exactly_once_prefix(&pg, "h1", &db);
}

/// [`assert_shipped_exactly_once`] for a journal that may have grown after the last shipment.
fn assert_shipped_exactly_once_prefix(pg: &Pg, host: &str, db: &Path) {
    let shipped = pg.cycle_ids(host);
    let local = local_ids(db);
    assert!(local.starts_with(&shipped), "{host}: shipped in order");
    let dup_checks = pg.psql(
        "fleet",
        &format!(
            "SELECT count(*) FROM (SELECT cycle_id, service_name FROM service_checks \
             WHERE host = '{host}' GROUP BY 1, 2 HAVING count(*) > 1) d"
        ),
    );
    assert_eq!(dup_checks, "0", "{host}: a service row shipped twice");
    let per_cycle = pg.psql(
        "fleet",
        &format!(
            "SELECT count(*) FROM monitoring_cycles c WHERE host = '{host}' AND \
             (SELECT count(*) FROM service_checks s WHERE s.cycle_id = c.id) != 2"
        ),
    );
    assert_eq!(
        per_cycle, "0",
        "{host}: every cycle has its two service rows"
    );
}

/// The per-host rollups equal the aggregates of the shipped raw rows, in every tier, block and
/// service: nothing counted twice (replays), nothing missing (kills).
fn assert_rollups_exact(pg: &Pg) {
    let services = pg.psql(
        "fleet",
        "SELECT count(*) FROM (
           SELECT c.host, t.tier, (c.ts_ms / 1000 / t.tier) * t.tier AS start_s, s.service_name,
                  count(*) AS n, count(*) FILTER (WHERE s.status = 'healthy') AS healthy,
                  count(*) FILTER (WHERE s.status = 'error') AS error,
                  count(s.latency_ms) AS lat_n, sum(s.latency_ms) AS lat_sum,
                  min(s.latency_ms) AS lat_min, max(s.latency_ms) AS lat_max
             FROM monitoring_cycles c JOIN service_checks s ON s.cycle_id = c.id
                  CROSS JOIN unnest(ARRAY[60, 360, 3600, 86400]) AS t(tier)
            WHERE c.ts_ms IS NOT NULL GROUP BY 1, 2, 3, 4) a
         FULL JOIN rollup_services r
           ON (r.host, r.tier_s, r.start_s, r.service_name) = (a.host, a.tier, a.start_s, a.service_name)
         WHERE a.n IS DISTINCT FROM r.n OR a.healthy IS DISTINCT FROM r.healthy
            OR a.error IS DISTINCT FROM r.error OR a.lat_n IS DISTINCT FROM r.lat_n
            OR abs(coalesce(a.lat_sum, 0) - r.lat_sum) > 1e-6 * greatest(1, abs(r.lat_sum))
            OR a.lat_min IS DISTINCT FROM r.lat_min OR a.lat_max IS DISTINCT FROM r.lat_max
            OR r.n IS NULL OR a.n IS NULL",
    );
    assert_eq!(services, "0", "service rollups differ from the raw rows");
    let cycles = pg.psql(
        "fleet",
        "SELECT count(*) FROM (
           SELECT c.host, t.tier, (c.ts_ms / 1000 / t.tier) * t.tier AS start_s, count(*) AS n,
                  sum(c.cpu_percent) AS cpu_sum, count(c.ping_ms) AS ping_n,
                  count(*) FILTER (WHERE c.internet_status) AS inet_up,
                  max(c.cycle_duration_ms) AS dur_max
             FROM monitoring_cycles c CROSS JOIN unnest(ARRAY[60, 360, 3600, 86400]) AS t(tier)
            WHERE c.ts_ms IS NOT NULL GROUP BY 1, 2, 3) a
         FULL JOIN rollup_cycles r ON (r.host, r.tier_s, r.start_s) = (a.host, a.tier, a.start_s)
         WHERE a.n IS DISTINCT FROM r.n OR a.ping_n IS DISTINCT FROM r.ping_n
            OR a.inet_up IS DISTINCT FROM r.inet_up OR a.dur_max IS DISTINCT FROM r.dur_max
            OR abs(a.cpu_sum - r.cpu_sum) > 1e-6 * greatest(1, abs(r.cpu_sum))
            OR r.n IS NULL OR a.n IS NULL",
    );
    assert_eq!(cycles, "0", "cycle rollups differ from the raw rows");
    let totals = pg.psql(
        "fleet",
        "SELECT count(*) FROM rollup_cycles c LEFT JOIN (
           SELECT host, tier_s, start_s, sum(n) AS n, sum(healthy) AS healthy
             FROM rollup_services GROUP BY 1, 2, 3) s USING (host, tier_s, start_s)
         WHERE c.checks IS DISTINCT FROM coalesce(s.n, 0)
            OR c.healthy_checks IS DISTINCT FROM coalesce(s.healthy, 0)",
    );
    assert_eq!(
        totals, "0",
        "a cycle block's check totals differ from its services'"
    );
    let blocks = pg.psql(
        "fleet",
        "SELECT count(*) FROM rollup_services WHERE tier_s = 60",
    );
    assert_ne!(blocks, "0", "there are rollups to compare");
}

/// Waits for the one warning that shipping stopped.
async fn wait_for_shipping_stopped(agent: &LoggedAgent) {
    wait_for("the warning", Duration::from_secs(30), || {
        agent.log().contains("fleet shipping stopped")
    })
    .await;
}

/// A local journal with a backlog: `heartbeat gen-db` writes `days` of cycles at 10 s.
fn backlog_db(db: &Path, days: &str) {
    std::fs::create_dir_all(db.parent().expect("parent")).expect("mkdir");
    let out = heartbeat()
        .args(["gen-db", "--path"])
        .arg(db)
        .args(["--days", days, "--services", "2", "--interval", "10"])
        .output()
        .expect("gen-db");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_of_postgres_or_of_the_agent_mid_backlog_loses_and_duplicates_nothing() {
    let Some(pg) = Pg::start() else { return };
    let target = Server::start(200).await;
    let dir = tempfile::tempdir().expect("tmp");
    let db = db_in(&dir);
    // About 26,000 cycles: many batches.
    backlog_db(&db, "3");
    let total = local_ids(&db).len();

    let agent = LoggedAgent::spawn(fleet_agent(&db, "h1", &pg.url(PASSWORD), &target));
    let partly = |pg: &Pg, over: usize| {
        let n: usize = pg
            .try_psql("fleet", "SELECT count(*) FROM monitoring_cycles")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        n > over
    };
    wait_for("the backlog started", Duration::from_secs(60), || {
        partly(&pg, 1_000)
    })
    .await;
    pg.kill9();
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.start_again();
    wait_for("shipping goes on", Duration::from_secs(60), || {
        partly(&pg, 8_000)
    })
    .await;
    // Now the agent, in the middle of its backlog.
    agent.kill9();
    let shipped_at_kill = pg.cycle_ids("h1").len();
    assert!(
        shipped_at_kill < total,
        "killed before the end ({shipped_at_kill} of {total})"
    );
    let agent = LoggedAgent::spawn(fleet_agent(&db, "h1", &pg.url(PASSWORD), &target));
    wait_caught_up(&pg, "h1", &db, total, Duration::from_secs(120)).await;
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert_shipped_exactly_once_prefix(&pg, "h1", &db);
    let dup_cycles = pg.psql(
        "fleet",
        "SELECT count(*) - count(DISTINCT id) FROM monitoring_cycles",
    );
    assert_eq!(dup_cycles, "0");
    assert_rollups_exact(&pg);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_password_is_named_redacted_and_retried_while_monitoring_goes_on() {
    let Some(pg) = Pg::start() else { return };
    let target = Server::start(200).await;
    let dir = tempfile::tempdir().expect("tmp");
    let db = db_in(&dir);
    let wrong = "not-the-pa55word";
    let agent = LoggedAgent::spawn(fleet_agent(&db, "h1", &pg.url(wrong), &target));
    wait_for_shipping_stopped(&agent).await;
    let log = agent.log();
    let line = log
        .lines()
        .find(|l| l.contains("fleet shipping stopped"))
        .expect("line");
    assert!(line.contains("FLEET_DATABASE_URL"), "{line}");
    assert!(line.contains("postgres://hb:***@127.0.0.1"), "{line}");
    assert!(line.contains("password authentication failed"), "{line}");
    assert!(!log.contains(wrong), "the password was logged: {log}");
    // Monitoring goes on.
    wait_for("cycles go on", Duration::from_secs(30), || {
        local_ids(&db).len() >= 4
    })
    .await;
    // The operator fixes the password on the server: the next retry ships the backlog.
    pg.psql("postgres", &format!("ALTER ROLE hb PASSWORD '{wrong}'"));
    let local = local_ids(&db).len();
    wait_caught_up(&pg, "h1", &db, local, Duration::from_secs(90)).await;
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert_eq!(log.matches("fleet shipping stopped").count(), 1, "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_that_is_not_ours_gets_nothing_written() {
    let Some(pg) = Pg::start() else { return };
    pg.psql(
        "fleet",
        "CREATE TABLE customers (id integer PRIMARY KEY, name text)",
    );
    pg.psql("fleet", "ALTER TABLE customers OWNER TO hb");
    let target = Server::start(200).await;
    let dir = tempfile::tempdir().expect("tmp");
    let db = db_in(&dir);
    let agent = LoggedAgent::spawn(fleet_agent(&db, "h1", &pg.url(PASSWORD), &target));
    wait_for_shipping_stopped(&agent).await;
    wait_for("cycles go on", Duration::from_secs(30), || {
        local_ids(&db).len() >= 3
    })
    .await;
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("not Heartbeat Monitor's"), "{log}");
    assert!(log.contains("customers"), "{log}");
    let tables = pg.psql(
        "fleet",
        "SELECT string_agg(table_name, ',') FROM information_schema.tables WHERE table_schema = 'public'",
    );
    assert_eq!(tables, "customers", "nothing of ours was created");
}

#[test]
fn bad_fleet_settings_stop_start_up_naming_the_variable() {
    let table = [
        (
            "FLEET_DATABASE_URL",
            "mysql://hb:s3cret@db/fleet",
            "FLEET_DATABASE_URL",
        ),
        (
            "FLEET_DATABASE_URL",
            "postgres://hb:s3cret@/fleet",
            "FLEET_DATABASE_URL",
        ),
        (
            "FLEET_DATABASE_URL",
            "postgres://hb:s3cret@db/fleet?sslmode=sometimes",
            "sslmode=sometimes is not one of",
        ),
        ("HOST_NAME", "my host", "HOST_NAME"),
        ("HOST_NAME", &"x".repeat(65), "HOST_NAME"),
    ];
    for (var, value, named) in table {
        let dir = tempfile::tempdir().expect("tmp");
        let mut cmd = agent_cmd(
            &db_in(&dir),
            "1",
            &[("web", "http://127.0.0.1:9/".to_owned())],
        );
        cmd.env(var, value);
        if var == "HOST_NAME" {
            cmd.env(
                "FLEET_DATABASE_URL",
                "postgres://hb:s3cret@127.0.0.1:9/fleet",
            );
        }
        let out = cmd.output().expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}={value}: {stderr}");
        assert!(stderr.contains(named), "{stderr}");
        assert!(!stderr.contains("s3cret"), "the password leaked: {stderr}");
    }
    // heartbeat config shows the URL redacted.
    let out = heartbeat()
        .args(["config", "--role", "agent"])
        .env("SERVICE_URL_web", "http://127.0.0.1:9/")
        .env(
            "FLEET_DATABASE_URL",
            "postgres://hb:s3cret@db.example:5432/fleet",
        )
        .env("HOST_NAME", "web-1")
        .output()
        .expect("config");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("postgres://hb:***@db.example:5432/fleet"),
        "{stdout}"
    );
    assert!(stdout.contains("web-1"), "{stdout}");
    assert!(!stdout.contains("s3cret"));
}

/// TLS to PostgreSQL: a server with `ssl=on` and a certificate from a test CA. `require`
/// encrypts without checking it; `verify-full` checks it against the system's roots (here the
/// test CA through `SSL_CERT_FILE`) and refuses it when it is not trusted.
#[tokio::test(flavor = "multi_thread")]
async fn tls_to_postgres_by_sslmode() {
    let ca = crate::certs::test_ca();
    let Some(pg) = Pg::start_with(|dir| {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        let cert = params.signed_by(&key, &ca.issuer).expect("cert");
        let (crt, pem_key) = (dir.join("server.crt"), dir.join("server.key"));
        std::fs::write(&crt, cert.pem()).expect("crt");
        std::fs::write(&pem_key, key.serialize_pem()).expect("key");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&pem_key, std::fs::Permissions::from_mode(0o600)).expect("mode");
        format!(
            "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            crt.display(),
            pem_key.display()
        )
    }) else {
        return;
    };
    let target = Server::start(200).await;
    let dir = tempfile::tempdir().expect("tmp");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).expect("ca");
    let url = |mode: &str| {
        format!(
            "postgres://hb:{PASSWORD}@localhost:{}/fleet?sslmode={mode}",
            pg.port
        )
    };
    let encrypted = |host: &str| {
        pg.psql(
            "fleet",
            &format!(
                "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                 WHERE a.application_name = 'heartbeat-agent {host}'"
            ),
        )
    };

    // require: encrypted, the (here untrusted) certificate not checked.
    let db = dir.path().join("require.db");
    let agent = LoggedAgent::spawn(fleet_agent(&db, "tls-require", &url("require"), &target));
    wait_caught_up(&pg, "tls-require", &db, 2, Duration::from_secs(30)).await;
    assert_eq!(encrypted("tls-require"), "t");
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");

    // verify-full with the CA trusted.
    let db = dir.path().join("verify.db");
    let mut cmd = fleet_agent(&db, "tls-verify", &url("verify-full"), &target);
    cmd.env("SSL_CERT_FILE", &ca_file);
    let agent = LoggedAgent::spawn(cmd);
    wait_caught_up(&pg, "tls-verify", &db, 2, Duration::from_secs(30)).await;
    assert_eq!(encrypted("tls-verify"), "t");
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");

    // verify-full without it: refused, named, retried; monitoring goes on.
    let db = dir.path().join("untrusted.db");
    let agent = LoggedAgent::spawn(fleet_agent(
        &db,
        "tls-untrusted",
        &url("verify-full"),
        &target,
    ));
    wait_for_shipping_stopped(&agent).await;
    wait_for("cycles go on", Duration::from_secs(30), || {
        local_ids(&db).len() >= 2
    })
    .await;
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("fleet shipping stopped"))
        .expect("line");
    assert!(
        line.contains("FLEET_DATABASE_URL (postgres://hb:***@localhost"),
        "{line}"
    );
    assert!(line.to_lowercase().contains("certificate"), "{line}");
    assert!(pg.cycle_ids("tls-untrusted").is_empty());
}

/// Two agents given one HOST_NAME: the second is refused before it writes anything, and the
/// first keeps shipping. When the operator releases the name (the first agent's local database
/// was replaced), the second claims it and ships its whole journal.
#[tokio::test(flavor = "multi_thread")]
async fn one_host_name_belongs_to_one_journal() {
    let Some(pg) = Pg::start() else { return };
    let target = Server::start(200).await;
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let (db_a, db_b) = (db_in(&dir_a), db_in(&dir_b));
    let a = LoggedAgent::spawn(fleet_agent(&db_a, "web-1", &pg.url(PASSWORD), &target));
    wait_caught_up(&pg, "web-1", &db_a, 2, Duration::from_secs(30)).await;
    let b = LoggedAgent::spawn(fleet_agent(&db_b, "web-1", &pg.url(PASSWORD), &target));
    wait_for_shipping_stopped(&b).await;
    assert!(
        b.log()
            .contains("HOST_NAME web-1 is already shipped to the fleet database by another agent"),
        "{}",
        b.log()
    );
    wait_caught_up(&pg, "web-1", &db_a, 4, Duration::from_secs(30)).await;
    let shipped = pg.cycle_ids("web-1");
    assert!(
        local_ids(&db_b).iter().all(|id| !shipped.contains(id)),
        "nothing of the second journal was shipped"
    );
    let (status, log) = a.stop();
    assert!(status.success(), "{log}");
    pg.psql(
        "fleet",
        "UPDATE hosts SET journal_id = NULL WHERE name = 'web-1'",
    );
    wait_for(
        "the second journal shipped",
        Duration::from_secs(60),
        || {
            let shipped = pg.cycle_ids("web-1");
            let mine = local_ids(&db_b);
            mine.len() >= 3 && mine.iter().all(|id| shipped.contains(id))
        },
    )
    .await;
    let (status, log) = b.stop();
    assert!(status.success(), "{log}");
    let dup = pg.psql(
        "fleet",
        "SELECT count(*) - count(DISTINCT id) FROM monitoring_cycles",
    );
    assert_eq!(dup, "0");
}
