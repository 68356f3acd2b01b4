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

    #[test]
    fn a_delivery_without_the_flag_is_not_interrupted() {
        let d: AlertDelivery = serde_json::from_str(
            r#"{"uid":"a","attempts":1,"delivered_at":null,"last_error":"x"}"#,
        )
        .expect("json");
        assert!(!d.interrupted);
    }
}
