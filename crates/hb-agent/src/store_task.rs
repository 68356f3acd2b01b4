//! The writer thread: owns the agent's store (a `hb_store::WriteStore`, opened through the
//! `OpenWriteStore` the binary built from the configuration), writes each cycle in its own
//! transaction, and keeps what could not be written yet (see `DurableWriter`) until the
//! database accepts writes again. Runs on a plain thread so SQLite never blocks the runtime.
//! At start-up it also claims the alert outbox and reads back what the alert engine resumes
//! from (the only reads the agent makes).

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use hb_core::{AlertDelivery, AlertRecord, CycleRecord, StoredHistory};
use hb_store::{DurableWriter, OpenWriteStore, Outbox, PendingOp, StoreError, WriteStore};

/// How often the thread retries pending writes when nothing new arrives.
const RETRY_EVERY: Duration = Duration::from_secs(1);

enum Msg {
    Op(PendingOp),
    /// Reply with the number of operations still pending after a write attempt.
    Sync(mpsc::Sender<SyncReport>),
    /// Start-up work on the connection, before any operation is queued.
    Resume(ResumeRequest, mpsc::Sender<Result<Resumed, String>>),
    Stop,
}

/// What the agent asks for at start-up.
#[derive(Debug, Clone)]
pub struct ResumeRequest {
    pub now_ms: i64,
    /// `now_ms` as stored (ISO-8601 in `TZ`): the `redelivered_at` of the claimed alerts.
    pub now_text: String,
    /// Undelivered alerts older than this are given up, younger ones redelivered.
    pub redeliver_max_age_ms: i64,
    pub give_up_reason: String,
    pub services: Vec<String>,
    /// Observations read back per item (the status-change threshold).
    pub window: u32,
}

/// The outbox and the stored state of every item.
#[derive(Debug, Clone, Default)]
pub struct Resumed {
    pub outbox: Outbox,
    /// In the order of [`ResumeRequest::services`].
    pub services: Vec<StoredHistory>,
    pub worker: StoredHistory,
}

fn resume(writer: &mut dyn WriteStore, request: &ResumeRequest) -> Result<Resumed, StoreError> {
    let outbox = writer.claim_outbox(
        request.now_ms,
        &request.now_text,
        request.redeliver_max_age_ms,
        &request.give_up_reason,
    )?;
    let services = request
        .services
        .iter()
        .map(|name| writer.service_history(name, request.window))
        .collect::<Result<_, _>>()?;
    Ok(Resumed {
        outbox,
        services,
        worker: writer.worker_history(request.window)?,
    })
}

/// What a synchronous write attempt achieved.
#[derive(Debug, Clone)]
pub struct SyncReport {
    pub pending: usize,
    pub last_error: Option<String>,
}

/// Handle to the writer thread. Dropping it without [`StoreTask::stop`] leaves the thread to
/// finish its queue and exit when the channel closes.
pub struct StoreTask {
    tx: mpsc::Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

impl StoreTask {
    pub fn spawn(store: Box<dyn OpenWriteStore>, max_pending: usize) -> std::io::Result<StoreTask> {
        let (tx, rx) = mpsc::channel::<Msg>();
        let thread = std::thread::Builder::new()
            .name("hb-writer".to_owned())
            .spawn(move || writer_loop(DurableWriter::new(store, max_pending), rx))?;
        Ok(StoreTask {
            tx,
            thread: Some(thread),
        })
    }

    pub fn record_cycle(&self, cycle: CycleRecord, alerts: Vec<AlertRecord>) {
        self.send(Msg::Op(PendingOp::Cycle(cycle, alerts)));
    }

    pub fn record_delivery(&self, delivery: AlertDelivery) {
        self.send(Msg::Op(PendingOp::Delivery(delivery)));
    }

    /// Claims the alert outbox and reads the stored item states (see [`ResumeRequest`]). An
    /// error (the database cannot be opened now) leaves the outbox for the next start.
    pub async fn resume(&self, request: ResumeRequest) -> Result<Resumed, String> {
        let (reply_tx, reply_rx) = mpsc::channel();
        self.send(Msg::Resume(request, reply_tx));
        tokio::task::spawn_blocking(move || reply_rx.recv())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|_| "the writer thread stopped".to_owned())?
    }

    /// Tries to write everything queued and reports what is left (for `--once`).
    pub async fn sync(&self) -> SyncReport {
        let (reply_tx, reply_rx) = mpsc::channel();
        self.send(Msg::Sync(reply_tx));
        tokio::task::spawn_blocking(move || reply_rx.recv())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(SyncReport {
                pending: usize::MAX,
                last_error: Some("the writer thread stopped".to_owned()),
            })
    }

    /// Writes what it can, then stops the thread. Whatever could not be written is reported.
    pub async fn stop(mut self) -> SyncReport {
        let report = self.sync().await;
        self.send(Msg::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        report
    }

    fn send(&self, msg: Msg) {
        if self.tx.send(msg).is_err() {
            tracing::error!("the database writer thread has stopped; a write was lost");
        }
    }
}

fn writer_loop(mut writer: DurableWriter, rx: mpsc::Receiver<Msg>) {
    loop {
        match rx.recv_timeout(RETRY_EVERY) {
            Ok(Msg::Op(op)) => {
                writer.submit(op);
            }
            Ok(Msg::Sync(reply)) => {
                let report = writer.flush();
                let _ = reply.send(SyncReport {
                    pending: writer.pending(),
                    last_error: report.last_error,
                });
            }
            Ok(Msg::Resume(request, reply)) => {
                let resumed = writer
                    .with_writer(|w| resume(w, &request))
                    .map_err(|e| e.to_string());
                let _ = reply.send(resumed);
            }
            Ok(Msg::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                if writer.pending() > 0 {
                    writer.flush();
                }
                if writer.pending() > 0 {
                    tracing::error!(
                        pending = writer.pending(),
                        "stopping with cycles that could not be written"
                    );
                }
                return;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if writer.pending() > 0 {
                    writer.flush();
                }
            }
        }
    }
}
