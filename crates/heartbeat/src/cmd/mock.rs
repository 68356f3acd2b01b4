//! `heartbeat mock`: runs the development mock (heartbeat receiver, simulated services, alert
//! sink, controller page) until SIGTERM/SIGINT.

use std::net::IpAddr;
use std::process::ExitCode;

use anyhow::Context as _;
use hb_config::{EnvSource, MockConfig, RoleConfig as _};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Port to listen on (overrides MOCK_PORT; default 8080).
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Address to listen on; use 0.0.0.0 inside a container.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub bind: IpAddr,
}

pub fn run(args: Args, env: EnvSource) -> anyhow::Result<ExitCode> {
    let config = match super::load_config::<MockConfig>(&env) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    crate::logging::init(config.log_format);
    let port = args.port.unwrap_or(config.mock_port);
    let secret_key = config.secret_key.as_ref().map(|s| s.expose().to_owned());
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let addr = std::net::SocketAddr::new(args.bind, port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on '{addr}' (MOCK_PORT / --port / --bind)"))?;
        let local = listener.local_addr()?;
        tracing::info!(addr = %local, "mock listening; controller page at http://{local}/");
        let state = hb_mock::MockState::new(secret_key);
        super::cancel_on_signal(state.shutdown_token());
        // Not configurable yet: the shared defaults until hb-config carries per-role settings.
        let limits = hb_mock::Limits::default();
        state
            .bind_service_ports(local.ip(), limits)
            .await
            .context("cannot bind the simulated services' own ports")?;
        for (name, addr) in state.service_addrs() {
            tracing::info!(service = %name, %addr, "simulated service on its own port");
        }
        hb_mock::serve_with(listener, state, limits, std::future::pending()).await?;
        tracing::info!("mock stopped");
        Ok(ExitCode::SUCCESS)
    })
}
