//! The cycle loop: grid-aligned ticks, one cycle per tick (overruns skip missed ticks), state
//! processing and alert dispatch, persistence through the writer thread, clean shutdown.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use hb_config::{AgentConfig, Target};
use hb_core::alerting::{
    AlertEngine, AlertPolicy, CycleInput, NoResponseCause, ServiceObservation, WorkerObservation,
    internet_dependent,
};
use hb_core::cert::CertWatch;
use hb_core::schedule::{missed_ticks, next_tick_ms};
use hb_core::{AlertRecord, CycleRecord};
use tokio_util::sync::CancellationToken;

use crate::cycle::{Probes, SetupError, alert_time_text, iso_timestamp};
use crate::notify::{AlertDispatcher, DeliverySettings, DeliveryUpdate};
use crate::store_task::{ResumeRequest, StoreTask};

/// How the loop runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// One cycle at once (no waiting for the grid), persisted, then return.
    pub once: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("cannot start the database writer: {0}")]
    Writer(std::io::Error),
    #[error("the cycle could not be written to {path}: {reason}")]
    NotPersisted { path: String, reason: String },
}

/// Called with every finished cycle (the `--json` output).
pub type CycleObserver = Box<dyn Fn(&CycleRecord) + Send + Sync>;

/// Runs the agent until `shutdown` is cancelled (or one cycle with `once`).
pub async fn run(
    config: AgentConfig,
    store: Box<dyn hb_store::OpenWriteStore>,
    options: RunOptions,
    observer: Option<CycleObserver>,
    shutdown: CancellationToken,
) -> Result<(), AgentError> {
    let nofile = crate::probes::raise_nofile_limit();
    log_nofile_limit(
        &nofile,
        crate::cycle::most_in_flight(
            &config.services,
            config.checks_per_target,
            config.check_concurrency,
        ),
    );
    let probes = Arc::new(Probes::new(&config)?);
    let store_name = store.describe();
    let store = StoreTask::spawn(store, config.pending_cycles_max).map_err(AgentError::Writer)?;
    let store = Arc::new(store);

    let (delivery_tx, mut delivery_rx) = tokio::sync::mpsc::unbounded_channel();
    let dispatcher = AlertDispatcher::with_channels(
        crate::notify::channels_of(&config),
        DeliverySettings {
            ipv4_only: config.force_ipv4,
            ..DeliverySettings::new(config.tz.clone())
        },
        delivery_tx,
        shutdown.child_token(),
    );
    let forwarder = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            while let Some(update) = delivery_rx.recv().await {
                match update {
                    DeliveryUpdate::Alert(delivery) => store.record_delivery(delivery),
                    DeliveryUpdate::Channel(delivery) => store.record_channel_delivery(delivery),
                }
            }
        })
    };

    let dependent: Vec<bool> = config
        .services
        .iter()
        .map(|s| match &s.target {
            Target::Http { url, .. } => internet_dependent(
                url.host_str().unwrap_or(""),
                config.dns_override_ip.is_some(),
                s.kind(),
            ),
            // Never under the DNS override (http(s) only), so only the host decides.
            Target::Tcp { host, .. } => internet_dependent(host, false, s.kind()),
            Target::Docker { .. } => false,
        })
        .collect();
    let mut engine = AlertEngine::with_policy(
        config.status_change_threshold,
        AlertPolicy {
            reminder_ms: config
                .alert_reminder
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            maintenance: config.maintenance.clone(),
        },
    );
    let mut certs = CertWatch::new(config.tls_expiry_warn_days);
    resume(
        &store,
        &mut engine,
        &mut certs,
        &dispatcher,
        &config,
        &probes,
    )
    .await;

    tracing::info!(
        services = config.services.len(),
        interval_secs = config.loop_interval.as_secs_f64(),
        timeout_secs = config.service_timeout.as_secs_f64(),
        store = %store_name,
        "agent started"
    );
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }

    let interval_ms = i64::try_from(config.loop_interval.as_millis()).unwrap_or(i64::MAX);
    let mut result = Ok(());
    let mut faults = FaultWatch::default();
    loop {
        let tick_ms = if options.once {
            jiff::Timestamp::now().as_millisecond()
        } else {
            let now_ms = jiff::Timestamp::now().as_millisecond();
            let tick = next_tick_ms(now_ms, interval_ms);
            let wait = Duration::from_millis(u64::try_from(tick - now_ms).unwrap_or(0));
            tokio::select! {
                () = tokio::time::sleep(wait) => tick,
                () = shutdown.cancelled() => break,
            }
        };

        // A cycle interrupted by shutdown is abandoned whole: nothing of it is written.
        let cycle = tokio::select! {
            cycle = probes.run_cycle() => cycle,
            () = shutdown.cancelled() => {
                tracing::info!("shutdown during a cycle: the cycle is abandoned");
                break;
            }
        };

        faults.observe(&cycle, &nofile);
        let mut alerts = process_alerts(&mut engine, &cycle, &dependent, &probes, &config);
        alerts.extend(certificate_alerts(&mut certs, &cycle, &config));
        for alert in &alerts {
            tracing::warn!(item = %alert.item, title = %alert.title, "alert");
        }
        tracing::info!("{}", summary_line(&cycle));
        if let Some(observer) = &observer {
            observer(&cycle);
        }
        store.record_cycle(cycle, alerts.clone());
        for alert in alerts {
            dispatcher.dispatch(alert);
        }

        if options.once {
            let report = store.sync().await;
            if report.pending > 0 {
                result = Err(AgentError::NotPersisted {
                    path: store_name.clone(),
                    reason: report.last_error.unwrap_or_else(|| "unknown".to_owned()),
                });
            }
            break;
        }

        let now_ms = jiff::Timestamp::now().as_millisecond();
        let missed = missed_ticks(tick_ms, now_ms, interval_ms);
        if missed > 0 {
            tracing::warn!(
                missed,
                "the cycle overran its interval; skipping missed ticks"
            );
        }
    }

    dispatcher.shutdown(Duration::from_secs(5)).await;
    // The dispatcher is gone, so the channel closes once its last results are in: let the
    // forwarder hand them all to the writer (bounded, in case a sender were still alive).
    let abort = forwarder.abort_handle();
    if tokio::time::timeout(Duration::from_secs(2), forwarder)
        .await
        .is_err()
    {
        tracing::warn!("alert delivery results still pending at shutdown were not recorded");
        abort.abort();
    }
    let store = match Arc::try_unwrap(store) {
        Ok(store) => store,
        Err(_) => return result,
    };
    let report = store.stop().await;
    if report.pending > 0 {
        tracing::error!(pending = report.pending, "exiting with unwritten cycles");
    }
    tracing::info!("agent stopped");
    result
}

