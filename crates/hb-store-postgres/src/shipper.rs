//! The agent's shipper: a task of its own that follows the local journal and ships every
//! written cycle (with its service rows), every alert and its later delivery updates to the
//! fleet database, in order, in batches, each batch in one transaction with the host's
//! position. Nothing on the cycle's path waits for it: PostgreSQL slow, down or refusing delays
//! only the shipping. After an outage the backlog goes out oldest first, a full batch after
//! another (many times real time), as far back as local retention kept it.
//!
//! Logging: one warning when shipping stops (with the reason, the URL redacted), one line when
//! it resumes and one when it has caught up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hb_store::{JournalAlert, JournalBatch, JournalCursor, JournalSource};
use tokio_util::sync::CancellationToken;

use crate::sink::{HostInfo, Sink, connect};

#[derive(Debug, Clone)]
pub struct ShipperSettings {
    /// `FLEET_DATABASE_URL` (a secret: only ever shown redacted).
    pub url: String,
    pub host: HostInfo,
    /// Most cycles per batch (and transaction).
    pub batch_cycles: usize,
    /// Most new alerts per batch.
    pub batch_alerts: usize,
    /// How often the journal is looked at when shipping has caught up.
    pub poll: Duration,
    /// Connect timeout, and the longest pause between two attempts after a failure.
    pub connect_timeout: Duration,
    pub retry_max: Duration,
}

impl ShipperSettings {
    pub fn new(url: String, host: HostInfo) -> ShipperSettings {
        ShipperSettings {
            url,
            host,
            batch_cycles: 200,
            batch_alerts: 1_000,
            poll: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(10),
            retry_max: Duration::from_secs(30),
        }
    }
}

/// The running shipper.
pub struct ShipperHandle {
    task: tokio::task::JoinHandle<()>,
}

