//! `heartbeat receiver`'s settings (SPEC §7 "Receiver"): where it listens, its own state file,
//! the agents it accepts with their keys and grace periods, the alert webhook and the zone of
//! alert texts. Reads only these variables; keys are secrets and never appear in a message.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::parse::{
    Reader, has_control_chars, lines, log_format_shown, secret_shown, secret_url_shown,
};
use crate::{ConfigErrors, EnvSource, LogFormat, Secret};

const AGENT_PREFIX: &str = "RECEIVER_AGENT_";
const GRACE_PREFIX: &str = "RECEIVER_GRACE_SECONDS_";
/// The agent a receiver without any `RECEIVER_AGENT_<name>` accepts, keyed by `SECRET_KEY`.
pub const DEFAULT_AGENT: &str = "default";
/// Grace bounds: below a second the watchdog's own tick would decide; a week is plenty.
const MIN_GRACE_SECS: f64 = 1.0;
const MAX_GRACE_SECS: f64 = 7.0 * 86_400.0;

/// One agent the receiver accepts heartbeats from.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiverAgent {
    /// Case-preserving, from `RECEIVER_AGENT_<name>` (or [`DEFAULT_AGENT`]).
    pub name: String,
    /// The Bearer key that identifies it.
    pub key: Secret,
    /// Silence allowed before the "agent silent" alarm.
    pub grace: Duration,
}

/// `heartbeat receiver`: the dead-man's switch the agents' heartbeats reach.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    pub bind: String,
    pub db_path: PathBuf,
    /// By name.
    pub agents: Vec<ReceiverAgent>,
    pub default_grace: Duration,
    /// May carry a token in its path: shown redacted.
    pub webhook_url: Option<Secret>,
    pub tz_name: String,
    pub tz: jiff::tz::TimeZone,
    pub log_format: LogFormat,
    pub warnings: Vec<String>,
}

pub(crate) fn load_receiver(env: &EnvSource) -> Result<ReceiverConfig, ConfigErrors> {
    let mut r = Reader::new(env);
    let mut warnings = Vec::new();
    let bind = r
        .optional("RECEIVER_BIND")
        .unwrap_or("0.0.0.0:8200")
        .to_owned();
    if bind.parse::<std::net::SocketAddr>().is_err() {
        r.error(
            "RECEIVER_BIND",
            format!("'{bind}' is not valid (expected IP:PORT such as 0.0.0.0:8200)"),
        );
    }
    let db_path = PathBuf::from(r.optional("RECEIVER_DB_PATH").unwrap_or("data/receiver.db"));
    let default_grace = r.seconds(
        "RECEIVER_GRACE_SECONDS",
        60.0,
        MIN_GRACE_SECS,
        MAX_GRACE_SECS,
    );
    let webhook_url = r.optional("N8N_WEBHOOK_URL").and_then(|raw| {
        r.http_url("N8N_WEBHOOK_URL", raw, true)
            .map(|_| Secret::new(raw))
    });
    let (tz_name, tz) = r.tz();
    let log_format = r.log_format();
    let agents = read_agents(&mut r, default_grace);
    if webhook_url.is_none() {
        warnings.push(
            "N8N_WEBHOOK_URL is not set: silent/back alarms are only logged and recorded"
                .to_owned(),
        );
    }
    r.finish(ReceiverConfig {
        bind,
        db_path,
        agents,
        default_grace,
        webhook_url,
        tz_name,
        tz,
        log_format,
        warnings,
    })
}

fn read_agents(r: &mut Reader<'_>, default_grace: Duration) -> Vec<ReceiverAgent> {
    let env = r.env;
    for name in env
        .not_utf8_with_prefix(AGENT_PREFIX)
        .chain(env.not_utf8_with_prefix(GRACE_PREFIX))
    {
        r.error(name, "is not valid UTF-8 text (name or value)");
    }
    let keyed: BTreeMap<&str, &str> = env.with_prefix(AGENT_PREFIX).collect();
    let mut agents = Vec::new();
    if keyed.is_empty() {
        match r.header_safe_secret("SECRET_KEY") {
            Some(key) => agents.push(ReceiverAgent {
                name: DEFAULT_AGENT.to_owned(),
                key,
                grace: default_grace,
            }),
            None if !env.is_not_utf8("SECRET_KEY") && env.get("SECRET_KEY").is_none_or(|v| v.trim().is_empty()) => r.error(
                AGENT_PREFIX,
                "no agent is configured (set RECEIVER_AGENT_<name>=<key> per agent, or SECRET_KEY for a single agent named 'default')",
            ),
            None => {}
        }
    }
    for (name, raw) in &keyed {
        let var = format!("{AGENT_PREFIX}{name}");
        let key = raw.trim();
        if name.is_empty() {
            r.error(
                AGENT_PREFIX,
                "an agent needs a name after the prefix (RECEIVER_AGENT_<name>)",
            );
            continue;
        }
        if key.is_empty() {
            r.error(&var, "is empty (expected the agent's key)");
            continue;
        }
        if has_control_chars(key) {
            r.error(
                &var,
                "contains control characters (such as a line break) and cannot arrive in an HTTP header",
            );
            continue;
        }
        agents.push(ReceiverAgent {
            name: (*name).to_owned(),
            key: Secret::new(key),
            grace: default_grace,
        });
    }
    // A key names one agent: two agents sharing one could not be told apart.
    for (i, a) in agents.iter().enumerate() {
        if let Some(first) = agents[..i].iter().find(|b| b.key == a.key) {
            r.error(
                &format!("{AGENT_PREFIX}{}", a.name),
                format!(
                    "has the same key as {AGENT_PREFIX}{} (each agent needs its own key)",
                    first.name
                ),
            );
        }
    }
    let graces: Vec<(String, String)> = env
        .with_prefix(GRACE_PREFIX)
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    for (name, _) in graces {
        let var = format!("{GRACE_PREFIX}{name}");
        let grace = r.seconds(
            &var,
            default_grace.as_secs_f64(),
            MIN_GRACE_SECS,
            MAX_GRACE_SECS,
        );
        match agents.iter_mut().find(|a| a.name == name) {
            Some(agent) => agent.grace = grace,
            None => r.error(&var, format!("there is no agent named '{name}' (set {AGENT_PREFIX}{name}, or use RECEIVER_GRACE_SECONDS_{DEFAULT_AGENT} with SECRET_KEY)")),
        }
    }
    agents
}

