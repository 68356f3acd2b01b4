//! The agent under a low open-file limit: it raises the soft limit to the hard one at start,
//! and when the hard limit is still too low, the checks it cannot run are its own fault
//! (`unknown` with a reason saying so), never a service's failure or an alert.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{AgentProcess, Server, count, heartbeat, open_db, require, wait_for};

const SERVICES: usize = 500;

/// The agent checking `SERVICES` services on `server`, started through `prlimit` with the
/// given open-file limits.
fn limited_agent(db: &Path, server: &Server, soft: u64, hard: u64) -> Command {
    let base = heartbeat();
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--nofile={soft}:{hard}"))
        .arg("--")
        .arg(base.get_program())
        .arg("agent")
        .env_clear();
    for (k, v) in base.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    cmd.env("SQLITE_DB_PATH", db)
        .env("SERVICE_TIMEOUT_SECONDS", "3")
        .env("LOOP_INTERVAL_SECONDS", "4")
        .env("STATUS_CHANGE_THRESHOLD", "1")
        // Every service lives on the one test server: without this the per-target cap would
        // keep all but a few checks waiting, and the agent would never need 500 descriptors.
        .env("CHECKS_PER_TARGET", "0")
        .env("PING_URL", server.url("/ping"))
        .env("N8N_WEBHOOK_URL", server.url("/hook"))
        .env(
            "DOCKER_HOST",
            format!(
                "unix://{}/no-docker.sock",
                db.parent().map_or(Path::new("/"), |p| p).display()
            ),
        );
    for i in 0..SERVICES {
        cmd.env(
            format!("SERVICE_URL_s{i:03}"),
            server.url(&format!("/s{i}")),
        );
    }
    cmd
}

fn prlimit_available() -> bool {
    Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The hard open-file limit of this process (what a child may raise its soft limit to).
fn hard_nofile_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let hard = line.split_whitespace().nth(4)?;
    if hard == "unlimited" {
        Some(u64::MAX)
    } else {
        hard.parse().ok()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_low_soft_limit_is_raised_at_start() {
    if !require(prlimit_available(), "prlimit (util-linux) is not runnable") {
        return;
    }
    let hard = hard_nofile_limit().unwrap_or(0);
    if !require(
        hard >= 2 * SERVICES as u64,
        &format!(
            "the hard open-file limit here is {hard}, below {}",
            2 * SERVICES
        ),
    ) {
        return;
    }
    let server = Server::start(200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("metrics.db");
    let mut cmd = limited_agent(&db, &server, 256, hard.min(1 << 20));
    cmd.arg("--once");
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("raised the open-file limit") && stderr.contains("from=256"),
        "the raise is logged: {stderr}"
    );
    let healthy = count(
        &db,
        "SELECT count(*) FROM service_checks WHERE status = 'healthy'",
    );
    assert_eq!(healthy, SERVICES as i64, "every check ran: {stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn checks_the_agent_cannot_run_are_unknown_and_never_alert() {
    if !require(prlimit_available(), "prlimit (util-linux) is not runnable") {
        return;
    }
    let server = Server::start(200).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("metrics.db");
    let agent = AgentProcess::spawn(limited_agent(&db, &server, 256, 256));
    // Three cycles: with a threshold of 1, any check that failed as the service's fault in one
    // cycle after succeeding in another would have raised an alert.
    wait_for("three cycles", Duration::from_secs(40), || {
        count(&db, "SELECT count(*) FROM monitoring_cycles") >= 3
    })
    .await;
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");

    let faults = count(
        &db,
        "SELECT count(*) FROM service_checks WHERE status = 'unknown' \
         AND error_message LIKE 'Agent out of file descriptors%'",
    );
    assert!(faults > 0, "the limit was never hit: {log}");
    let others = count(
        &db,
        "SELECT count(*) FROM service_checks WHERE status NOT IN ('healthy', 'unknown')",
    );
    assert_eq!(
        others, 0,
        "a service was blamed for the agent's limit: {log}"
    );
    let alerts = count(&db, "SELECT count(*) FROM alerts");
    let stored: Vec<String> = {
        let conn = open_db(&db);
        let mut stmt = conn.prepare("SELECT title FROM alerts").expect("prepare");
        stmt.query_map([], |r| r.get(0))
            .expect("query")
            .map(|t| t.expect("row"))
            .collect()
    };
    assert_eq!(alerts, 0, "false alerts: {stored:?}");
    let posted = server
        .received()
        .into_iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posted, 0, "alerts were sent to the webhook");

    assert!(
        log.contains("the open-file limit is too low for 500 concurrent checks"),
        "start-up warning: {log}"
    );
    let warnings = log
        .lines()
        .filter(|l| l.contains("ran out of file descriptors"))
        .count();
    // A loaded machine can spread a cycle's burst enough for one cycle to get by: that ends
    // the episode, and the next cycle that runs out starts another, with its own warning.
    let recovered = log
        .lines()
        .filter(|l| l.contains("every check ran again"))
        .count();
    assert!(
        warnings >= 1 && (warnings == recovered || warnings == recovered + 1),
        "one warning per episode ({warnings} warnings, {recovered} recoveries): {log}"
    );
}
