//! `heartbeat demo` end to end: one command starts the mock, the agent and the dashboard; a
//! simulated service flipped to down through the mock's API shows in the dashboard API and in
//! the mock's alert sink after the threshold, and its recovery follows. Left alone, the demo's
//! scripted outage produces a down alert and a recovery alert by itself.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{AgentProcess, heartbeat};

fn url_after<'a>(lines: &'a [String], label: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no '{label}' line in {lines:?}"))
}

async fn poll<T>(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A running demo and the two URLs it printed. Its output is drained all along (an unread pipe
/// fills and stops the demo at its next log line); a failing test prints the log's tail.
struct Demo {
    process: AgentProcess,
    dashboard: String,
    controller: String,
    dir: tempfile::TempDir,
    log: Log,
}

#[derive(Clone, Default)]
struct Log(std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<String>>>);

impl Log {
    const KEEP: usize = 300;

    fn drain(&self, from: impl std::io::Read + Send + 'static) {
        let log = self.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines().map_while(Result::ok) {
                if let Ok(mut l) = log.0.lock() {
                    if l.len() == Self::KEEP {
                        l.pop_front();
                    }
                    l.push_back(line);
                }
            }
        });
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        // Only the test's own handle prints: the draining threads never panic.
        if std::thread::panicking()
            && let Ok(l) = self.0.lock()
        {
            eprintln!("--- the demo's last {} log lines ---", l.len());
            for line in l.iter() {
                eprintln!("{line}");
            }
        }
    }
}

async fn start_demo() -> Demo {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = heartbeat();
    cmd.arg("demo")
        .current_dir(dir.path())
        .env("MOCK_PORT", "0")
        .env("DASHBOARD_BIND", "127.0.0.1:0")
        .env("LOOP_INTERVAL_SECONDS", "1")
        .env("SERVICE_TIMEOUT_SECONDS", "0.5")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn demo");
    let stdout = child.stdout.take().expect("stdout");
    let log = Log::default();
    log.drain(child.stderr.take().expect("stderr"));
    let process = AgentProcess { child };
    let (lines, stdout): (Vec<String>, _) = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stdout);
        let mut lines = Vec::new();
        for _ in 0..4 {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            lines.push(line.trim_end().to_owned());
        }
        (lines, reader)
    })
    .await
    .expect("join");
    // The rest of stdout (the scenario line) must be read too: a closed pipe fails the demo's
    // next print.
    log.drain(stdout);
    let dashboard = url_after(&lines, "dashboard:")
        .trim_end_matches('/')
        .to_owned();
    let controller = url_after(&lines, "controller:")
        .trim_end_matches('/')
        .to_owned();
    Demo {
        process,
        dashboard,
        controller,
        dir,
        log,
    }
}

