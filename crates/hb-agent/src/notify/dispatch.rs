//! Alert delivery (SPEC §3.5) through every configured channel (the N8N webhook, the
//! `ALERT_URLS`): off the cycle's critical path, each channel on its own, up to N attempts per
//! alert and channel with a timeout each and a pause between them. Reports each channel's
//! result as it ends, and the alert's summed-up result ([`hb_core::sum_up`]) once every channel
//! has one, through a channel; never touches the database. Never logs a channel's URL (it
//! carries tokens), only its secret-free name.
//!
//! Channels are independent: each has its own limit of deliveries in flight and its own
//! redelivery backlog, so a dead, hanging or failing channel delays no other channel (and no
//! cycle: `dispatch` never waits).
//!
//! Redelivery: alerts a previous run left undelivered are handed to
//! [`AlertDispatcher::redeliver_pending`] at start-up, with the channels that already have a
//! final result for them (not sent to again). Each channel sends its part of the backlog one
//! at a time in creation order, with a note that it comes late, before any alert of this run
//! (those wait), so no channel hears a recovery before the failure it ends. When one of them
//! fails every attempt the channel is taken as down and the rest of its backlog is recorded as
//! failed without trying, so a dead channel cannot hold this run's alerts back for the whole
//! backlog's retries.
//!
//! Shutdown: when the `shutdown` token given at spawn is cancelled, attempts in flight finish
//! but no new retry starts; [`AlertDispatcher::shutdown`] then waits up to its grace and
//! abandons what is left, reporting it as not delivered (interrupted: sent again at the next
//! start). Backlog not reached reports nothing and stays pending.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hb_core::{AlertDelivery, AlertRecord, ChannelDelivery, late_message, sum_up};
use hb_store::PendingAlert;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::build_client;

/// How many deliveries may be in flight at once per channel: an alert storm must not open a
/// thousand connections to one service. The semaphore is fair, so alerts go out roughly in
/// order.
const MAX_CONCURRENT_DELIVERIES: usize = 8;

const NOT_CONFIGURED: &str = "webhook not configured";
const ABANDONED: &str = "abandoned at shutdown";
const BACKLOG_STOPPED: &str =
    "not redelivered: the channel failed an earlier alert redelivered after the restart";

/// One attempt's future.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// A place alerts go.
pub trait AlertChannel: Send + Sync {
    /// Secret-free and unique among the configured channels: the key of its delivery records.
    fn name(&self) -> &str;

    /// One attempt; `Err` is a short text without secrets.
    fn send<'a>(
        &'a self,
        client: &'a reqwest::Client,
        title: &'a str,
        message: &'a str,
        timeout: Duration,
    ) -> SendFuture<'a>;
}

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Attempts per alert and channel (at least one is always made).
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

/// What the dispatcher reports.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryUpdate {
    /// One channel is done with one alert.
    Channel(ChannelDelivery),
    /// Every channel is done with the alert: its summed-up result.
    Alert(AlertDelivery),
}

type Sink = Box<dyn Fn(DeliveryUpdate) + Send + Sync>;

/// One channel with its own limit and backlog gate.
struct Lane {
    channel: Arc<dyn AlertChannel>,
    permits: Semaphore,
    /// `false` while a redelivery backlog is being sent: new alerts wait for it.
    backlog_done: tokio::sync::watch::Sender<bool>,
}

struct Shared {
    client: Result<reqwest::Client, String>,
    lanes: Vec<Lane>,
    settings: DeliverySettings,
    sink: Sink,
    /// Cancelled by the owner's shutdown token: no new retries.
    stop_retrying: CancellationToken,
    /// Cancelled when the grace period ends (or the dispatcher is dropped): give up at once.
    abandon: CancellationToken,
}

/// The channel results of one alert, until every channel has one.
struct Tally {
    expected: usize,
    results: Mutex<Vec<ChannelDelivery>>,
}

