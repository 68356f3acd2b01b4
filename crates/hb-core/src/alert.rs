//! Alert records: what the agent decided to tell the operator, and what happened when it tried.

use serde::{Deserialize, Serialize};

/// One alert, created by a cycle's state processing. Written in the same transaction as the
/// cycle that produced it; delivery results follow as [`AlertDelivery`] updates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Unique id chosen by the agent (UUID v4) so delivery updates can find the row even when
    /// the database was unavailable when the alert was created.
    pub uid: String,
    /// ISO-8601 in the configured zone.
    pub created_at: String,
    /// A service name, or `worker`, or `internet`.
    pub item: String,
    pub old_status: Option<String>,
    pub new_status: String,
    pub title: String,
    /// Markdown.
    pub message: String,
}

/// The outcome of delivering one alert to the webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertDelivery {
    pub uid: String,
    pub attempts: u32,
    /// ISO-8601 in the configured zone; `None` when every attempt failed.
    pub delivered_at: Option<String>,
    /// The last attempt's error, without secrets (never the webhook URL).
    pub last_error: Option<String>,
    /// The agent stopped before the delivery could finish (shutdown): not a final failure, so
    /// the alert stays in the outbox and the next start sends it (see [`late_message`]).
    #[serde(default)]
    pub interrupted: bool,
}

/// The outcome of delivering one alert through one channel (`ALERT_URLS`, the N8N webhook),
/// recorded as it happens; the alert's own [`AlertDelivery`] sums them up once every channel
/// is done (see [`sum_up`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelDelivery {
    pub uid: String,
    /// The channel's secret-free name (`n8n`, `discord:1234`, ...).
    pub channel: String,
    pub attempts: u32,
    pub delivered_at: Option<String>,
    /// Without secrets.
    pub last_error: Option<String>,
    /// Stopped by a shutdown: the channel is tried again at the next start.
    #[serde(default)]
    pub interrupted: bool,
}

/// What the alert's row says once every channel has a result: attempts summed; delivered (at
/// the last channel's delivery) only when every channel delivered; otherwise the failed
/// channels' errors, each prefixed with its channel's name when there are several; still
/// pending when a shutdown interrupted any of them.
pub fn sum_up(uid: &str, results: &[ChannelDelivery]) -> AlertDelivery {
    let several = results.len() > 1;
    let errors: Vec<String> = results
        .iter()
        .filter(|r| r.delivered_at.is_none())
        .map(|r| {
            let error = r.last_error.as_deref().unwrap_or("not delivered");
            if several {
                format!("{}: {error}", r.channel)
            } else {
                error.to_owned()
            }
        })
        .collect();
    let delivered_at = if errors.is_empty() {
        results.iter().filter_map(|r| r.delivered_at.clone()).max()
    } else {
        None
    };
    AlertDelivery {
        uid: uid.to_owned(),
        attempts: results.iter().map(|r| r.attempts).sum(),
        delivered_at,
        last_error: (!errors.is_empty()).then(|| errors.join("; ")),
        interrupted: results.iter().any(|r| r.interrupted),
    }
}

/// How far an alert's delivery got, as stored in `alerts.delivery_state` (SQL `NULL` is
/// [`DeliveryState::Pending`], which is also what rows written before the column read as).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not delivered and not given up: in flight, or interrupted by a crash or shutdown. The
    /// agent's next start delivers it (late) or gives it up.
    Pending,
    Delivered,
    /// Every attempt failed (or no webhook was configured) while the agent ran.
    Failed,
    /// Still pending at a start but too old to be worth sending; `last_error` says why.
    GivenUp,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::GivenUp => "given_up",
        }
    }
}

/// What a restarted agent sends for an alert left undelivered: the original message (its own
/// time line still says when it happened) and a line saying that it comes late.
pub fn late_message(message: &str) -> String {
    format!("{message}\n\n**Delivered late:** the agent restarted before this alert could be sent.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_message_keeps_the_original_and_says_why() {
        let late = late_message("**Service:** api\n**Time:** 2026-11-29 15:41:02");
        assert!(late.starts_with("**Service:** api\n**Time:** 2026-11-29 15:41:02\n\n"));
        assert!(
            late.ends_with(
                "**Delivered late:** the agent restarted before this alert could be sent."
            )
        );
    }

    fn channel(name: &str, attempts: u32, ok: bool, interrupted: bool) -> ChannelDelivery {
        ChannelDelivery {
            uid: "a".to_owned(),
            channel: name.to_owned(),
            attempts,
            delivered_at: ok.then(|| format!("2026-12-03T10:00:0{attempts}+00:00")),
            last_error: (!ok).then(|| "HTTP 500".to_owned()),
            interrupted,
        }
    }

    #[test]
    fn channel_results_sum_up() {
        // One channel: exactly its own result, as the webhook alone always recorded.
        let one = sum_up("a", &[channel("n8n", 3, false, false)]);
        assert_eq!(one.attempts, 3);
        assert_eq!(one.last_error.as_deref(), Some("HTTP 500"));
        assert!(one.delivered_at.is_none() && !one.interrupted);

        let all = sum_up(
            "a",
            &[
                channel("n8n", 1, true, false),
                channel("ntfy:h/t", 2, true, false),
            ],
        );
        assert_eq!(all.attempts, 3);
        assert_eq!(
            all.delivered_at.as_deref(),
            Some("2026-12-03T10:00:02+00:00")
        );
        assert!(all.last_error.is_none());

        let some = sum_up(
            "a",
            &[
                channel("n8n", 1, true, false),
                channel("discord:1", 3, false, false),
            ],
        );
        assert!(some.delivered_at.is_none());
        assert_eq!(some.last_error.as_deref(), Some("discord:1: HTTP 500"));

        let cut = sum_up(
            "a",
            &[
                channel("n8n", 1, true, false),
                channel("slack:T/B", 1, false, true),
            ],
        );
        assert!(cut.interrupted);
    }

    #[test]
    fn a_delivery_without_the_flag_is_not_interrupted() {
        let d: AlertDelivery = serde_json::from_str(
            r#"{"uid":"a","attempts":1,"delivered_at":null,"last_error":"x"}"#,
        )
        .expect("json");
        assert!(!d.interrupted);
    }
}
