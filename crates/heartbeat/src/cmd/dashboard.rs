//! `heartbeat dashboard`: serves the read-only dashboard API on the configured address.

use std::process::ExitCode;

use anyhow::Context as _;
use hb_config::{DashboardConfig, EnvSource};
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (overrides DASHBOARD_BIND; default 0.0.0.0:8000).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
}

pub fn run(args: Args, env: EnvSource) -> anyhow::Result<ExitCode> {
    let config = match super::load_config::<DashboardConfig>(&env) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    crate::logging::init(config.log_format);
    let bind = args.bind.unwrap_or_else(|| config.dashboard_bind.clone());
    let state = app_state(&config);
    let store_name = state.store_name();
    // Reads run on the blocking pool, at most the store's concurrency at a time; capping its
    // threads keeps malloc arenas (and so memory) bounded under load.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(state.read_concurrency())
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .with_context(|| format!("cannot listen on '{bind}' (DASHBOARD_BIND / --bind)"))?;
        let local = listener.local_addr()?;
        tracing::info!(addr = %local, store = %store_name, "dashboard listening");
        let shutdown = CancellationToken::new();
        super::cancel_on_signal(shutdown.clone());
        let app = hb_dashboard::app(state);
        // Not configurable yet: the defaults (10 s header read, 5 s idle, 1,024 connections,
        // 1 MiB bodies) until hb-config carries per-role settings.
        let limits = hb_serve::Limits::default();
        hb_dashboard::serve_with(
            listener,
            app,
            limits,
            async move { shutdown.cancelled().await },
        )
        .await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// The dashboard's state from the configuration (shared with `heartbeat demo`).
pub fn app_state(config: &DashboardConfig) -> hb_dashboard::AppState {
    let settings = hb_dashboard::Settings {
        target_data_points: config.target_data_points,
        tz: config.tz.clone(),
        mask_errors: config.mask_errors,
        cors_origins: config.cors_origins.clone(),
        slow_ms: config.slow_ms.clone(),
        tls_expiry_warn_days: config.tls_expiry_warn_days,
        maintenance: config.maintenance.clone(),
    };
    hb_dashboard::AppState::new(settings, crate::stores::dashboard_store(config)).with_analytics(
        hb_dashboard::assets::Analytics::from_settings(
            config.umami_script_url.as_deref(),
            config.umami_website_id.as_deref(),
        ),
    )
}
