//! The heartbeat receiver (SPEC §7 "Receiver"): the dead-man's switch the agents' heartbeats
//! reach. An axum [`app`] (`POST /api/heartbeat`, `GET /api/agents`, `/metrics`, `/health`, the
//! page at `/`), the watchdog that raises "agent silent" alarms, and the task that hands alerts
//! to the webhook dispatcher; [`run`] owns all three until shutdown. Decisions are
//! `hb_core::receiver`'s; every SQL statement is in [`state`]. Never logs or answers a key or
//! the webhook URL.

mod api;
mod auth;
mod intake;
mod page;
pub mod state;
mod watchdog;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use hb_agent::notify::{AlertDispatcher, DeliverySettings};
use hb_config::{ReceiverAgent, Secret};
use hb_core::AlertRecord;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use state::{StateError, Store};

/// Biggest heartbeat body accepted (413 above): a few hundred services fit in a few KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Every heartbeat is answered within this time, whatever the state store does.
pub const ANSWER_DEADLINE: Duration = Duration::from_millis(900);
/// Alerts left undelivered by a previous run younger than this are sent late at start.
pub const REDELIVER_MAX_AGE: Duration = Duration::from_secs(3_600);

/// What the receiver runs with, built by the binary from `ReceiverConfig`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub agents: Vec<ReceiverAgent>,
    pub tz: jiff::tz::TimeZone,
    pub webhook_url: Option<Secret>,
    pub delivery: DeliverySettings,
    /// How often the watchdog looks; [`Settings::new`] derives it from the shortest grace.
    pub tick: Duration,
}

impl Settings {
    /// The SPEC's delivery (3 attempts, 5 s each, 2 s apart; IPv4 or IPv6, since the receiver
    /// has no `FORCE_IPV4`) and a watchdog tick of a quarter of the shortest grace, between
    /// 100 ms and 1 s.
    pub fn new(
        agents: Vec<ReceiverAgent>,
        tz: jiff::tz::TimeZone,
        webhook_url: Option<Secret>,
    ) -> Settings {
        let shortest = agents
            .iter()
            .map(|a| a.grace)
            .min()
            .unwrap_or(Duration::from_secs(60));
        Settings {
            delivery: DeliverySettings {
                ipv4_only: false,
                ..DeliverySettings::new(tz.clone())
            },
            tick: (shortest / 4).clamp(Duration::from_millis(100), Duration::from_secs(1)),
            agents,
            tz,
            webhook_url,
        }
    }
}

/// Answers given since start, by `result` word (for `/metrics`).
#[derive(Debug, Default)]
struct Counters {
    recorded: AtomicU64,
    recovered: AtomicU64,
    blind: AtomicU64,
    recovery_update_failed: AtomicU64,
    store_failed: AtomicU64,
    unauthorized: AtomicU64,
    bad_request: AtomicU64,
}

struct Inner {
    store: Arc<Store>,
    agents: Vec<ReceiverAgent>,
    tz: jiff::tz::TimeZone,
    /// When this process started watching (a never-seen agent's silence counts from it).
    started_ms: i64,
    alerts: mpsc::UnboundedSender<AlertRecord>,
    counters: Counters,
    /// Rate limit of store-failure warnings (epoch ms of the last one).
    last_store_warning_ms: AtomicU64,
}

impl Inner {
    /// A store failure, logged at most once a second (a locked store would otherwise log every
    /// heartbeat of the fleet).
    fn warn_store(&self, agent: &str, what: &str, error: &StateError) {
        let now = u64::try_from(now_ms()).unwrap_or(0);
        let last = self.last_store_warning_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 1_000
            && self
                .last_store_warning_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(agent, error = %error, "{what} (more such warnings within a second are not logged)");
        } else {
            tracing::debug!(agent, error = %error, "{what}");
        }
    }
}

/// Shared by the handlers and the watchdog.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The router (without limits: [`run`] serves it through `hb_serve` with [`MAX_BODY_BYTES`]).
pub fn app(state: AppState) -> Router {
    api::router(state)
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("serving HTTP failed: {0}")]
    Serve(#[from] std::io::Error),
}

/// The limits the receiver serves with: 64 KiB bodies, room for a fleet's connections.
pub fn limits() -> hb_serve::Limits {
    hb_serve::Limits {
        max_body_bytes: MAX_BODY_BYTES,
        max_connections: 4_096,
        ..hb_serve::Limits::default()
    }
}

/// Serves on `listener` until `shutdown` is cancelled, with the watchdog and the alert
/// delivery running beside it; at shutdown waits for deliveries in flight (up to their grace).
pub async fn run(
    listener: tokio::net::TcpListener,
    settings: Settings,
    store: Store,
    shutdown: CancellationToken,
) -> Result<(), ReceiverError> {
    let store = Arc::new(store);
    {
        let store = Arc::clone(&store);
        let names: Vec<String> = settings.agents.iter().map(|a| a.name.clone()).collect();
        tokio::task::spawn_blocking(move || store.ensure_agents(names.iter().map(String::as_str)))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??;
    }
    let (alert_tx, alert_rx) = mpsc::unbounded_channel::<AlertRecord>();
    let (delivery_tx, delivery_rx) = mpsc::unbounded_channel();
    let dispatcher = AlertDispatcher::spawn(
        settings.webhook_url.clone(),
        settings.delivery.clone(),
        delivery_tx,
        shutdown.clone(),
    );
    let since_ms = now_ms() - REDELIVER_MAX_AGE.as_millis() as i64;
    match tokio::task::spawn_blocking({
        let store = Arc::clone(&store);
        move || store.claim_pending(since_ms)
    })
    .await
    {
        Ok(Ok(backlog)) => {
            if !backlog.is_empty() {
                tracing::info!(
                    count = backlog.len(),
                    "sending alerts a previous run left undelivered"
                );
            }
            dispatcher.redeliver(backlog);
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "cannot read undelivered alerts"),
        Err(e) => tracing::warn!(error = %e, "cannot read undelivered alerts"),
    }

    let state = AppState(Arc::new(Inner {
        store: Arc::clone(&store),
        agents: settings.agents.clone(),
        tz: settings.tz.clone(),
        started_ms: now_ms(),
        alerts: alert_tx,
        counters: Counters::default(),
        last_store_warning_ms: AtomicU64::new(0),
    }));
    let watchdog = tokio::spawn(watchdog::run(
        state.clone(),
        settings.tick,
        shutdown.clone(),
    ));
    let recorder = tokio::spawn(watchdog::record_deliveries(Arc::clone(&store), delivery_rx));
    let sender = tokio::spawn(watchdog::send_alerts(dispatcher, alert_rx));

    let router = app(state);
    let served = hb_serve::serve(listener, router, limits(), {
        let shutdown = shutdown.clone();
        async move { shutdown.cancelled().await }
    })
    .await;
    shutdown.cancel();
    // The watchdog and the router held the last alert senders: the sender task then drains
    // its queue, waits for deliveries, and drops the dispatcher, which ends the recorder.
    let _ = watchdog.await;
    let _ = sender.await;
    let _ = recorder.await;
    served?;
    Ok(())
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// `YYYY-MM-DD HH:MM:SS` in `tz`, as alert texts show times.
fn time_text(ms: i64, tz: &jiff::tz::TimeZone) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t
            .to_zoned_datetime(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S")
            .to_string(),
        Err(_) => ms.to_string(),
    }
}

/// ISO-8601 with offset in `tz` (stored and answered times).
fn iso(ms: i64, tz: &jiff::tz::TimeZone) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t
            .to_zoned_datetime(tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
            .to_string(),
        Err(_) => ms.to_string(),
    }
}
