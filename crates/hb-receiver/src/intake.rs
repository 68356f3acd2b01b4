//! One heartbeat, from its body to its answer: the body's shape checked against the agent's
//! contract (SPEC §3.4), the previous state read, the heartbeat and (when the agent is back)
//! its recovery stored, the answer chosen by `hb_core::receiver`. Runs on the blocking pool;
//! sends no alert itself (the caller hands the one it returns to the dispatcher).

use std::str::FromStr;
use std::time::Instant;

use hb_core::receiver::{AlarmContext, Answer, Arrival, arrival, back_alert};
use hb_core::{AlertRecord, ServiceStatus};
use serde_json::Value;

use crate::Inner;

/// Longest piece of a client's own text repeated in a 400 answer.
const ECHO_MAX_CHARS: usize = 40;

fn echo(text: &str) -> String {
    let mut out: String = text.chars().take(ECHO_MAX_CHARS).collect();
    if text.chars().count() > ECHO_MAX_CHARS {
        out.push('…');
    }
    out
}

/// `{"services": {"<name>": {"status": "<status>"}, …}}` as `(name, status)` in body order;
/// the message says what is wrong (a 400's detail).
pub fn parse_services(body: &[u8]) -> Result<Vec<(String, ServiceStatus)>, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON ({e})"))?;
    let services = value
        .as_object()
        .and_then(|o| o.get("services"))
        .and_then(Value::as_object)
        .ok_or_else(|| {
            "expected {\"services\": {\"<name>\": {\"status\": \"<status>\"}, …}}".to_owned()
        })?;
    let mut out = Vec::with_capacity(services.len());
    for (name, service) in services {
        let Some(status) = service.get("status").and_then(Value::as_str) else {
            return Err(format!(
                "services.{}: expected {{\"status\": \"<status>\"}}",
                echo(name)
            ));
        };
        let status = ServiceStatus::from_str(status).map_err(|_| {
            format!(
                "services.{}.status: '{}' is not a status (expected healthy, error, timeout, down or unknown)",
                echo(name),
                echo(status)
            )
        })?;
        out.push((name.clone(), status));
    }
    Ok(out)
}

/// What happened to one heartbeat.
pub struct Taken {
    pub answer: Answer,
    /// The "agent back" alert to deliver (its row is already stored).
    pub alert: Option<AlertRecord>,
}

/// Reads the agent's previous state, stores the heartbeat, and for a returning agent its
/// recovery; each step that fails lowers the answer as SPEC §7 says.
pub fn take(
    inner: &Inner,
    agent: usize,
    services: &[(String, ServiceStatus)],
    now_ms: i64,
    deadline: Instant,
) -> Taken {
    let name = inner.agents[agent].name.as_str();
    let previous = match inner.store.watched(name, deadline) {
        Ok(w) => Some(w),
        Err(e) => {
            inner.warn_store(
                name,
                "cannot read the agent's previous state (answering blind)",
                &e,
            );
            None
        }
    };
    let arrived = arrival(previous.as_ref());
    let json: serde_json::Map<String, Value> = services
        .iter()
        .map(|(n, s)| (n.clone(), Value::from(s.as_str())))
        .collect();
    let json = Value::Object(json).to_string();
    let blind = arrived == Arrival::Blind;
    if let Err(e) = inner
        .store
        .record_heartbeat(name, now_ms, &json, blind, deadline)
    {
        inner.warn_store(name, "cannot store the heartbeat", &e);
        return Taken {
            answer: Answer::of(arrived, false, false),
            alert: None,
        };
    }
    let Arrival::Recovered { last_seen_ms } = arrived else {
        return Taken {
            answer: Answer::of(arrived, true, true),
            alert: None,
        };
    };
    let services_text: Vec<(String, String)> = services
        .iter()
        .map(|(n, s)| (n.clone(), s.as_str().to_owned()))
        .collect();
    let last_seen_text = last_seen_ms.map(|ms| crate::time_text(ms, &inner.tz));
    let now_text = crate::time_text(now_ms, &inner.tz);
    let draft = back_alert(
        &AlarmContext {
            agent: name,
            last_seen_text: last_seen_text.as_deref(),
            services: &services_text,
            time_text: &now_text,
        },
        last_seen_ms.map(|ms| now_ms - ms),
    );
    let record = draft.into_record(
        uuid::Uuid::new_v4().to_string(),
        crate::iso(now_ms, &inner.tz),
    );
    match inner.store.record_recovery(name, &record, now_ms, deadline) {
        Ok(true) => {
            tracing::info!(agent = name, title = %record.title, "agent back");
            Taken {
                answer: Answer::of(arrived, true, true),
                alert: Some(record),
            }
        }
        // Another heartbeat of the same agent recorded the recovery first.
        Ok(false) => Taken {
            answer: Answer::Recorded,
            alert: None,
        },
        Err(e) => {
            inner.warn_store(name, "cannot store the agent's recovery", &e);
            Taken {
                answer: Answer::of(arrived, true, false),
                alert: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_of_the_agents_contract() {
        let ok = parse_services(
            br#"{"services":{"b":{"status":"down"},"a":{"status":"healthy","x":1}}}"#,
        )
        .expect("valid");
        assert_eq!(
            ok,
            [
                ("b".to_owned(), ServiceStatus::Down),
                ("a".to_owned(), ServiceStatus::Healthy)
            ]
        );
        assert_eq!(parse_services(br#"{"services":{}}"#).expect("empty"), []);
        for (body, says) in [
            (&b"{"[..], "not valid JSON"),
            (b"[]", "expected {"),
            (br#"{"services":[]}"#, "expected {"),
            (br#"{"services":{"a":"healthy"}}"#, "services.a:"),
            (
                br#"{"services":{"a":{"status":"sleepy"}}}"#,
                "'sleepy' is not a status",
            ),
        ] {
            let e = parse_services(body).expect_err("invalid");
            assert!(e.contains(says), "{e}");
        }
    }
}
