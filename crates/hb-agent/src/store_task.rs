//! The writer thread: owns the agent's store (a `hb_store::WriteStore`, opened through the
//! `OpenWriteStore` the binary built from the configuration), writes each cycle in its own
//! transaction, and keeps what could not be written yet (see `DurableWriter`) until the
//! database accepts writes again. Runs on a plain thread so SQLite never blocks the runtime.
//! At start-up it also claims the alert outbox and reads back what the alert engine resumes
//! from (the only reads the agent makes). Between writes it runs the store's housekeeping
//! (retention, rollup backfill) in small steps, never ahead of a waiting write.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use hb_core::{AlertDelivery, AlertRecord, ChannelDelivery, CycleRecord, StoredHistory};
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

    pub fn record_channel_delivery(&self, delivery: ChannelDelivery) {
        self.send(Msg::Op(PendingOp::ChannelDelivery(delivery)));
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

/// Each housekeeping call's time budget: zero is one step per call (a transaction of a few
/// milliseconds of pruning, or one backfill batch), with a look for a waiting message between
/// steps, so a cycle that arrives waits only for the end of the step in progress. Measured
/// against a 5 ms budget it halved the added p99 wait (docs/BENCHMARKS.md); a call costs
/// nothing beyond its step.
const MAINTAIN_BUDGET: Duration = Duration::ZERO;

fn writer_loop(mut writer: DurableWriter, rx: mpsc::Receiver<Msg>) {
    let mut housekeeping = Housekeeping::default();
    let mut next: Option<Msg> = None;
    loop {
        let received = match next.take() {
            Some(msg) => Ok(msg),
            None => rx.recv_timeout(RETRY_EVERY),
        };
        match received {
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
        next = housekeeping.run(&mut writer, &rx);
    }
}

/// Retention and backfill between writes: small steps while the store reports more work and
/// no message waits. A message that arrives stops it and is handled first (a cycle is never
/// kept waiting behind housekeeping); nothing runs while writes are pending or failing.
#[derive(Default)]
struct Housekeeping {
    failing: bool,
}

impl Housekeeping {
    /// The message that interrupted it, if one did.
    fn run(&mut self, writer: &mut DurableWriter, rx: &mpsc::Receiver<Msg>) -> Option<Msg> {
        loop {
            if writer.pending() > 0 {
                return None;
            }
            let now_ms = jiff::Timestamp::now().as_millisecond();
            match writer.maintain(now_ms, MAINTAIN_BUDGET) {
                Ok(report) => {
                    if self.failing {
                        tracing::info!("database housekeeping works again");
                        self.failing = false;
                    }
                    if !report.is_empty() {
                        tracing::debug!(?report, "database housekeeping step");
                    }
                    if !report.more {
                        return None;
                    }
                }
                Err(error) => {
                    if self.failing {
                        tracing::debug!(%error, "database housekeeping still failing");
                    } else {
                        tracing::warn!(%error, "database housekeeping failed; retrying later");
                        self.failing = true;
                    }
                    return None;
                }
            }
            match rx.try_recv() {
                Ok(msg) => return Some(msg),
                // The main loop sees the closed channel on its next receive.
                Err(mpsc::TryRecvError::Empty) => continue,
                Err(mpsc::TryRecvError::Disconnected) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use hb_core::{CheckOutcome, HostMetrics, InternetCheck};
    use hb_store::{ErrorKind, Maintenance};

    use super::*;

    /// A store whose housekeeping never ends (each step takes 5 ms and reports more), that
    /// records how many steps had run when each cycle was written.
    #[derive(Clone, Default)]
    struct Fake {
        steps: Arc<AtomicUsize>,
        written_after: Arc<Mutex<Vec<usize>>>,
        refuse_writes: Arc<AtomicBool>,
    }

    impl WriteStore for Fake {
        fn record_cycle(&mut self, _: &CycleRecord, _: &[AlertRecord]) -> Result<(), StoreError> {
            if self.refuse_writes.load(Ordering::SeqCst) {
                return Err(StoreError::new(ErrorKind::Busy, "locked"));
            }
            let steps = self.steps.load(Ordering::SeqCst);
            self.written_after.lock().expect("lock").push(steps);
            Ok(())
        }
        fn record_cycles(&mut self, _: &[CycleRecord]) -> Result<(), StoreError> {
            Ok(())
        }
        fn record_delivery(&mut self, _: &AlertDelivery) -> Result<(), StoreError> {
            Ok(())
        }
        fn record_channel_delivery(&mut self, _: &ChannelDelivery) -> Result<(), StoreError> {
            Ok(())
        }
        fn claim_outbox(&mut self, _: i64, _: &str, _: i64, _: &str) -> Result<Outbox, StoreError> {
            Ok(Outbox::default())
        }
        fn service_history(&mut self, _: &str, _: u32) -> Result<StoredHistory, StoreError> {
            Ok(StoredHistory::default())
        }
        fn worker_history(&mut self, _: u32) -> Result<StoredHistory, StoreError> {
            Ok(StoredHistory::default())
        }
        fn maintain(&mut self, _: i64, _: Duration) -> Result<Maintenance, StoreError> {
            std::thread::sleep(Duration::from_millis(5));
            self.steps.fetch_add(1, Ordering::SeqCst);
            Ok(Maintenance {
                cycles_backfilled: 1,
                more: true,
                ..Maintenance::default()
            })
        }
    }

    impl OpenWriteStore for Fake {
        fn open(&self) -> Result<Box<dyn WriteStore>, StoreError> {
            Ok(Box::new(self.clone()))
        }
        fn describe(&self) -> String {
            "fake".to_owned()
        }
    }

    fn cycle(id: &str) -> CycleRecord {
        CycleRecord {
            id: id.to_owned(),
            timestamp: "2026-11-29T15:41:02-05:00".to_owned(),
            timestamp_ms: 1_795_984_862_000,
            host: HostMetrics {
                cpu_percent: 1.0,
                ram_percent: 2.0,
                ram_used_mb: 3.0,
                disk_percent: 4.0,
                uptime_seconds: None,
            },
            container_count: 0,
            internet: InternetCheck {
                online: true,
                ping_ms: None,
            },
            worker_status: None,
            cycle_duration_ms: 1,
            services: vec![hb_core::ServiceResult {
                name: "api".to_owned(),
                kind: hb_core::ServiceKind::Http,
                url: "http://127.0.0.1/".to_owned(),
                outcome: CheckOutcome::healthy(Some(1.0)),
            }],
        }
    }

    fn sync(tx: &mpsc::Sender<Msg>) -> SyncReport {
        let (reply, wait) = mpsc::channel();
        tx.send(Msg::Sync(reply)).expect("send");
        wait.recv().expect("reply")
    }

    #[test]
    fn a_cycle_is_written_before_the_next_housekeeping_step() {
        let fake = Fake::default();
        let (tx, rx) = mpsc::channel();
        let store: Box<dyn OpenWriteStore> = Box::new(fake.clone());
        let thread = std::thread::spawn(move || writer_loop(DurableWriter::new(store, 10), rx));
        // Housekeeping is busy (it always reports more).
        tx.send(Msg::Op(PendingOp::Cycle(cycle("a"), Vec::new())))
            .expect("send");
        while fake.steps.load(Ordering::SeqCst) < 5 {
            std::thread::sleep(Duration::from_millis(1));
        }
        for id in ["b", "c", "d"] {
            let before = fake.steps.load(Ordering::SeqCst);
            tx.send(Msg::Op(PendingOp::Cycle(cycle(id), Vec::new())))
                .expect("send");
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while fake.written_after.lock().expect("lock").len()
                < 2 + (id.as_bytes()[0] - b'b') as usize
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "cycle {id} never written"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            let at = *fake
                .written_after
                .lock()
                .expect("lock")
                .last()
                .expect("written");
            assert!(at <= before + 1, "cycle {id} waited {} steps", at - before);
        }
        tx.send(Msg::Stop).expect("stop");
        thread.join().expect("join");
    }

    #[test]
    fn no_housekeeping_while_writes_are_pending() {
        let fake = Fake::default();
        fake.refuse_writes.store(true, Ordering::SeqCst);
        let (tx, rx) = mpsc::channel();
        let store: Box<dyn OpenWriteStore> = Box::new(fake.clone());
        let thread = std::thread::spawn(move || writer_loop(DurableWriter::new(store, 10), rx));
        tx.send(Msg::Op(PendingOp::Cycle(cycle("a"), Vec::new())))
            .expect("send");
        assert_eq!(sync(&tx).pending, 1);
        let steps = fake.steps.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(sync(&tx).pending, 1);
        assert_eq!(fake.steps.load(Ordering::SeqCst), steps, "housekeeping ran");
        fake.refuse_writes.store(false, Ordering::SeqCst);
        assert_eq!(sync(&tx).pending, 0);
        tx.send(Msg::Stop).expect("stop");
        thread.join().expect("join");
    }
}
