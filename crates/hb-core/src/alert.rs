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
}
