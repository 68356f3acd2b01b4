//! `heartbeat demo`: the mock, an agent watching the mock's simulated services, and the
//! dashboard, in one process on a database of their own. No configuration needed; every part
//! can be overridden with the usual variables.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use hb_agent::probes::docker::DockerProber;
use hb_agent::{RunOptions, run as run_agent};
use hb_config::{AgentConfig, DashboardConfig, EnvSource, MockConfig};
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds the scripted service stays healthy after start and after each recovery.
    #[arg(long, value_name = "SECS", default_value_t = hb_mock::scenario::DEFAULT_HEALTHY_FOR.as_secs())]
    pub outage_after: u64,
    /// Seconds the scripted service then stays down before it recovers.
    #[arg(long, value_name = "SECS", default_value_t = hb_mock::scenario::DEFAULT_DOWN_FOR.as_secs())]
    pub outage_for: u64,
    /// No scripted outage: services change only from the controller page.
    #[arg(long)]
    pub no_outage: bool,
}

/// The demo's own database: never the production default (`data/metrics.db`).
pub const DEMO_DB: &str = "data/demo/metrics.db";
/// The demo's heartbeat key (the mock checks it).
const DEMO_KEY: &str = "demo-secret";

/// Settings that make the demo lively; each yields to a variable set in the environment.
const DEFAULTS: &[(&str, &str)] = &[
    ("LOOP_INTERVAL_SECONDS", "3"),
    ("STATUS_CHANGE_THRESHOLD", "2"),
    // Longer than the mock's `slow` service (1.2 s), well inside the interval.
    ("SERVICE_TIMEOUT_SECONDS", "1.5"),
    ("SECRET_KEY", DEMO_KEY),
    ("SQLITE_DB_PATH", DEMO_DB),
    ("DASHBOARD_BIND", "127.0.0.1:8000"),
    ("DASHBOARD_MASK_ERRORS", "false"),
    // The mock's `slow` service answers after 1.2 s: the page marks it slow, still healthy.
    ("SERVICE_SLOW_MS", "1000"),
];

pub fn run(args: Args, env: EnvSource) -> anyhow::Result<ExitCode> {
    let mut env = env.with_defaults(DEFAULTS.iter().copied());
    let base = match super::load_config::<DashboardConfig>(&env) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let mock_config = match super::load_config::<MockConfig>(&env) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    crate::logging::init(base.log_format);
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let mock_addr = std::net::SocketAddr::from(([127, 0, 0, 1], mock_config.mock_port));
        let mock_listener = tokio::net::TcpListener::bind(mock_addr)
            .await
            .with_context(|| format!("cannot listen on '{mock_addr}' for the mock (MOCK_PORT)"))?;
        let mock_addr = mock_listener.local_addr()?;
        let mock_url = format!("http://{mock_addr}");
        let mock = hb_mock::MockState::new(
            mock_config
                .secret_key
                .as_ref()
                .map(|k| k.expose().to_owned()),
        );
        // Without it every bad simulated service is bad from its first (silent) observation,
        // and the demo would never alert unless the visitor flipped something.
        let scenario = (!args.no_outage).then(|| hb_mock::Scenario {
            service: hb_mock::scenario::DEFAULT_SCENARIO_SERVICE.to_owned(),
            healthy_for: Duration::from_secs(args.outage_after),
            down_for: Duration::from_secs(args.outage_for),
        });
        if let Some(s) = &scenario {
            mock.set_scenario(s.clone());
        }
        // Not configurable yet: the shared defaults until hb-config carries per-role settings.
        let limits = hb_serve::Limits::default();
        mock.bind_service_ports(mock_addr.ip(), limits)
            .await
            .context("cannot bind the simulated services' own ports")?;
        // Point the agent at the mock unless the user configured services of their own: each
        // service on its own port, where `down` refuses connections like a stopped service.
        if env.with_prefix("SERVICE_URL_").next().is_none() {
            for (name, addr) in mock.service_addrs() {
                env.set(format!("SERVICE_URL_{name}"), format!("http://{addr}/"));
            }
            let docker_host = env
                .get("DOCKER_HOST")
                .unwrap_or("unix:///var/run/docker.sock")
                .to_owned();
            let docker = DockerProber::new(&docker_host, Duration::from_secs(2));
            if let Some(names) = docker.running_names().await {
                let container = names.into_iter().find(|n| !n.is_empty());
                let container = container.unwrap_or_else(|| "heartbeat-demo".to_owned());
                env.set("SERVICE_URL_docker", format!("docker:{container}"));
            }
        }
        let env = env.with_defaults([
            ("HEARTBEAT_URL", format!("{mock_url}/api/heartbeat")),
            ("N8N_WEBHOOK_URL", format!("{mock_url}/api/alerts")),
            ("PING_URL", format!("{mock_url}/ping")),
        ]);
        let agent_config = match super::load_config::<AgentConfig>(&env) {
            Ok(c) => c,
            Err(code) => return Ok(code),
        };

        let bind = base.dashboard_bind.clone();
        let dash_listener = tokio::net::TcpListener::bind(&bind)
            .await
            .with_context(|| {
                format!("cannot listen on '{bind}' for the dashboard (DASHBOARD_BIND)")
            })?;
        let dash_addr = dash_listener.local_addr()?;

        println!("Heartbeat Monitor demo");
        println!("  dashboard:  http://{dash_addr}/");
        println!("  controller: {mock_url}/   (switch services and the receiver live)");
        println!(
            "  database:   {}   ({} services every {} s; Ctrl-C stops everything)",
            agent_config.db_path.display(),
            agent_config.services.len(),
            agent_config.loop_interval.as_secs_f64()
        );
        if let Some(s) = &scenario {
            println!(
                "  scenario:   '{}' goes down {} s after start and recovers {} s later, in a loop \
                 (changing it on the controller stops the script)",
                s.service,
                s.healthy_for.as_secs(),
                s.down_for.as_secs()
            );
        }

        let shutdown = CancellationToken::new();
        super::cancel_on_signal(shutdown.clone());

        let mock_task = {
            let stop = shutdown.clone();
            tokio::spawn(hb_mock::serve_with(
                mock_listener,
                mock,
                limits,
                async move {
                    stop.cancelled().await;
                },
            ))
        };
        let dash_task = {
            let stop = shutdown.clone();
            let app = hb_dashboard::app(super::dashboard::app_state(&base));
            tokio::spawn(hb_dashboard::serve_with(
                dash_listener,
                app,
                limits,
                async move {
                    stop.cancelled().await;
                },
            ))
        };
        let store = crate::stores::agent_store(&agent_config);
        let agent_result = run_agent(
            agent_config,
            store,
            RunOptions::default(),
            None,
            shutdown.clone(),
        )
        .await;
        // The agent returns on shutdown (or on a start-up error): stop the servers with it.
        shutdown.cancel();
        let (mock_result, dash_result) = tokio::join!(mock_task, dash_task);
        agent_result?;
        mock_result??;
        dash_result??;
        tracing::info!("demo stopped");
        Ok(ExitCode::SUCCESS)
    })
}
