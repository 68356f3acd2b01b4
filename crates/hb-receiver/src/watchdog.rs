//! The silence watchdog and the alert pipeline around it: every tick it judges each configured
//! agent (`hb_core::receiver::watch`), stores an alarm with its "agent silent" alert, and hands
//! the alert on; one task feeds alerts to the webhook dispatcher, another stores each
//! delivery's outcome. None of them is on a heartbeat's path.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hb_agent::notify::AlertDispatcher;
use hb_core::receiver::{AlarmContext, silent_alert, watch};
use hb_core::{AlertDelivery, AlertRecord};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::state::AgentRow;
use crate::{AppState, Store};

/// In-flight deliveries get this long at shutdown (one attempt's timeout plus a pause).
const DELIVERY_SHUTDOWN_GRACE: Duration = Duration::from_secs(7);

/// Ticks until `shutdown`; a store it cannot read is logged when it starts and when it ends.
pub async fn run(state: AppState, tick: Duration, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = interval.tick() => {}
        }
        let job = tokio::task::spawn_blocking({
            let state = state.clone();
            move || look(&state)
        });
        let result = match job.await {
            Ok(r) => r,
            Err(e) => Err(e.to_string()),
        };
        match (result, failing) {
            (Ok(alerts), _) => {
                if failing {
                    tracing::info!("the watchdog can read the receiver state again");
                    failing = false;
                }
                for alert in alerts {
                    let _ = state.0.alerts.send(alert);
                }
            }
            (Err(error), false) => {
                tracing::warn!(%error, "the watchdog cannot use the receiver state: silences are not judged until it can");
                failing = true;
            }
            (Err(_), true) => {}
        }
    }
}

/// One tick: the alerts of every alarm newly raised and stored. Also merges the write-ahead
/// log (see [`Store::checkpoint`]).
fn look(state: &AppState) -> Result<Vec<AlertRecord>, String> {
    let inner = &state.0;
    if let Err(e) = inner.store.checkpoint() {
        tracing::debug!(error = %e, "checkpoint skipped");
    }
    let rows = inner.store.agents().map_err(|e| e.to_string())?;
    let rows: HashMap<&str, &AgentRow> = rows.iter().map(|r| (r.name.as_str(), r)).collect();
    let now_ms = crate::now_ms();
    let mut alerts = Vec::new();
    for agent in &inner.agents {
        let Some(row) = rows.get(agent.name.as_str()) else {
            continue;
        };
        // A damaged row is shown as unreadable; the next heartbeat repairs it.
        let Some(watched) = row.watched else {
            continue;
        };
        let grace_ms = agent.grace.as_millis() as i64;
        let Some(silence) = watch(&watched, now_ms, grace_ms, inner.started_ms) else {
            continue;
        };
        let last_seen_text = watched
            .last_seen_ms
            .map(|ms| crate::time_text(ms, &inner.tz));
        let now_text = crate::time_text(now_ms, &inner.tz);
        let draft = silent_alert(
            &AlarmContext {
                agent: &agent.name,
                last_seen_text: last_seen_text.as_deref(),
                services: &row.services,
                time_text: &now_text,
            },
            &silence,
            grace_ms,
        );
        let record = draft.into_record(
            uuid::Uuid::new_v4().to_string(),
            crate::iso(now_ms, &inner.tz),
        );
        match inner
            .store
            .record_silence(&agent.name, watched.last_seen_ms, &record, now_ms)
        {
            Ok(true) => {
                tracing::warn!(agent = %agent.name, silent_for_ms = silence.silent_for_ms, title = %record.title, "agent silent");
                alerts.push(record);
            }
            Ok(false) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(alerts)
}

/// Hands each alert to the dispatcher until every sender is gone, then waits for deliveries
/// in flight.
pub async fn send_alerts(
    dispatcher: AlertDispatcher,
    mut alerts: mpsc::UnboundedReceiver<AlertRecord>,
) {
    while let Some(alert) = alerts.recv().await {
        dispatcher.dispatch(alert);
    }
    dispatcher.shutdown(DELIVERY_SHUTDOWN_GRACE).await;
}

/// Stores each delivery's outcome (attempts, delivered at, last error).
pub async fn record_deliveries(
    store: Arc<Store>,
    mut results: mpsc::UnboundedReceiver<AlertDelivery>,
) {
    while let Some(delivery) = results.recv().await {
        let store = Arc::clone(&store);
        let uid = delivery.uid.clone();
        let done = tokio::task::spawn_blocking(move || store.record_delivery(&delivery)).await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(%uid, error = %e, "cannot store an alert's delivery outcome")
            }
            Err(e) => tracing::warn!(%uid, error = %e, "cannot store an alert's delivery outcome"),
        }
    }
}
