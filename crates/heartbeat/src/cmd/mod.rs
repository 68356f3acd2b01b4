//! One module per subcommand, each with its `Args` and `run`.

pub mod agent;
pub mod alert_test;
pub mod config;
pub mod dashboard;
pub mod demo;
pub mod gen_db;
pub mod healthcheck;
pub mod mock;
pub mod receiver;

use std::process::ExitCode;

use hb_config::{ConfigErrors, EnvSource, RoleConfig};

/// Loads one role's configuration, printing every problem and returning exit code 2 when it is
/// invalid.
pub fn load_config<C: RoleConfig>(env: &EnvSource) -> Result<C, ExitCode> {
    C::load(env).map_err(|ConfigErrors(errors)| {
        for e in &errors {
            eprintln!("heartbeat: configuration error: {e}");
        }
        ExitCode::from(crate::EXIT_CONFIG)
    })
}

/// A multi-threaded runtime built after the configuration is read.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// A runtime with `workers` worker threads.
pub fn runtime_with_workers(workers: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?)
}

/// Cancels `token` on SIGTERM or SIGINT (Ctrl-C). A second signal exits at once.
pub fn cancel_on_signal(token: tokio_util::sync::CancellationToken) {
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        token.cancel();
        wait_for_signal().await;
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
