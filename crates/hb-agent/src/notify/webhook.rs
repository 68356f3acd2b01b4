//! The N8N webhook as an alert channel: `POST` of `{"title", "message"}` as JSON, any 2xx is
//! success (SPEC §3.5).

use std::time::Duration;

use hb_config::Secret;
use reqwest::header::CONTENT_TYPE;

use super::describe_error;
use super::dispatch::{AlertChannel, SendFuture};

/// `N8N_WEBHOOK_URL`.
pub struct Webhook {
    pub url: Secret,
}

impl AlertChannel for Webhook {
    fn name(&self) -> &str {
        "n8n"
    }

    fn send<'a>(
        &'a self,
        client: &'a reqwest::Client,
        title: &'a str,
        message: &'a str,
        timeout: Duration,
    ) -> SendFuture<'a> {
        Box::pin(async move {
            let body = serde_json::json!({ "title": title, "message": message }).to_string();
            let sent = client
                .post(self.url.expose())
                .timeout(timeout)
                .header(CONTENT_TYPE, "application/json")
                .body(body)
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => Ok(()),
                Ok(response) => Err(format!("HTTP {}", response.status().as_u16())),
                Err(error) => Err(describe_error(&error)),
            }
        })
    }
}