/// Logs the open-file limit the agent runs with, and warns when it is too low for the checks
/// that run at once.
fn log_nofile_limit(limit: &crate::probes::NofileLimit, concurrent_checks: usize) {
    let show = |v: Option<u64>| v.map_or("unlimited".to_owned(), |n| n.to_string());
    if limit.soft != limit.soft_before {
        tracing::info!(
            from = %show(limit.soft_before),
            to = %show(limit.soft),
            "raised the open-file limit to the hard limit"
        );
    }
    if !limit.suffices(concurrent_checks) {
        tracing::warn!(
            soft = %show(limit.soft),
            hard = %show(limit.hard),
            needed = crate::probes::NofileLimit::needed(concurrent_checks),
            "the open-file limit is too low for {concurrent_checks} concurrent checks: checks that \
             find no descriptor are recorded as unknown and never alert; raise the hard limit \
             (systemd LimitNOFILE=, docker run --ulimit nofile=N:N, ulimit -Hn) or lower \
             CHECK_CONCURRENCY"
        );
    }
}

/// One warning per episode of checks the agent itself could not run, and one line when they
/// run normally again: a cycle of 2,000 failed checks must not log 2,000 lines.
#[derive(Debug, Default)]
struct FaultWatch {
    active: bool,
}

impl FaultWatch {
    fn observe(&mut self, cycle: &CycleRecord, limit: &crate::probes::NofileLimit) {
        let faulty: Vec<&str> = cycle
            .services
            .iter()
            .filter(|s| s.outcome.agent_fault)
            .filter_map(|s| s.outcome.reason.as_deref())
            .collect();
        if faulty.is_empty() {
            if self.active {
                self.active = false;
                tracing::info!("every check ran again: the agent's own fault has cleared");
            }
            return;
        }
        if self.active {
            return;
        }
        self.active = true;
        let no_fds = faulty.contains(&crate::probes::limits::FAULT_NO_FDS);
        let show = |v: Option<u64>| v.map_or("unlimited".to_owned(), |n| n.to_string());
        tracing::warn!(
            checks = faulty.len(),
            reason = faulty[0],
            soft_limit = %show(limit.soft),
            hard_limit = %show(limit.hard),
            "{}",
            if no_fds {
                "checks could not run because the agent ran out of file descriptors; they are \
                 recorded as unknown and do not alert. Fix: raise the agent's open-file limit \
                 (systemd LimitNOFILE=, docker run --ulimit nofile=N:N, ulimit -Hn) or lower \
                 CHECK_CONCURRENCY"
            } else {
                "checks could not run because of the agent itself; they are recorded as unknown \
                 and do not alert"
            }
        );
    }
}

