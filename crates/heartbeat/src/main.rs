//! The `heartbeat` binary: parses the command line, loads the configuration, sets up logging and
//! the runtime, and hands over to one subcommand. No business logic lives here.

mod cmd;
mod logging;
mod stores;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Self-hosted health monitor for Docker hosts.
#[derive(Debug, Parser)]
#[command(name = "heartbeat", version, about, propagate_version = true)]
struct Cli {
    /// Read variables from this .env-style file first (real environment variables win).
    #[arg(long, global = true, value_name = "PATH")]
    env_file: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the monitoring loop (the only writer of the database).
    Agent(cmd::agent::Args),
    /// Send one test alert through every configured channel and report each outcome.
    #[command(name = "alert-test")]
    AlertTest(cmd::alert_test::Args),
    /// Validate the configuration and print it resolved, secrets redacted.
    Config(cmd::config::Args),
    /// Serve the read-only dashboard: the web page and the REST API.
    Dashboard(cmd::dashboard::Args),
    /// Run the mock, an agent watching its simulated services and the dashboard, all in one.
    Demo(cmd::demo::Args),
    /// Exit 0 when the agent wrote a cycle recently (or an http:// URL answers 2xx).
    Healthcheck(cmd::healthcheck::Args),
    /// Run the development mock: heartbeat receiver, simulated services, alert sink, controller page.
    Mock(cmd::mock::Args),
    /// Run the heartbeat receiver: the dead-man's switch the agents report to, on another machine.
    Receiver(cmd::receiver::Args),
    /// Write a synthetic database (development: tests and benchmarks).
    #[command(name = "gen-db", hide = true)]
    GenDb(cmd::gen_db::Args),
}

/// Exit code for an invalid configuration (also what clap uses for usage errors).
pub const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = match hb_config::EnvSource::from_process(cli.env_file.as_deref()) {
        Ok(env) => env,
        Err(e) => {
            eprintln!("heartbeat: configuration error: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let result = match cli.command {
        Command::Agent(args) => cmd::agent::run(args, env),
        Command::AlertTest(args) => cmd::alert_test::run(args, env),
        Command::Config(args) => cmd::config::run(args, env),
        Command::Dashboard(args) => cmd::dashboard::run(args, env),
        Command::Mock(args) => cmd::mock::run(args, env),
        Command::Receiver(args) => cmd::receiver::run(args, env),
        Command::Demo(args) => cmd::demo::run(args, env),
        Command::Healthcheck(args) => cmd::healthcheck::run(args, env),
        Command::GenDb(args) => cmd::gen_db::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("heartbeat: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
