//! Docker probe against a real engine (`HB_TEST_DOCKER_HOST`, started by
//! `scripts/docker-engine.sh up`) and against a fake API on a Unix socket for the socket's
//! absence, late appearance and silence.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use hb_agent::probes::DockerProber;
use hb_core::ServiceStatus;

/// The Debian CLI matches the Debian daemon the script starts.
const DOCKER_CLI: &str = "/usr/bin/docker";
const IMAGE: &str = "hb-test/busybox";
const TIMEOUT: Duration = Duration::from_secs(5);

/// Tests that start or stop containers run one at a time, so the running count is stable.
static ENGINE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The engine under test, or `None` (after saying why) when there is none.
fn engine() -> Option<String> {
    let host = match std::env::var("HB_TEST_DOCKER_HOST") {
        Ok(h) if !h.is_empty() => h,
        _ => {
            crate::require(
                false,
                "HB_TEST_DOCKER_HOST not set (run scripts/docker-engine.sh up)",
            );
            return None;
        }
    };
    let path = host.strip_prefix("unix://").unwrap_or(&host);
    if !Path::new(path).exists() {
        crate::require(
            false,
            &format!("HB_TEST_DOCKER_HOST: {path} is absent (run scripts/docker-engine.sh up)"),
        );
        return None;
    }
    Some(host)
}