/// Before the first cycle: the alert engine starts from the stored state of every item, and the
/// alerts a previous run left undelivered are redelivered or given up (the outbox).
async fn resume(
    store: &StoreTask,
    engine: &mut AlertEngine,
    certs: &mut CertWatch,
    dispatcher: &AlertDispatcher,
    config: &AgentConfig,
    probes: &Probes,
) {
    let now = jiff::Timestamp::now();
    let max_age = config.alert_redeliver_max_age;
    let request = ResumeRequest {
        now_ms: now.as_millisecond(),
        now_text: iso_timestamp(&now.to_zoned_datetime(config.tz.clone())),
        redeliver_max_age_ms: i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX),
        give_up_reason: format!(
            "given up after a restart: undelivered for more than {} s",
            max_age.as_secs()
        ),
        services: config.services.iter().map(|s| s.name.clone()).collect(),
        window: config.status_change_threshold,
    };
    let resumed = match store.resume(request).await {
        Ok(resumed) => resumed,
        Err(error) => {
            tracing::warn!(
                %error,
                "cannot read the stored state: alert states start from the first observation, \
                 undelivered alerts wait for the next start"
            );
            return;
        }
    };
    let services_known = config
        .services
        .iter()
        .zip(&resumed.services)
        .filter(|(spec, history)| engine.resume_service(&spec.name, history))
        .count();
    for (spec, history) in config.services.iter().zip(&resumed.services) {
        if let Some((not_after_ms, checked_ms)) = history.cert {
            certs.resume(&spec.name, not_after_ms, checked_ms);
        }
    }
    let worker_known = probes.heartbeat_enabled() && engine.resume_worker(&resumed.worker);
    let outbox = resumed.outbox;
    tracing::info!(
        services_known,
        worker_known,
        redelivering = outbox.redeliver.len(),
        given_up = outbox.given_up,
        "resumed from the stored state"
    );
    if outbox.given_up > 0 {
        tracing::warn!(
            given_up = outbox.given_up,
            max_age_secs = max_age.as_secs(),
            "undelivered alerts too old to send after the restart were given up"
        );
    }
    dispatcher.redeliver_pending(outbox.redeliver);
}

