//! Pure domain of Heartbeat Monitor: statuses, check outcomes, cycle records, ordering rules,
//! URL redaction and the heartbeat receiver's decisions. No I/O, no clock, no async runtime:
//! time is always passed in.

pub mod aggregate;
pub mod alert;
pub mod alerting;
pub mod cert;
pub mod check;
pub mod cycle;
pub mod debounce;
pub mod incident;
pub mod maintenance;
pub mod receiver;
pub mod redact;
pub mod schedule;
pub mod slow;
pub mod status;

pub use alert::{AlertDelivery, AlertRecord, ChannelDelivery, DeliveryState, late_message, sum_up};
pub use alerting::{
    AlertDraft, AlertEngine, CycleInput, NoResponseCause, ServiceObservation, StoredHistory,
    WorkerObservation, internet_dependent,
};
pub use check::CheckOutcome;
pub use cycle::{CycleRecord, HostMetrics, InternetCheck, ServiceResult};
pub use debounce::{Debouncer, Transition};
pub use redact::{redact_password, redact_url};
pub use slow::SlowThresholds;
pub use status::{ServiceKind, ServiceStatus, compare_services};
