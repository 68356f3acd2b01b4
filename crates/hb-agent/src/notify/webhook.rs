//! Alert delivery to the webhook (SPEC §3.5): off the cycle's critical path, up to N attempts
//! with a timeout each and a pause between them. Owns its delivery tasks; reports every outcome
//! through a channel and never touches the database itself. Never logs the webhook URL (it may
//! carry a token).
//!
//! Redelivery: alerts a previous run left undelivered (a crash, a shutdown) are handed to
//! [`AlertDispatcher::redeliver`] at start-up: sent one at a time in creation order, with a
//! note that they come late, and before any alert of this run (those wait), so the webhook
//! never hears a recovery before the failure it ends. When one of them fails every attempt the
//! webhook is taken as down and the rest are recorded as failed without trying, so a dead
//! webhook cannot hold this run's alerts back for the whole backlog's retries.
//!
//! Shutdown: when the `shutdown` token given to [`AlertDispatcher::spawn`] is cancelled, attempts
//! in flight finish but no new retry starts; [`AlertDispatcher::shutdown`] then waits up to its
//! grace and abandons what is left, reporting it as not delivered.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hb_config::Secret;
use hb_core::{AlertDelivery, AlertRecord, late_message};
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
const BACKLOG_STOPPED: &str =
    "not redelivered: the webhook failed an earlier alert redelivered after the restart";

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
    /// `false` while a redelivery backlog is being sent: new alerts wait for it.
    backlog_done: tokio::sync::watch::Sender<bool>,
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
                backlog_done: tokio::sync::watch::Sender::new(true),
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

    /// Sends alerts a previous run left undelivered, oldest first, one at a time, each marked
    /// late (see the module doc); alerts dispatched meanwhile wait until it is done. Call it
    /// before the first [`AlertDispatcher::dispatch`]. Alerts not reached at shutdown report
    /// nothing and stay pending for the next start.
    pub fn redeliver(&self, backlog: Vec<AlertRecord>) {
        if backlog.is_empty() {
            return;
        }
        self.shared.backlog_done.send_replace(false);
        let shared = Arc::clone(&self.shared);
        self.tracker.spawn_on(
            async move {
                let mut webhook_failed = false;
                for mut alert in backlog {
                    if shared.abandon.is_cancelled() || shared.stop_retrying.is_cancelled() {
                        break;
                    }
                    if webhook_failed {
                        let _ = shared.results.send(AlertDelivery {
                            uid: alert.uid,
                            attempts: 0,
                            delivered_at: None,
                            last_error: Some(BACKLOG_STOPPED.to_owned()),
                            interrupted: false,
                        });
                        continue;
                    }
                    alert.message = late_message(&alert.message);
                    tracing::info!(uid = %alert.uid, item = %alert.item, created_at = %alert.created_at, "redelivering an alert left undelivered before the restart");
                    let delivery = deliver_now(&shared, &alert).await;
                    webhook_failed = delivery.delivered_at.is_none() && !delivery.interrupted;
                    let _ = shared.results.send(delivery);
                }
                shared.backlog_done.send_replace(true);
            },
            &self.runtime,
        );
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
    let mut backlog_done = shared.backlog_done.subscribe();
    let waited = tokio::select! {
        done = backlog_done.wait_for(|done| *done) => done.is_ok(),
        () = shared.abandon.cancelled() => false,
    };
    let delivery = if waited {
        deliver_now(&shared, &alert).await
    } else {
        abandoned(&alert, 0)
    };
    // The receiver is gone only when the agent is already shutting down; nothing to do then.
    let _ = shared.results.send(delivery);
}

/// All attempts for one alert, or what was done of them when the grace period ends.
async fn deliver_now(shared: &Shared, alert: &AlertRecord) -> AlertDelivery {
    let attempts_made = AtomicU32::new(0);
    tokio::select! {
        delivery = attempt_all(shared, alert, &attempts_made) => delivery,
        () = shared.abandon.cancelled() => {
            abandoned(alert, attempts_made.load(Ordering::Relaxed))
        }
    }
}

fn abandoned(alert: &AlertRecord, attempts: u32) -> AlertDelivery {
    tracing::warn!(uid = %alert.uid, item = %alert.item, "alert delivery abandoned at shutdown");
    AlertDelivery {
        uid: alert.uid.clone(),
        attempts,
        delivered_at: None,
        last_error: Some(ABANDONED.to_owned()),
        interrupted: true,
    }
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
        interrupted: false,
    };
    let interrupted = |attempts: u32, error: String| AlertDelivery {
        interrupted: true,
        ..failed(attempts, error)
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
        return interrupted(0, ABANDONED.to_owned());
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
                    interrupted: false,
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
                return interrupted(attempt, last_error);
            }
        }
    }
    failed(max, last_error)
}