impl Tally {
    fn new(expected: usize, done: Vec<ChannelDelivery>) -> Arc<Tally> {
        Arc::new(Tally {
            expected,
            results: Mutex::new(done),
        })
    }

    /// Reports `result`, and the alert's sum once it is the last one.
    fn add(&self, shared: &Shared, result: ChannelDelivery) {
        let uid = result.uid.clone();
        (shared.sink)(DeliveryUpdate::Channel(result.clone()));
        let complete = {
            let mut results = self.results.lock().unwrap_or_else(|e| e.into_inner());
            results.push(result);
            (results.len() == self.expected).then(|| results.clone())
        };
        if let Some(results) = complete {
            (shared.sink)(DeliveryUpdate::Alert(sum_up(&uid, &results)));
        }
    }
}

/// Sends alerts in the background, one task per alert and channel, owned by a [`TaskTracker`].
pub struct AlertDispatcher {
    shared: Arc<Shared>,
    tracker: TaskTracker,
    runtime: tokio::runtime::Handle,
}

impl AlertDispatcher {
    /// Delivers through `channels` (in this order), reporting every update to `updates`. Must
    /// be called within a Tokio runtime; deliveries run on it.
    pub fn with_channels(
        channels: Vec<Arc<dyn AlertChannel>>,
        settings: DeliverySettings,
        updates: mpsc::UnboundedSender<DeliveryUpdate>,
        shutdown: CancellationToken,
    ) -> AlertDispatcher {
        // The receiver is gone only when the agent is already shutting down; nothing to do then.
        let sink: Sink = Box::new(move |update| {
            let _ = updates.send(update);
        });
        Self::build(channels, settings, sink, shutdown)
    }

    /// The webhook alone, reporting only each alert's result (the heartbeat receiver's use).
    pub fn spawn(
        url: Option<hb_config::Secret>,
        settings: DeliverySettings,
        results: mpsc::UnboundedSender<AlertDelivery>,
        shutdown: CancellationToken,
    ) -> AlertDispatcher {
        let channels: Vec<Arc<dyn AlertChannel>> = url
            .map(|url| Arc::new(super::webhook::Webhook { url }) as Arc<dyn AlertChannel>)
            .into_iter()
            .collect();
        let sink: Sink = Box::new(move |update| {
            if let DeliveryUpdate::Alert(delivery) = update {
                let _ = results.send(delivery);
            }
        });
        Self::build(channels, settings, sink, shutdown)
    }