pub(crate) fn describe_receiver(c: &ReceiverConfig) -> Vec<(String, String)> {
    let mut out = lines(vec![
        ("RECEIVER_BIND", c.bind.clone()),
        ("RECEIVER_DB_PATH", c.db_path.display().to_string()),
        (
            "RECEIVER_GRACE_SECONDS",
            format!("{}", c.default_grace.as_secs_f64()),
        ),
        ("N8N_WEBHOOK_URL", secret_url_shown(&c.webhook_url)),
        ("TZ", c.tz_name.clone()),
        ("LOG_FORMAT", log_format_shown(c.log_format)),
    ]);
    for a in &c.agents {
        out.push((
            format!("{AGENT_PREFIX}{}", a.name),
            secret_shown(&Some(a.key.clone())),
        ));
        if a.grace != c.default_grace {
            out.push((
                format!("{GRACE_PREFIX}{}", a.name),
                format!("{}", a.grace.as_secs_f64()),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<ReceiverConfig, ConfigErrors> {
        load_receiver(&EnvSource::from_pairs(pairs.iter().copied()))
    }

    fn vars(errs: &ConfigErrors) -> Vec<&str> {
        errs.0.iter().map(|e| e.variable.as_str()).collect()
    }

    #[test]
    fn secret_key_alone_makes_one_default_agent() {
        let c = load(&[("SECRET_KEY", "k1")]).expect("valid");
        assert_eq!(c.bind, "0.0.0.0:8200");
        assert_eq!(c.db_path, PathBuf::from("data/receiver.db"));
        assert_eq!(c.default_grace, Duration::from_secs(60));
        assert_eq!(c.agents.len(), 1);
        assert_eq!(c.agents[0].name, "default");
        assert_eq!(c.agents[0].key.expose(), "k1");
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    }

    #[test]
    fn named_agents_are_discovered_with_their_own_grace() {
        let c = load(&[
            ("SECRET_KEY", "ignored-when-agents-are-named"),
            ("RECEIVER_AGENT_web", "kw"),
            ("RECEIVER_AGENT_db", " kd "),
            ("RECEIVER_GRACE_SECONDS", "30"),
            ("RECEIVER_GRACE_SECONDS_db", "2.5"),
            ("N8N_WEBHOOK_URL", "https://n8n.test/webhook/tok"),
        ])
        .expect("valid");
        let got: Vec<(&str, &str, f64)> = c
            .agents
            .iter()
            .map(|a| (a.name.as_str(), a.key.expose(), a.grace.as_secs_f64()))
            .collect();
        assert_eq!(got, [("db", "kd", 2.5), ("web", "kw", 30.0)]);
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn every_problem_is_named_and_no_key_is_echoed() {
        let errs = load(&[
            ("RECEIVER_BIND", "nowhere"),
            ("RECEIVER_GRACE_SECONDS", "0"),
            ("RECEIVER_AGENT_a", "same-key-123"),
            ("RECEIVER_AGENT_b", "same-key-123"),
            ("RECEIVER_AGENT_c", "line\nbreak-key"),
            ("RECEIVER_AGENT_d", "  "),
            ("RECEIVER_GRACE_SECONDS_zz", "5"),
            ("RECEIVER_GRACE_SECONDS_a", "soon"),
            ("N8N_WEBHOOK_URL", "ftp://hook.test/s3cr3t"),
            ("TZ", "Mars/Base"),
        ])
        .expect_err("invalid");
        assert_eq!(
            vars(&errs),
            [
                "RECEIVER_BIND",
                "RECEIVER_GRACE_SECONDS",
                "N8N_WEBHOOK_URL",
                "TZ",
                "RECEIVER_AGENT_c",
                "RECEIVER_AGENT_d",
                "RECEIVER_AGENT_b",
                "RECEIVER_GRACE_SECONDS_a",
                "RECEIVER_GRACE_SECONDS_zz",
            ]
        );
        let text = errs.to_string();
        for secret in ["same-key-123", "break-key", "s3cr3t"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }

    #[test]
    fn no_agent_at_all_is_an_error() {
        let errs = load(&[]).expect_err("invalid");
        assert_eq!(vars(&errs), ["RECEIVER_AGENT_"]);
    }

    #[test]
    fn describe_never_shows_keys() {
        let c = load(&[
            ("RECEIVER_AGENT_web", "kw-secret"),
            ("RECEIVER_GRACE_SECONDS_web", "5"),
            ("N8N_WEBHOOK_URL", "https://n8n.test/webhook/tok3n"),
        ])
        .expect("valid");
        let text = format!("{:?} {c:?}", describe_receiver(&c));
        for secret in ["kw-secret", "tok3n"] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
        assert!(text.contains("RECEIVER_GRACE_SECONDS_web"), "{text}");
    }
}