impl ShipperHandle {
    /// Waits for the task to end (after the shutdown token was cancelled).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

type SharedJournal = Arc<Mutex<Box<dyn JournalSource>>>;

/// Starts shipping `journal` as `settings.host` until `shutdown` is cancelled.
pub fn spawn(
    settings: ShipperSettings,
    journal: Box<dyn JournalSource>,
    shutdown: CancellationToken,
) -> ShipperHandle {
    let journal: SharedJournal = Arc::new(Mutex::new(journal));
    let task = tokio::spawn(async move {
        tokio::select! {
            () = run(settings, journal) => {}
            () = shutdown.cancelled() => {}
        }
    });
    ShipperHandle { task }
}

/// Since when shipping has been failing, and what it shipped since it resumed.
struct Outage {
    since: Instant,
    resumed: Option<(Instant, u64)>,
}

async fn run(settings: ShipperSettings, journal: SharedJournal) {
    let application = format!("heartbeat-agent {}", settings.host.name);
    let mut outage: Option<Outage> = None;
    let mut pause = Duration::from_secs(1);
    loop {
        let session = async {
            let mut sink = connect(&settings.url, &application, settings.connect_timeout).await?;
            let applied = sink.migrate().await?;
            if !applied.is_empty() {
                tracing::info!(versions = ?applied, "fleet database schema migrated");
            }
            let journal_id = identity(&journal, &settings.host.name)
                .await
                .map_err(|e| crate::FleetError::Db(format!("the local database: {e}")))?;
            sink.claim(&settings.host, &journal_id, now_ms()).await?;
            let cursor = sink
                .position(&settings.host.name)
                .await?
                .unwrap_or_default();
            let pending = sink.pending_alerts(&settings.host.name).await?;
            Ok::<_, crate::FleetError>((sink, cursor, pending))
        }
        .await;
        let error = match session {
            Ok((mut sink, cursor, pending)) => {
                pause = Duration::from_secs(1);
                ship_while_connected(&settings, &journal, &mut sink, cursor, pending, &mut outage)
                    .await
            }
            Err(e) => e,
        };
        match &mut outage {
            None => {
                tracing::warn!(
                    error = %error,
                    "fleet shipping stopped: cycles stay in the local database and are shipped when it works again"
                );
                outage = Some(Outage {
                    since: Instant::now(),
                    resumed: None,
                });
            }
            Some(o) => {
                tracing::debug!(error = %error, "fleet shipping still failing");
                o.resumed = None;
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(settings.retry_max);
    }
}

/// Ships until the session fails; returns why.
async fn ship_while_connected(
    settings: &ShipperSettings,
    journal: &SharedJournal,
    sink: &mut Sink,
    mut cursor: JournalCursor,
    pending: Vec<String>,
    outage: &mut Option<Outage>,
) -> crate::FleetError {
    // Pending alerts as last shipped: shipped again only when their row changed.
    let mut shipped_pending: HashMap<String, Option<JournalAlert>> =
        pending.into_iter().map(|uid| (uid, None)).collect();
    loop {
        let refresh: Vec<String> = shipped_pending.keys().cloned().collect();
        let batch = match read(journal, &cursor, settings, refresh).await {
            Ok(b) => b,
            Err(e) => {
                // The local database is the agent's: wait for it rather than reconnecting.
                tracing::warn!(error = %e, "fleet shipping cannot read the local database");
                tokio::time::sleep(settings.poll * 4).await;
                continue;
            }
        };
        let mut next = cursor.clone();
        if let Some(last) = batch.cycles.last() {
            next.cycle_seq = last.seq;
            next.cycle_id = Some(last.id.clone());
        }
        let mut alerts = Vec::new();
        for a in batch.alerts.iter() {
            let is_new = a.seq > cursor.alert_seq;
            let changed = match shipped_pending.get(&a.uid) {
                Some(Some(before)) => before != a,
                Some(None) => true,
                None => is_new,
            };
            if is_new {
                next.alert_seq = next.alert_seq.max(a.seq);
            }
            if changed || is_new {
                alerts.push(a.clone());
            }
        }
        let full = batch.cycles.len() >= settings.batch_cycles;
        if batch.cycles.is_empty() && alerts.is_empty() {
            note_caught_up(outage);
            tokio::time::sleep(settings.poll).await;
            continue;
        }
        let shipping = JournalBatch {
            cycles: batch.cycles,
            alerts,
            newest: batch.newest,
            certificates: batch.certificates,
        };
        let now_ms = now_ms();
        if let Err(e) = sink.ship(&settings.host, &shipping, &next, now_ms).await {
            return e;
        }
        for a in &shipping.alerts {
            if a.is_pending() {
                shipped_pending.insert(a.uid.clone(), Some(a.clone()));
            } else {
                shipped_pending.remove(&a.uid);
            }
        }
        let shipped_ts = shipping.cycles.last().and_then(|c| c.ts_ms);
        if let Some(o) = outage.as_mut() {
            match &mut o.resumed {
                None => {
                    tracing::info!(
                        down_for_secs = o.since.elapsed().as_secs(),
                        "fleet shipping resumed: sending the backlog"
                    );
                    o.resumed = Some((Instant::now(), shipping.cycles.len() as u64));
                }
                Some((_, n)) => *n += shipping.cycles.len() as u64,
            }
        }
        cursor = next;
        save_progress(journal, &settings.host.name, &cursor, shipped_ts, now_ms).await;
        if !full {
            note_caught_up(outage);
            tokio::time::sleep(settings.poll).await;
        }
    }
}

/// The one line when the backlog after an outage has gone out.
fn note_caught_up(outage: &mut Option<Outage>) {
    if let Some(Outage {
        resumed: Some((at, shipped)),
        since,
    }) = outage
    {
        tracing::info!(
            cycles = *shipped,
            catch_up_secs = at.elapsed().as_secs_f64(),
            outage_secs = since.elapsed().as_secs(),
            "fleet shipping caught up"
        );
        *outage = None;
    }
}

async fn read(
    journal: &SharedJournal,
    cursor: &JournalCursor,
    settings: &ShipperSettings,
    refresh: Vec<String>,
) -> Result<JournalBatch, hb_store::StoreError> {
    let journal = Arc::clone(journal);
    let mut cursor = cursor.clone();
    let (cycles, alerts) = (settings.batch_cycles, settings.batch_alerts);
    tokio::task::spawn_blocking(move || {
        let mut j = journal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        j.read(&mut cursor, cycles, alerts, &refresh)
    })
    .await
    .unwrap_or_else(|e| {
        Err(hb_store::StoreError::unavailable(format!(
            "journal read: {e}"
        )))
    })
}

async fn identity(journal: &SharedJournal, host: &str) -> Result<String, hb_store::StoreError> {
    let journal = Arc::clone(journal);
    let host = host.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut j = journal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        j.identity(&host)
    })
    .await
    .unwrap_or_else(|e| Err(hb_store::StoreError::unavailable(format!("journal: {e}"))))
}

async fn save_progress(
    journal: &SharedJournal,
    host: &str,
    cursor: &JournalCursor,
    cycle_ts_ms: Option<i64>,
    now_ms: i64,
) {
    let journal = Arc::clone(journal);
    let (host, cursor) = (host.to_owned(), cursor.clone());
    let saved = tokio::task::spawn_blocking(move || {
        let mut j = journal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        j.save_progress(&host, &cursor, cycle_ts_ms, now_ms)
    })
    .await;
    if let Ok(Err(e)) = saved {
        tracing::debug!(error = %e, "fleet progress not recorded locally");
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