async fn get_json(client: &reqwest::Client, url: String) -> Option<Value> {
    let r = client.get(url).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json::<Value>().await.ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_shows_a_flipped_service_in_the_dashboard_and_the_sink() {
    let Demo {
        process: demo,
        dashboard,
        controller,
        dir,
        log: _log,
    } = start_demo().await;
    let client = reqwest::Client::new();
    let get = |url: String| {
        let client = client.clone();
        async move { get_json(&client, url).await }
    };
    let status_of = |live: &Value, name: &str| {
        live["services"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == name))
            .map(|s| s["status"].as_str().unwrap_or("").to_owned())
    };

    // The dashboard serves the demo's cycles, with one service per simulated behaviour.
    let live = poll("the first cycles", Duration::from_secs(20), async || {
        get(format!("{dashboard}/api/live?range=live")).await
    })
    .await;
    for (name, status) in [
        ("healthy", "healthy"),
        ("error500", "error"),
        ("down", "down"),
        ("timeout", "timeout"),
    ] {
        assert_eq!(
            status_of(&live, name).as_deref(),
            Some(status),
            "{name}: {live}"
        );
    }
    // `down` refuses connections, as a stopped service does.
    let down_error = live["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "down"))
        .map(|s| s["error"].clone());
    assert_eq!(down_error, Some(json!("Connection refused")), "{live}");

    // Flip `healthy` to down through the mock's API.
    let r = client
        .post(format!("{controller}/api/config"))
        .json(&json!({"services": {"healthy": {"behavior": "down"}}}))
        .send()
        .await
        .expect("config");
    assert!(r.status().is_success());
    poll(
        "the dashboard to show healthy as down",
        Duration::from_secs(20),
        async || {
            let live = get(format!("{dashboard}/api/live?range=live")).await?;
            (status_of(&live, "healthy").as_deref() == Some("down")).then_some(())
        },
    )
    .await;
    let down_alert = poll(
        "the down alert in the sink",
        Duration::from_secs(20),
        async || {
            let alerts = get(format!("{controller}/api/alerts")).await?;
            alerts["alerts"]
                .as_array()?
                .iter()
                .find(|a| {
                    a["title"]
                        .as_str()
                        .is_some_and(|t| t.contains("healthy is down"))
                })
                .cloned()
        },
    )
    .await;
    assert!(
        down_alert["message"]
            .as_str()
            .is_some_and(|m| m.contains("**Service:** healthy"))
    );

    // Flip it back: the recovery alert follows.
    client
        .post(format!("{controller}/api/config"))
        .json(&json!({"services": {"healthy": {"behavior": "healthy"}}}))
        .send()
        .await
        .expect("config");
    poll(
        "the recovery alert in the sink",
        Duration::from_secs(20),
        async || {
            let alerts = get(format!("{controller}/api/alerts")).await?;
            alerts["alerts"]
                .as_array()?
                .iter()
                .any(|a| {
                    a["title"]
                        .as_str()
                        .is_some_and(|t| t.contains("healthy recovered"))
                })
                .then_some(())
        },
    )
    .await;
    // The dashboard's alert history has both, delivered.
    poll(
        "both deliveries in the dashboard",
        Duration::from_secs(20),
        async || {
            let history = get(format!("{dashboard}/api/alerts?limit=100")).await?;
            let delivered: Vec<String> = history["alerts"]
                .as_array()?
                .iter()
                .filter(|a| a["item"] == "healthy" && !a["delivered_at"].is_null())
                .filter_map(|a| a["new_status"].as_str().map(str::to_owned))
                .collect();
            (delivered.iter().any(|s| s == "down") && delivered.iter().any(|s| s == "healthy"))
                .then_some(())
        },
    )
    .await;

    let (status, stderr) = tokio::task::spawn_blocking(move || demo.stop())
        .await
        .expect("join");
    assert!(status.success(), "{stderr}");
    assert!(dir.path().join("data/demo/metrics.db").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_left_alone_alerts_a_scripted_outage_and_its_recovery() {
    let demo = start_demo().await;
    let client = reqwest::Client::new();
    // The default script: down about 20 s after start, back about 40 s later. The recovery
    // lands about 61 s in; the margin is for a loaded CI machine (a fresh clone once needed
    // more than 85 s while the other end-to-end tests ran beside it).
    let deadline = Duration::from_secs(150);
    let started = Instant::now();
    let sink_titles = poll(
        "a down and a recovery alert in the mock's sink",
        deadline,
        async || {
            let alerts = get_json(&client, format!("{}/api/alerts", demo.controller)).await?;
            let titles: Vec<String> = alerts["alerts"]
                .as_array()?
                .iter()
                .filter_map(|a| a["title"].as_str().map(str::to_owned))
                .collect();
            let down = titles.iter().position(|t| t.contains("scripted is down"))?;
            let back = titles
                .iter()
                .position(|t| t.contains("scripted recovered"))?;
            (down < back).then_some(titles)
        },
    )
    .await;
    let history = poll(
        "both alerts delivered in the dashboard's history",
        deadline.saturating_sub(started.elapsed()) + Duration::from_secs(10),
        async || {
            let history =
                get_json(&client, format!("{}/api/alerts?limit=100", demo.dashboard)).await?;
            let delivered: Vec<String> = history["alerts"]
                .as_array()?
                .iter()
                .filter(|a| a["item"] == "scripted" && !a["delivered_at"].is_null())
                .filter_map(|a| a["new_status"].as_str().map(str::to_owned))
                .collect();
            (delivered.iter().any(|s| s == "down") && delivered.iter().any(|s| s == "healthy"))
                .then_some(history)
        },
    )
    .await;
    let (status, stderr) = tokio::task::spawn_blocking(move || demo.process.stop())
        .await
        .expect("join");
    assert!(status.success(), "{stderr}\n{sink_titles:?}\n{history}");
}
