//! `heartbeat receiver`: the dead-man's switch on another machine. Loads `ReceiverConfig`,
//! opens the receiver's own state file and serves `hb_receiver` on the configured address.

use std::process::ExitCode;

use anyhow::Context as _;
use hb_config::{EnvSource, ReceiverConfig};
use tokio_util::sync::CancellationToken;

/// Blocking-pool threads: the state store serialises writes anyway, and a store that hangs
/// must not grow one thread per waiting heartbeat.
const MAX_BLOCKING_THREADS: usize = 8;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (overrides RECEIVER_BIND; default 0.0.0.0:8200).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
}

pub fn run(args: Args, env: EnvSource) -> anyhow::Result<ExitCode> {
    let config = match super::load_config::<ReceiverConfig>(&env) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    crate::logging::init(config.log_format);
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    let bind = args.bind.unwrap_or_else(|| config.bind.clone());
    let store = hb_receiver::Store::open(&config.db_path)?;
    let settings = hb_receiver::Settings::new(
        config.agents.clone(),
        config.tz.clone(),
        config.webhook_url.clone(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .with_context(|| format!("cannot listen on '{bind}' (RECEIVER_BIND / --bind)"))?;
        let local = listener.local_addr()?;
        tracing::info!(
            addr = %local,
            db = %config.db_path.display(),
            agents = config.agents.len(),
            "receiver listening"
        );
        let shutdown = CancellationToken::new();
        super::cancel_on_signal(shutdown.clone());
        hb_receiver::run(listener, settings, store, shutdown).await?;
        tracing::info!("receiver stopped");
        Ok(ExitCode::SUCCESS)
    })
}