    fn build(
        channels: Vec<Arc<dyn AlertChannel>>,
        settings: DeliverySettings,
        sink: Sink,
        shutdown: CancellationToken,
    ) -> AlertDispatcher {
        let client = build_client(settings.timeout, settings.ipv4_only).map_err(|e| e.to_string());
        if let Err(error) = &client {
            tracing::error!(%error, "alert client unavailable: alerts will only be recorded");
        }
        let lanes = channels
            .into_iter()
            .map(|channel| Lane {
                channel,
                permits: Semaphore::new(MAX_CONCURRENT_DELIVERIES),
                backlog_done: tokio::sync::watch::Sender::new(true),
            })
            .collect();
        AlertDispatcher {
            shared: Arc::new(Shared {
                client,
                lanes,
                settings,
                sink,
                stop_retrying: shutdown,
                abandon: CancellationToken::new(),
            }),
            tracker: TaskTracker::new(),
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// The channels' names, in order.
    pub fn channel_names(&self) -> Vec<String> {
        self.shared
            .lanes
            .iter()
            .map(|l| l.channel.name().to_owned())
            .collect()
    }

    /// Queues one alert for every channel. Never blocks and never waits for a delivery; the
    /// results arrive later.
    pub fn dispatch(&self, alert: AlertRecord) {
        if self.shared.lanes.is_empty() {
            tracing::warn!(
                item = %alert.item,
                title = %alert.title,
                message = %alert.message,
                "alert not sent: {NOT_CONFIGURED}"
            );
            (self.shared.sink)(DeliveryUpdate::Alert(AlertDelivery {
                uid: alert.uid,
                attempts: 0,
                delivered_at: None,
                last_error: Some(NOT_CONFIGURED.to_owned()),
                interrupted: false,
            }));
            return;
        }
        let alert = Arc::new(alert);
        let tally = Tally::new(self.shared.lanes.len(), Vec::new());
        for lane in 0..self.shared.lanes.len() {
            let (shared, alert, tally) = (
                Arc::clone(&self.shared),
                Arc::clone(&alert),
                Arc::clone(&tally),
            );
            self.tracker.spawn_on(
                async move {
                    let result = deliver_after_backlog(&shared, lane, &alert).await;
                    tally.add(&shared, result);
                },
                &self.runtime,
            );
        }
    }

    /// [`AlertDispatcher::redeliver_pending`] of alerts no channel has a result for.
    pub fn redeliver(&self, backlog: Vec<AlertRecord>) {
        self.redeliver_pending(
            backlog
                .into_iter()
                .map(|alert| PendingAlert {
                    alert,
                    done: Vec::new(),
                })
                .collect(),
        );
    }

    /// Sends alerts a previous run left undelivered to the channels that have no final result
    /// for them yet, oldest first, one at a time per channel, each marked late (see the module
    /// doc); alerts dispatched meanwhile wait until their channel's backlog is done. Call it
    /// before the first [`AlertDispatcher::dispatch`].
    pub fn redeliver_pending(&self, backlog: Vec<PendingAlert>) {
        let shared = &self.shared;
        let mut per_lane: Vec<Vec<(Arc<AlertRecord>, Arc<Tally>)>> =
            (0..shared.lanes.len()).map(|_| Vec::new()).collect();
        for PendingAlert { mut alert, done } in backlog {
            let todo: Vec<usize> = (0..shared.lanes.len())
                .filter(|&i| {
                    let name = shared.lanes[i].channel.name();
                    !done.iter().any(|d| d.channel == name)
                })
                .collect();
            if todo.is_empty() {
                // Every channel finished before the restart; only the sum was not written.
                let delivery = if done.is_empty() {
                    AlertDelivery {
                        uid: alert.uid.clone(),
                        attempts: 0,
                        delivered_at: None,
                        last_error: Some(NOT_CONFIGURED.to_owned()),
                        interrupted: false,
                    }
                } else {
                    sum_up(&alert.uid, &done)
                };
                (shared.sink)(DeliveryUpdate::Alert(delivery));
                continue;
            }
            alert.message = late_message(&alert.message);
            let tally = Tally::new(done.len() + todo.len(), done);
            let alert = Arc::new(alert);
            for lane in todo {
                per_lane[lane].push((Arc::clone(&alert), Arc::clone(&tally)));
            }
        }
        for (lane, backlog) in per_lane.into_iter().enumerate() {
            if backlog.is_empty() {
                continue;
            }
            shared.lanes[lane].backlog_done.send_replace(false);
            let shared = Arc::clone(shared);
            self.tracker.spawn_on(
                async move {
                    let name = shared.lanes[lane].channel.name().to_owned();
                    let mut channel_failed = false;
                    for (alert, tally) in backlog {
                        if shared.abandon.is_cancelled() || shared.stop_retrying.is_cancelled() {
                            break;
                        }
                        if channel_failed {
                            let skipped = ChannelDelivery {
                                uid: alert.uid.clone(),
                                channel: name.clone(),
                                attempts: 0,
                                delivered_at: None,
                                last_error: Some(BACKLOG_STOPPED.to_owned()),
                                interrupted: false,
                            };
                            tally.add(&shared, skipped);
                            continue;
                        }
                        tracing::info!(uid = %alert.uid, item = %alert.item, channel = %name, created_at = %alert.created_at, "redelivering an alert left undelivered before the restart");
                        let result = deliver_now(&shared, lane, &alert).await;
                        channel_failed = result.delivered_at.is_none() && !result.interrupted;
                        tally.add(&shared, result);
                    }
                    shared.lanes[lane].backlog_done.send_replace(true);
                },
                &self.runtime,
            );
        }
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

/// Waits for the lane's redelivery backlog, then delivers.
async fn deliver_after_backlog(
    shared: &Shared,
    lane: usize,
    alert: &AlertRecord,
) -> ChannelDelivery {
    let mut backlog_done = shared.lanes[lane].backlog_done.subscribe();
    let waited = tokio::select! {
        done = backlog_done.wait_for(|done| *done) => done.is_ok(),
        () = shared.abandon.cancelled() => false,
    };
    if waited {
        deliver_now(shared, lane, alert).await
    } else {
        abandoned(shared, lane, alert, 0)
    }
}

/// All attempts through one channel, or what was done of them when the grace period ends.
async fn deliver_now(shared: &Shared, lane: usize, alert: &AlertRecord) -> ChannelDelivery {
    let attempts_made = AtomicU32::new(0);
    tokio::select! {
        delivery = attempt_all(shared, lane, alert, &attempts_made) => delivery,
        () = shared.abandon.cancelled() => {
            abandoned(shared, lane, alert, attempts_made.load(Ordering::Relaxed))
        }
    }
}

fn abandoned(shared: &Shared, lane: usize, alert: &AlertRecord, attempts: u32) -> ChannelDelivery {
    let channel = shared.lanes[lane].channel.name().to_owned();
    tracing::warn!(uid = %alert.uid, item = %alert.item, %channel, "alert delivery abandoned at shutdown");
    ChannelDelivery {
        uid: alert.uid.clone(),
        channel,
        attempts,
        delivered_at: None,
        last_error: Some(ABANDONED.to_owned()),
        interrupted: true,
    }
}

async fn attempt_all(
    shared: &Shared,
    lane: usize,
    alert: &AlertRecord,
    attempts_made: &AtomicU32,
) -> ChannelDelivery {
    let Lane {
        channel, permits, ..
    } = &shared.lanes[lane];
    let name = channel.name();
    let result = |attempts: u32, error: Option<String>, interrupted: bool| ChannelDelivery {
        uid: alert.uid.clone(),
        channel: name.to_owned(),
        attempts,
        delivered_at: None,
        last_error: error,
        interrupted,
    };
    let client = match &shared.client {
        Ok(client) => client,
        Err(error) => return result(0, Some(error.clone()), false),
    };
    let Ok(_permit) = permits.acquire().await else {
        return result(0, Some(ABANDONED.to_owned()), true);
    };

    let max = shared.settings.attempts.max(1);
    let mut last_error = String::new();
    for attempt in 1..=max {
        attempts_made.store(attempt, Ordering::Relaxed);
        match channel
            .send(
                client,
                &alert.title,
                &alert.message,
                shared.settings.timeout,
            )
            .await
        {
            Ok(()) => {
                tracing::info!(uid = %alert.uid, item = %alert.item, channel = %name, attempt, "alert delivered");
                let delivered_at = jiff::Timestamp::now()
                    .to_zoned_datetime(shared.settings.tz.clone())
                    .strftime("%Y-%m-%dT%H:%M:%S%.6f%:z")
                    .to_string();
                return ChannelDelivery {
                    delivered_at: Some(delivered_at),
                    ..result(attempt, None, false)
                };
            }
            Err(error) => last_error = error,
        }
        tracing::warn!(
            uid = %alert.uid,
            item = %alert.item,
            channel = %name,
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
                tracing::warn!(uid = %alert.uid, channel = %name, "no more retries: shutting down");
                return result(attempt, Some(last_error), true);
            }
        }
    }
    result(max, Some(last_error), false)
}