/// The certificate expiry alerts of a cycle: each https answer's leaf certificate against
/// `TLS_EXPIRY_WARN_DAYS` (see [`CertWatch`]).
fn certificate_alerts(
    certs: &mut CertWatch,
    cycle: &CycleRecord,
    config: &AgentConfig,
) -> Vec<AlertRecord> {
    let now = jiff::Timestamp::from_millisecond(cycle.timestamp_ms)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .to_zoned_datetime(config.tz.clone());
    let time_text = alert_time_text(&now);
    cycle
        .services
        .iter()
        .filter_map(|s| {
            let not_after_ms = s.outcome.cert_expires_ms?;
            certs.observe(&s.name, not_after_ms, cycle.timestamp_ms, &time_text)
        })
        .map(|d| d.into_record(uuid::Uuid::new_v4().to_string(), iso_timestamp(&now)))
        .collect()
}

fn process_alerts(
    engine: &mut AlertEngine,
    cycle: &CycleRecord,
    dependent: &[bool],
    probes: &Probes,
    config: &AgentConfig,
) -> Vec<AlertRecord> {
    let observations: Vec<ServiceObservation<'_>> = cycle
        .services
        .iter()
        .zip(dependent)
        .map(|(s, dep)| ServiceObservation {
            name: &s.name,
            kind: s.kind,
            outcome: &s.outcome,
            internet_dependent: *dep,
        })
        .collect();
    let observation = match (cycle.internet.online, cycle.worker_status) {
        (false, _) => WorkerObservation::NoResponse {
            cause: NoResponseCause::NoInternet,
        },
        (true, Some(code)) => WorkerObservation::Code(code),
        (true, None) => WorkerObservation::NoResponse {
            cause: NoResponseCause::Unreachable,
        },
    };
    let worker = probes.heartbeat_enabled().then_some(observation);
    let now = jiff::Timestamp::from_millisecond(cycle.timestamp_ms)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .to_zoned_datetime(config.tz.clone());
    let time_text = alert_time_text(&now);
    let drafts = engine.process(&CycleInput {
        services: &observations,
        worker,
        internet_online: cycle.internet.online,
        time_text: &time_text,
        now_ms: cycle.timestamp_ms,
    });
    drafts
        .into_iter()
        .map(|d| d.into_record(uuid::Uuid::new_v4().to_string(), iso_timestamp(&now)))
        .collect()
}

/// Services listed one by one up to this many; beyond it only the unhealthy ones are named.
const LIST_ALL_UP_TO: usize = 20;
const LIST_BAD_UP_TO: usize = 20;

/// The one-line summary of a cycle.
pub fn summary_line(c: &CycleRecord) -> String {
    let mut line = format!("cycle {} ms |", c.cycle_duration_ms);
    let healthy = c
        .services
        .iter()
        .filter(|s| s.outcome.status.is_healthy())
        .count();
    let list_all = c.services.len() <= LIST_ALL_UP_TO;
    if !list_all {
        let _ = write!(line, " {healthy}/{} healthy", c.services.len());
    }
    let mut bad_listed = 0;
    for s in &c.services {
        let o = &s.outcome;
        if o.status.is_healthy() {
            if list_all {
                match o.latency_ms {
                    Some(ms) => {
                        let _ = write!(line, " {} {ms:.1}ms", s.name);
                    }
                    None => {
                        let _ = write!(line, " {} ok", s.name);
                    }
                }
            }
        } else {
            bad_listed += 1;
            if bad_listed > LIST_BAD_UP_TO {
                continue;
            }
            let _ = write!(
                line,
                " {} {} ({})",
                s.name,
                o.status,
                o.reason.as_deref().unwrap_or("-")
            );
        }
    }
    if bad_listed > LIST_BAD_UP_TO {
        let _ = write!(line, " …and {} more unhealthy", bad_listed - LIST_BAD_UP_TO);
    }
    let _ = write!(
        line,
        " | internet {} | worker {} | containers {}",
        match (c.internet.online, c.internet.ping_ms) {
            (true, Some(ms)) => format!("{ms:.1}ms"),
            (true, None) => "up".to_owned(),
            (false, _) => "DOWN".to_owned(),
        },
        c.worker_status
            .map_or_else(|| "-".to_owned(), |code| code.to_string()),
        c.container_count
    );
    line
}
