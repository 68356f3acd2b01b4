//! `heartbeat dashboard`: serves the read-only dashboard API on the configured address.

use std::process::ExitCode;

use anyhow::Context as _;
use hb_config::{EnvSource, Role};
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (overrides DASHBOARD_BIND; default 0.0.0.0:8000).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
}

pub fn run(args: Args, env: EnvSource) -> anyhow::Result<ExitCode> {
    let config = match super::load_config(&env, Role::Dashboard) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    crate::logging::init(config.log_format);
    let bind = args.bind.unwrap_or_else(|| config.dashboard_bind.clone());
    let settings = hb_dashboard::Settings {
        db_path: config.db_path.clone(),
        target_data_points: config.target_data_points,
        tz: config.tz.clone(),
        mask_errors: config.mask_errors,
        cors_origins: config.cors_origins.clone(),
    };
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .with_context(|| format!("cannot listen on '{bind}' (DASHBOARD_BIND / --bind)"))?;
        let local = listener.local_addr()?;
        tracing::info!(addr = %local, db = %settings.db_path.display(), "dashboard listening");
        let shutdown = CancellationToken::new();
        super::cancel_on_signal(shutdown.clone());
        let app = hb_dashboard::app(hb_dashboard::AppState::new(settings));
        hb_dashboard::serve(listener, app, async move { shutdown.cancelled().await }).await?;
        Ok(ExitCode::SUCCESS)
    })
}
