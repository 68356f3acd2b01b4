//! `heartbeat agent`: the monitoring loop, or one cycle with `--once`.

use std::io::Write as _;
use std::process::ExitCode;

use hb_agent::{CycleObserver, RunOptions};
use hb_config::{AgentConfig, EnvSource};
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run exactly one cycle at once, persist it, then exit (0 when it was written).
    #[arg(long)]
    pub once: bool,
    /// Also print each cycle's result as one JSON line on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, env: EnvSource) -> anyhow::Result<ExitCode> {
    let config = match super::load_config::<AgentConfig>(&env) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    crate::logging::init(config.log_format);
    let runtime = super::runtime_with_workers(config.agent_worker_threads)?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        super::cancel_on_signal(shutdown.clone());
        let observer: Option<CycleObserver> = args.json.then(|| {
            Box::new(|cycle: &hb_core::CycleRecord| {
                if let Ok(line) = serde_json::to_string(cycle) {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                }
            }) as CycleObserver
        });
        let options = RunOptions { once: args.once };
        let store = crate::stores::agent_store(&config);
        // A single cycle is not shipped: the next long-running start ships it.
        let shipping = shutdown.child_token();
        let shipper = crate::stores::fleet_shipper(&config)
            .filter(|_| !args.once)
            .map(|(settings, journal)| {
                tracing::info!(
                    host = %settings.host.name,
                    url = %hb_store_postgres::redact(&settings.url),
                    "shipping cycles to the fleet database"
                );
                hb_store_postgres::spawn(settings, journal, shipping.clone())
            });
        let result = hb_agent::run(config, store, options, observer, shutdown).await;
        shipping.cancel();
        if let Some(s) = shipper {
            s.join().await;
        }
        result?;
        Ok(ExitCode::SUCCESS)
    })
}