fn docker(host: &str, args: &[&str]) -> String {
    let out = Command::new(DOCKER_CLI)
        .arg("-H")
        .arg(host)
        .args(args)
        .output()
        .expect("run the docker CLI");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A container of this test run; removed when dropped, whatever the test's outcome.
struct Container {
    host: String,
    name: String,
}

impl Container {
    fn run(host: &str, label: &str) -> Container {
        Container::run_with(host, label, &[])
    }

    /// `docker run` with `extra` options (a health check, say) before the image.
    fn run_with(host: &str, label: &str, extra: &[&str]) -> Container {
        let name = format!("hb-probe-{label}-{}", std::process::id());
        let c = Container {
            host: host.to_string(),
            name,
        };
        let mut args = vec![
            "run",
            "-d",
            "--init",
            "--network",
            "none",
            "--name",
            &c.name,
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[IMAGE, "sleep", "100000"]);
        docker(host, &args);
        c
    }

    /// `docker inspect --format <template>`, trimmed.
    fn inspect(&self, template: &str) -> String {
        docker(&self.host, &["inspect", "--format", template, &self.name])
            .trim()
            .to_owned()
    }

    /// Waits until the engine reports the health status `want`.
    async fn wait_for_health(&self, want: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.inspect("{{.State.Health.Status}}");
            if got == want {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the engine never reported health {want} (last: {got})"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new(DOCKER_CLI)
            .args(["-H", &self.host, "rm", "-f", &self.name])
            .output();
    }
}

#[tokio::test]
async fn running_container_is_healthy() {
    let Some(host) = engine() else { return };
    let _engine = ENGINE.lock().await;
    let c = Container::run(&host, "running");
    let o = DockerProber::new(&host, TIMEOUT).check(&c.name).await;
    assert_eq!(o.status, ServiceStatus::Healthy, "{o:?}");
    assert_eq!(o.reason, None);
}

#[tokio::test]
async fn exited_container_is_down_with_its_state() {
    let Some(host) = engine() else { return };
    let _engine = ENGINE.lock().await;
    let c = Container::run(&host, "exited");
    docker(&host, &["stop", &c.name]);
    let o = DockerProber::new(&host, TIMEOUT).check(&c.name).await;
    assert_eq!(o.status, ServiceStatus::Down, "{o:?}");
    // Issue 16 adds the exit code: tini (`--init`) exits 143 on the SIGTERM of `docker stop`.
    assert_eq!(c.inspect("{{.State.ExitCode}}"), "143");
    assert_eq!(o.reason.as_deref(), Some("Container state: exited (143)"));
}

#[tokio::test]
async fn killed_container_is_down_with_exit_code_137() {
    let Some(host) = engine() else { return };
    let _engine = ENGINE.lock().await;
    let c = Container::run(&host, "killed");
    docker(&host, &["kill", &c.name]);
    docker(&host, &["wait", &c.name]);
    // SIGKILL, not the OOM killer: the engine says so, and so must the reason. (An OOM kill
    // cannot be provoked here without memory cgroups; its text is a unit test of the prober.)
    assert_eq!(c.inspect("{{.State.OOMKilled}}"), "false");
    let o = DockerProber::new(&host, TIMEOUT).check(&c.name).await;
    assert_eq!(o.status, ServiceStatus::Down, "{o:?}");
    assert_eq!(o.reason.as_deref(), Some("Container state: exited (137)"));
}

#[tokio::test]
async fn passing_health_check_is_healthy() {
    let Some(host) = engine() else { return };
    let _engine = ENGINE.lock().await;
    let c = Container::run_with(
        &host,
        "health-ok",
        &["--health-cmd", "true", "--health-interval", "1s"],
    );
    c.wait_for_health("healthy").await;
    let o = DockerProber::new(&host, TIMEOUT).check(&c.name).await;
    assert_eq!(o.status, ServiceStatus::Healthy, "{o:?}");
    assert_eq!(o.reason, None);
}

#[tokio::test]
async fn failing_health_check_is_an_error() {
    let Some(host) = engine() else { return };
    let _engine = ENGINE.lock().await;
    let c = Container::run_with(
        &host,
        "health-bad",
        &[
            "--health-cmd",
            "false",
            "--health-interval",
            "1s",
            "--health-retries",
            "1",
        ],
    );
    c.wait_for_health("unhealthy").await;
    assert_eq!(c.inspect("{{.State.Status}}"), "running");
    let o = DockerProber::new(&host, TIMEOUT).check(&c.name).await;
    assert_eq!(o.status, ServiceStatus::Error, "{o:?}");
    assert_eq!(o.reason.as_deref(), Some("Container health: unhealthy"));
    assert_eq!(o.status_code, None);
}

#[tokio::test]
async fn starting_health_check_counts_as_healthy() {
    let Some(host) = engine() else { return };
    let _engine = ENGINE.lock().await;
    // The first probe runs one interval after the start: an hour away, so `starting` holds.
    let c = Container::run_with(
        &host,
        "health-starting",
        &["--health-cmd", "false", "--health-interval", "1h"],
    );
    assert_eq!(c.inspect("{{.State.Health.Status}}"), "starting");
    let o = DockerProber::new(&host, TIMEOUT).check(&c.name).await;
    assert_eq!(c.inspect("{{.State.Health.Status}}"), "starting");
    assert_eq!(o.status, ServiceStatus::Healthy, "{o:?}");
    assert_eq!(o.reason, None);
}

#[tokio::test]
async fn missing_container_is_down_not_found() {
    let Some(host) = engine() else { return };
    let name = format!("hb-probe-never-created-{}", std::process::id());
    let o = DockerProber::new(&host, TIMEOUT).check(&name).await;
    assert_eq!(o.status, ServiceStatus::Down, "{o:?}");
    assert_eq!(o.reason.as_deref(), Some("Container not found"));
}

#[tokio::test]
async fn running_count_matches_docker_ps() {
    let Some(host) = engine() else { return };
    let _engine = ENGINE.lock().await;
    let _c = Container::run(&host, "count");
    let prober = DockerProber::new(&host, TIMEOUT);
    let ps_count = |host: &str| docker(host, &["ps", "-q"]).lines().count() as i64;
    // Other users of the engine may start or stop containers meanwhile: compare only when
    // `docker ps` agrees with itself before and after.
    for _ in 0..5 {
        let before = ps_count(&host);
        let ours = prober.running_count().await;
        let after = ps_count(&host);
        if before == after {
            assert!(before >= 1);
            assert_eq!(ours, before);
            return;
        }
    }
    panic!("the engine's container count never settled");
}

#[tokio::test]
async fn absent_socket_is_unknown_and_count_is_minus_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = format!("unix://{}", dir.path().join("docker.sock").display());
    let prober = DockerProber::new(&host, TIMEOUT);
    let o = prober.check("web").await;
    assert_eq!(o.status, ServiceStatus::Unknown, "{o:?}");
    assert_eq!(o.reason.as_deref(), Some("Docker Socket Unavailable"));
    assert_eq!(prober.running_count().await, -1);
}

/// A minimal Engine API: two running containers, every name inspected is running.
fn fake_api() -> Router {
    Router::new()
        .route(
            "/version",
            get(|| async { r#"{"ApiVersion":"1.41","Version":"fake"}"# }),
        )
        .route(
            "/containers/json",
            get(|| async { axum::Json(serde_json::json!([{"Id": "a"}, {"Id": "b"}])) }),
        )
        .route(
            "/containers/{name}/json",
            get(|| async {
                axum::Json(
                    serde_json::json!({"Id": "x", "State": {"Status": "running", "Running": true}}),
                )
            }),
        )
}

fn socket_in(dir: &tempfile::TempDir) -> (PathBuf, String) {
    let path = dir.path().join("docker.sock");
    let host = format!("unix://{}", path.display());
    (path, host)
}

#[tokio::test]
async fn prober_recovers_when_the_socket_appears_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, host) = socket_in(&dir);
    let prober = DockerProber::new(&host, TIMEOUT);
    assert_eq!(prober.check("web").await.status, ServiceStatus::Unknown);
    assert_eq!(prober.running_count().await, -1);

    let listener = tokio::net::UnixListener::bind(&path).expect("bind the socket");
    tokio::spawn(async move { axum::serve(listener, fake_api()).await });

    let o = prober.check("web").await;
    assert_eq!(o.status, ServiceStatus::Healthy, "{o:?}");
    assert_eq!(prober.running_count().await, 2);
}

#[tokio::test]
async fn silent_api_is_a_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, host) = socket_in(&dir);
    let listener = tokio::net::UnixListener::bind(&path).expect("bind the socket");
    // Accepts and holds every connection, never answering.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let prober = DockerProber::new(&host, Duration::from_millis(300));
    let o = prober.check("web").await;
    assert_eq!(o.status, ServiceStatus::Timeout, "{o:?}");
    assert_eq!(o.reason.as_deref(), Some("Timeout"));
    assert_eq!(prober.running_count().await, -1);
}
