//! Alert delivery to the webhook (SPEC §3.5): off the cycle's critical path, up to N attempts
//! with a timeout each and a pause between them. Owns its delivery tasks; reports every outcome
//! through a channel and never touches the database itself. Never logs the webhook URL (it may
//! carry a token).
//!
//! Shutdown: when the `shutdown` token given to [`AlertDispatcher::spawn`] is cancelled, attempts
//! in flight finish but no new retry starts; [`AlertDispatcher::shutdown`] then waits up to its
//! grace and abandons what is left, reporting it as not delivered.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hb_config::Secret;
use hb_core::{AlertDelivery, AlertRecord};
use reqwest::header::CONTENT_TYPE;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{build_client, describe_error};

/// How many deliveries may be in flight at once: an alert storm must not open a thousand
/// connections to one webhook. The semaphore is fair, so alerts go out roughly in order.
const MAX_CONCURRENT_DELIVERIES: usize = 8;

const NOT_CONFIGURED: &str = "webhook not configured";
const ABANDONED: &str = "abandoned at shutdown";

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Attempts per alert (at least one is always made).
    pub attempts: u32,
    /// Timeout of each attempt.
    pub timeout: Duration,
    /// Pause between two attempts.
    pub pause: Duration,
    /// Zone of `delivered_at`.
    pub tz: jiff::tz::TimeZone,
    /// Connect over IPv4 only (`FORCE_IPV4`).
    pub ipv4_only: bool,
}

impl DeliverySettings {
    /// SPEC values: 3 attempts, 5 s timeout each, 2 s pause.
    pub fn new(tz: jiff::tz::TimeZone) -> Self {
        DeliverySettings {
            attempts: 3,
            timeout: Duration::from_secs(5),
            pause: Duration::from_secs(2),
            tz,
            ipv4_only: true,
        }
    }
}

struct Shared {
    client: Result<reqwest::Client, String>,
    url: Option<Secret>,
    settings: DeliverySettings,
    results: mpsc::UnboundedSender<AlertDelivery>,
    permits: Semaphore,
    /// Cancelled by the owner's shutdown token: no new retries.
    stop_retrying: CancellationToken,
    /// Cancelled when the grace period ends (or the dispatcher is dropped): give up at once.
    abandon: CancellationToken,
}

/// Sends alerts in the background, one task per alert, owned by a [`TaskTracker`].
pub struct AlertDispatcher {
    shared: Arc<Shared>,
    tracker: TaskTracker,
    runtime: tokio::runtime::Handle,
}

impl AlertDispatcher {
    /// Must be called within a Tokio runtime; deliveries run on it.
    pub fn spawn(
        url: Option<Secret>,
        settings: DeliverySettings,
        results: mpsc::UnboundedSender<AlertDelivery>,
        shutdown: CancellationToken,
    ) -> AlertDispatcher {
        let client = build_client(settings.timeout, settings.ipv4_only).map_err(|e| e.to_string());
        if let Err(error) = &client {
            tracing::error!(%error, "alert webhook client unavailable: alerts will only be recorded");
        }
        AlertDispatcher {
            shared: Arc::new(Shared {
                client,
                url,
                settings,
                results,
                permits: Semaphore::new(MAX_CONCURRENT_DELIVERIES),
                stop_retrying: shutdown,
                abandon: CancellationToken::new(),
            }),
            tracker: TaskTracker::new(),
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// Queues one alert for delivery. Never blocks and never waits for the delivery; its result
    /// arrives later on the results channel.
    pub fn dispatch(&self, alert: AlertRecord) {
        let shared = Arc::clone(&self.shared);
        self.tracker.spawn_on(deliver(shared, alert), &self.runtime);
    }

    /// Waits for deliveries in flight up to `grace`, then abandons the rest (each still reports
    /// a result).
    pub async fn shutdown(self, grace: Duration) {
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                pending = self.tracker.len(),
                "abandoning alert deliveries still in flight at shutdown"
            );
            self.shared.abandon.cancel();
            self.tracker.wait().await;
        }
    }
}

impl Drop for AlertDispatcher {
    fn drop(&mut self) {
        // Without an owner nobody would wait for them: make the tasks end now.
        self.shared.abandon.cancel();
    }
}

async fn deliver(shared: Arc<Shared>, alert: AlertRecord) {
    let attempts_made = AtomicU32::new(0);
    let delivery = tokio::select! {
        delivery = attempt_all(&shared, &alert, &attempts_made) => delivery,
        () = shared.abandon.cancelled() => {
            tracing::warn!(uid = %alert.uid, item = %alert.item, "alert delivery abandoned at shutdown");
            AlertDelivery {
                uid: alert.uid.clone(),
                attempts: attempts_made.load(Ordering::Relaxed),
                delivered_at: None,
                last_error: Some(ABANDONED.to_owned()),
            }
        }
    };
    // The receiver is gone only when the agent is already shutting down; nothing to do then.
    let _ = shared.results.send(delivery);
}

async fn attempt_all(
    shared: &Shared,
    alert: &AlertRecord,
    attempts_made: &AtomicU32,
) -> AlertDelivery {
    let failed = |attempts: u32, error: String| AlertDelivery {
        uid: alert.uid.clone(),
        attempts,
        delivered_at: None,
        last_error: Some(error),
    };
    let Some(url) = &shared.url else {
        tracing::warn!(
            item = %alert.item,
            title = %alert.title,
            message = %alert.message,
            "alert not sent: {NOT_CONFIGURED}"
        );
        return failed(0, NOT_CONFIGURED.to_owned());
    };
    let client = match &shared.client {
        Ok(client) => client,
        Err(error) => return failed(0, error.clone()),
    };
    let Ok(_permit) = shared.permits.acquire().await else {
        return failed(0, ABANDONED.to_owned());
    };

    let body = serde_json::json!({ "title": alert.title, "message": alert.message }).to_string();
    let max = shared.settings.attempts.max(1);
    let mut last_error = String::new();
    for attempt in 1..=max {
        attempts_made.store(attempt, Ordering::Relaxed);
        let sent = client
            .post(url.expose())
            .timeout(shared.settings.timeout)
            .header(CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {
                tracing::info!(uid = %alert.uid, item = %alert.item, attempt, "alert delivered");
                let delivered_at = jiff::Timestamp::now()
                    .to_zoned_datetime(shared.settings.tz.clone())
                    .strftime("%Y-%m-%dT%H:%M:%S%.6f%:z")
                    .to_string();
                return AlertDelivery {
                    uid: alert.uid.clone(),
                    attempts: attempt,
                    delivered_at: Some(delivered_at),
                    last_error: None,
                };
            }
            Ok(response) => last_error = format!("HTTP {}", response.status().as_u16()),
            Err(error) => last_error = describe_error(&error),
        }
        tracing::warn!(
            uid = %alert.uid,
            item = %alert.item,
            attempt,
            max_attempts = max,
            error = %last_error,
            "alert delivery attempt failed"
        );
        if attempt < max {
            let stopped = tokio::select! {
                () = tokio::time::sleep(shared.settings.pause) => false,
                () = shared.stop_retrying.cancelled() => true,
            };
            if stopped {
                tracing::warn!(uid = %alert.uid, "no more retries: shutting down");
                return failed(attempt, last_error);
            }
        }
    }
    failed(max, last_error)
}
