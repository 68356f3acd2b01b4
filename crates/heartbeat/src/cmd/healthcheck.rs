//! `heartbeat healthcheck`: exit 0 when healthy, 1 otherwise; for container HEALTHCHECKs and
//! systemd watchdogs. Without `--url` it checks that the agent wrote a cycle recently (the
//! database is opened read-only); with `--url` it expects a 2xx answer from an HTTP endpoint
//! (the dashboard's or the mock's).

use std::process::ExitCode;
use std::time::Duration;

use hb_config::{EnvSource, HealthcheckConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Check this http:// URL instead of the database (e.g. http://127.0.0.1:8000/health).
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
            check_database(&config.db_path, max_age)
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

fn check_database(path: &std::path::Path, max_age: Duration) -> Result<String, String> {
    let latest = hb_store::reader::Reader::new(path)
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
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("'{url}' is not an http:// URL"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let addr = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(&addr).await?;
        let request = format!(
            "GET {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: heartbeat-healthcheck\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut head = vec![0u8; 64];
        let n = stream.read(&mut head).await?;
        head.truncate(n);
        Ok::<_, std::io::Error>(head)
    };
    let head = tokio::time::timeout(HTTP_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("{url}: no answer within {} s", HTTP_TIMEOUT.as_secs()))?
        .map_err(|e| format!("{url}: {e}"))?;
    let status_line = String::from_utf8_lossy(&head);
    let code = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("{url}: not an HTTP answer"))?;
    if (200..300).contains(&code) {
        Ok(format!("{url} answered {code}"))
    } else {
        Err(format!("{url} answered {code}"))
    }
}
