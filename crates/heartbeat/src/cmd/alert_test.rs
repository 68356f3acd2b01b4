//! `heartbeat alert-test`: sends one test alert through every configured channel (the N8N
//! webhook and each of `ALERT_URLS`) and prints each outcome. Exit 0 when every channel took
//! it, 1 when any failed or none is configured, 2 for an invalid configuration. Nothing is
//! written to the database.

use std::process::ExitCode;
use std::time::Duration;

use hb_agent::notify::{AlertDispatcher, DeliverySettings, DeliveryUpdate, channels_of};
use hb_config::{AgentConfig, EnvSource};
use hb_core::{AlertRecord, ChannelDelivery};
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Attempts per channel (the agent makes 3; one answers fastest whether a channel works).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=3))]
    pub attempts: u32,
}

pub fn run(args: Args, env: EnvSource) -> anyhow::Result<ExitCode> {
    let config = match super::load_config::<AgentConfig>(&env) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let channels = channels_of(&config);
    if channels.is_empty() {
        println!("no alert channel configured: set N8N_WEBHOOK_URL or ALERT_URLS");
        return Ok(ExitCode::FAILURE);
    }
    let expected = channels.len();
    let results = super::runtime()?.block_on(async move {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let dispatcher = AlertDispatcher::with_channels(
            channels,
            DeliverySettings {
                attempts: args.attempts,
                ipv4_only: config.force_ipv4,
                ..DeliverySettings::new(config.tz.clone())
            },
            tx,
            CancellationToken::new(),
        );
        let order = dispatcher.channel_names();
        dispatcher.dispatch(test_alert(&config));
        let mut results: Vec<ChannelDelivery> = Vec::with_capacity(expected);
        while results.len() < expected {
            match rx.recv().await {
                Some(DeliveryUpdate::Channel(result)) => results.push(result),
                Some(DeliveryUpdate::Alert(_)) => {}
                None => break,
            }
        }
        dispatcher.shutdown(Duration::from_secs(1)).await;
        results.sort_by_key(|r| order.iter().position(|n| *n == r.channel));
        results
    });
    let mut failed = 0;
    for r in &results {
        let attempts = match r.attempts {
            1 => "1 attempt".to_owned(),
            n => format!("{n} attempts"),
        };
        match (&r.delivered_at, &r.last_error) {
            (Some(_), _) => println!("ok      {}: delivered ({attempts})", r.channel),
            (None, error) => {
                failed += 1;
                println!(
                    "FAILED  {}: {} ({attempts})",
                    r.channel,
                    error.as_deref().unwrap_or("not delivered")
                );
            }
        }
    }
    println!(
        "{} of {} channels took the test alert",
        results.len() - failed,
        expected
    );
    Ok(if failed == 0 && results.len() == expected {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn test_alert(config: &AgentConfig) -> AlertRecord {
    let now = jiff::Timestamp::now().to_zoned_datetime(config.tz.clone());
    let time = hb_agent::cycle::alert_time_text(&now);
    AlertRecord {
        uid: uuid::Uuid::new_v4().to_string(),
        created_at: hb_agent::cycle::iso_timestamp(&now),
        item: "alert-test".to_owned(),
        old_status: None,
        new_status: "test".to_owned(),
        title: "🧪 Heartbeat test alert".to_owned(),
        message: format!(
            "**Test:** sent by `heartbeat alert-test` to check this channel; nothing is wrong.\n**Time:** {time}"
        ),
    }
}
