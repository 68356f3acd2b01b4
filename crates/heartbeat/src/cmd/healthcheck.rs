//! `heartbeat healthcheck`: exit 0 when healthy, 1 otherwise; for container HEALTHCHECKs and
//! systemd watchdogs. Without `--url` it checks that the agent wrote a cycle recently (the
//! database is opened read-only); with `--url` it expects a 2xx answer from an HTTP endpoint
//! (the dashboard's or the mock's).

use std::process::ExitCode;
use std::time::Duration;

use hb_config::{EnvSource, HealthcheckConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Check this http:// URL instead of the database (e.g. http://127.0.0.1:8000/health);
    /// healthy on a 2xx answer (redirects are not followed).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Oldest acceptable cycle, in seconds (default: three intervals, at least 60 s).
    #[arg(long, value_name = "SECS")]
    pub max_age: Option<u64>,
}

const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

pub fn run(args: Args, env: EnvSource) -> anyhow::Result<ExitCode> {
    let config = match super::load_config::<HealthcheckConfig>(&env) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let verdict = match &args.url {
        Some(url) => super::runtime()?.block_on(check_url(url)),
        None => {
            let max_age = args.max_age.map_or_else(
                || (config.loop_interval * 3).max(Duration::from_secs(60)),
                Duration::from_secs,
            );
            check_database(&config, max_age)
        }
    };
    Ok(match verdict {
        Ok(msg) => {
            println!("healthy: {msg}");
            ExitCode::SUCCESS
        }
        Err(msg) => {
            println!("unhealthy: {msg}");
            ExitCode::FAILURE
        }
    })
}

fn check_database(config: &HealthcheckConfig, max_age: Duration) -> Result<String, String> {
    let path = &config.db_path;
    let store = crate::stores::healthcheck_store(config);
    let latest = store
        .query(|q| q.latest_cycle())
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .ok_or_else(|| format!("no cycle in {} yet", path.display()))?;
    let ts_ms = latest
        .ts_ms
        .ok_or_else(|| format!("unreadable timestamp '{}'", latest.timestamp))?;
    let age_ms = jiff::Timestamp::now().as_millisecond() - ts_ms;
    let max_ms = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
    if age_ms > max_ms {
        return Err(format!(
            "the newest cycle is {} s old (more than {} s)",
            age_ms / 1000,
            max_age.as_secs()
        ));
    }
    Ok(format!(
        "the newest cycle is {:.1} s old",
        age_ms as f64 / 1000.0
    ))
}

async fn check_url(url: &str) -> Result<String, String> {
    if !url.starts_with("http://") {
        return Err(format!("'{url}' is not an http:// URL"));
    }
    // reqwest is built without a default TLS provider (as in the agent); an http:// URL never
    // uses it, but building the client needs one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(HTTP_TIMEOUT)
        .user_agent("heartbeat-healthcheck")
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let response = client.get(url).send().await.map_err(|e| {
        if e.is_timeout() {
            format!("{url}: no answer within {} s", HTTP_TIMEOUT.as_secs())
        } else {
            format!("{url}: {}", with_causes(&e))
        }
    })?;
    let code = response.status().as_u16();
    if (200..300).contains(&code) {
        Ok(format!("{url} answered {code}"))
    } else {
        Err(format!("{url} answered {code}"))
    }
}

/// reqwest's `Display` hides the cause ("error sending request"): append the source chain.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
