//! The local journal as a fleet shipper reads it: cycles in the order they were written, with
//! their service rows, and the alerts with their delivery state, exactly as stored.

/// One stored cycle with its service rows.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalCycle {
    /// Its position in the journal (write order).
    pub seq: i64,
    pub id: String,
    pub timestamp: String,
    pub ts_ms: Option<i64>,
    pub cpu_percent: f64,
    pub ram_percent: f64,
    pub ram_used_mb: f64,
    pub disk_percent: f64,
    pub uptime_seconds: Option<f64>,
    pub container_count: i64,
    pub internet_status: bool,
    pub ping_ms: Option<f64>,
    pub worker_status: Option<i64>,
    pub cycle_duration_ms: Option<i64>,
    pub checks: Vec<JournalCheck>,
}

/// One stored service row.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalCheck {
    pub service_name: String,
    pub service_url: Option<String>,
    pub status: String,
    pub status_code: Option<i64>,
    pub latency_ms: Option<f64>,
    pub error_message: Option<String>,
}

/// One stored alert, with its delivery as far as it got.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalAlert {
    /// Its position in the journal (write order).
    pub seq: i64,
    pub uid: String,
    pub created_at: Option<String>,
    pub created_ms: Option<i64>,
    pub item: Option<String>,
    pub old_status: Option<String>,
    pub new_status: Option<String>,
    pub title: Option<String>,
    pub message: Option<String>,
    pub attempts: Option<i64>,
    pub delivered_at: Option<String>,
    pub last_error: Option<String>,
    pub delivery_state: Option<String>,
    pub redelivered_at: Option<String>,
}

impl JournalAlert {
    /// Whether its delivery can still change (pending: no final result yet).
    pub fn is_pending(&self) -> bool {
        self.delivery_state.is_none()
    }
}

/// How far shipping got: the last cycle and alert shipped (0 before the first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalCursor {
    pub cycle_seq: i64,
    /// The id of the cycle at `cycle_seq`, so a renumbered journal is noticed.
    pub cycle_id: Option<String>,
    pub alert_seq: i64,
}

/// The leaf certificate of a service's newest https answer, as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalCertificate {
    pub service_name: String,
    pub expires_ms: i64,
    pub checked_ms: i64,
}

/// What one read of the journal returned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JournalBatch {
    /// Cycles after the cursor, oldest first.
    pub cycles: Vec<JournalCycle>,
    /// Alerts after the cursor, oldest first, then the pending ones asked for again.
    pub alerts: Vec<JournalAlert>,
    /// The newest cycle in the journal: (seq, ts_ms), for the lag.
    pub newest: Option<(i64, Option<i64>)>,
    /// Every service's certificate as it is now (one row per https service: few).
    pub certificates: Vec<JournalCertificate>,
}

/// The local journal a shipper reads (the agent's SQLite database). Blocking: the shipper calls
/// it from a blocking thread.
pub trait JournalSource: Send {
    /// Cycles and alerts after `cursor` (which follows a renumbered journal), and the pending
    /// alerts `refresh` as they are now.
    fn read(
        &mut self,
        cursor: &mut JournalCursor,
        max_cycles: usize,
        max_alerts: usize,
        refresh: &[String],
    ) -> Result<JournalBatch, crate::StoreError>;

    /// This journal's identity when shipped as `host` (made once, then kept).
    fn identity(&mut self, host: &str) -> Result<String, crate::StoreError>;

    /// Records locally how far shipping as `host` got.
    fn save_progress(
        &mut self,
        host: &str,
        cursor: &JournalCursor,
        cycle_ts_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<(), crate::StoreError>;
}
