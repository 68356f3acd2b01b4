//! One monitoring cycle: host metrics, every check concurrently, the heartbeat, and the record
//! that goes to the store. Owns no state across cycles except the long-lived probes.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use hb_config::{AgentConfig, ServiceSpec, Target};
use hb_core::{CheckOutcome, CycleRecord, HostMetrics, InternetCheck, ServiceResult};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::notify::heartbeat::HeartbeatSender;
use crate::probes::docker::DockerProber;
use crate::probes::host::HostCollector;
use crate::probes::http::{HttpProber, HttpProberSettings};
use crate::probes::tcp::TcpProber;

/// Everything a cycle needs, built once at start-up and shared by every cycle.
pub struct Probes {
    services: Arc<Vec<ServiceSpec>>,
    http: HttpProber,
    tcp: TcpProber,
    docker: DockerProber,
    host: Mutex<HostCollector>,
    heartbeat: Option<HeartbeatSender>,
    ping_url: String,
    limit: Arc<Semaphore>,
    tz: jiff::tz::TimeZone,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot build the HTTP checker: {0}")]
    Http(String),
    #[error("cannot build the heartbeat sender: {0}")]
    Heartbeat(String),
}

impl Probes {
    pub fn new(config: &AgentConfig) -> Result<Probes, SetupError> {
        let http = HttpProber::new(&HttpProberSettings::from_config(config))
            .map_err(|e| SetupError::Http(e.to_string()))?;
        let heartbeat = match &config.heartbeat_url {
            Some(url) => Some(
                HeartbeatSender::with_options(
                    url.clone(),
                    config.secret_key.clone(),
                    crate::notify::heartbeat::HEARTBEAT_TIMEOUT,
                    config.force_ipv4,
                )
                .map_err(|e| SetupError::Heartbeat(e.to_string()))?,
            ),
            None => None,
        };
        let mut host = HostCollector::new(&config.host_disk_path);
        // Prime the CPU counters so the first cycle's CPU % covers the time until it runs.
        host.sample();
        Ok(Probes {
            services: Arc::new(config.services.clone()),
            http,
            tcp: TcpProber::new(config.service_timeout, config.force_ipv4),
            docker: DockerProber::new(&config.docker_host, config.service_timeout),
            host: Mutex::new(host),
            heartbeat,
            ping_url: config.ping_url.clone(),
            limit: Arc::new(Semaphore::new(config.check_concurrency)),
            tz: config.tz.clone(),
        })
    }

    pub fn heartbeat_enabled(&self) -> bool {
        self.heartbeat.is_some()
    }

    /// Runs one cycle and returns its record (not yet persisted).
    pub async fn run_cycle(self: &Arc<Self>) -> CycleRecord {
        let started = Instant::now();
        let now = jiff::Timestamp::now();
        let host = self.sample_host();

        let mut set = JoinSet::new();
        for index in 0..self.services.len() {
            let probes = Arc::clone(self);
            set.spawn(async move {
                let outcome = probes.check_service(index).await;
                (index, outcome)
            });
        }
        let internet = {
            let probes = Arc::clone(self);
            tokio::spawn(async move {
                let _permit = probes.limit.acquire().await;
                probes.http.internet(&probes.ping_url).await
            })
        };
        let containers = {
            let probes = Arc::clone(self);
            tokio::spawn(async move { probes.docker.running_count().await })
        };

        let mut outcomes: Vec<Option<CheckOutcome>> = vec![None; self.services.len()];
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((index, outcome)) => outcomes[index] = Some(outcome),
                Err(e) => tracing::error!(error = %e, "a check task failed"),
            }
        }
        let internet = internet.await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "the internet check task failed");
            InternetCheck::default()
        });
        let container_count = containers.await.unwrap_or(-1);

        let services: Vec<ServiceResult> = self
            .services
            .iter()
            .zip(outcomes)
            .map(|(spec, outcome)| ServiceResult {
                name: spec.name.clone(),
                kind: spec.kind(),
                url: spec.display_url.clone(),
                outcome: outcome.unwrap_or_else(|| {
                    CheckOutcome::agent_fault("Agent fault: the check task failed")
                }),
            })
            .collect();

        let worker_status = match (&self.heartbeat, internet.online) {
            (Some(sender), true) => sender.send(&services).await,
            _ => None,
        };

        let zoned = now.to_zoned_datetime(self.tz.clone());
        CycleRecord {
            id: uuid::Uuid::new_v4().to_string(),
            timestamp: iso_timestamp(&zoned),
            timestamp_ms: now.as_millisecond(),
            host,
            container_count,
            internet,
            worker_status,
            cycle_duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            services,
        }
    }

    async fn check_service(&self, index: usize) -> CheckOutcome {
        let Ok(_permit) = self.limit.acquire().await else {
            return CheckOutcome::agent_fault(crate::probes::limits::FAULT_SHUTTING_DOWN);
        };
        match &self.services[index].target {
            Target::Http { url, headers } => self.http.check(url, headers).await,
            Target::Docker { container } => self.docker.check(container).await,
            Target::Tcp { host, port } => self.tcp.check(host, *port).await,
        }
    }

    fn sample_host(&self) -> HostMetrics {
        match self.host.lock() {
            Ok(mut host) => host.sample(),
            Err(poisoned) => poisoned.into_inner().sample(),
        }
    }
}

/// `2026-11-29T15:41:02.123456-05:00`: microseconds and the zone's offset, as the original.
pub fn iso_timestamp(zoned: &jiff::ZonedDateTime) -> String {
    zoned.strftime("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string()
}

/// `2026-11-29 15:41:02`, the time shown in alert texts.
pub fn alert_time_text(zoned: &jiff::ZonedDateTime) -> String {
    zoned.strftime("%Y-%m-%d %H:%M:%S").to_string()
}
