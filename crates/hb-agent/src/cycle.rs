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
    /// Per service: the limit it shares with the other services of its target, if the target
    /// has more services than `CHECKS_PER_TARGET` allows at once.
    target_limits: Vec<Option<Arc<Semaphore>>>,
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
            target_limits: target_limits(&config.services, config.checks_per_target),
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
        // The target's turn first, then a global permit: a check waiting for its target holds
        // nothing the other targets need. The probe starts its clock and its timeout only
        // once both are held, so waiting for a turn is neither latency nor a timeout.
        let _target_turn = match &self.target_limits[index] {
            Some(limit) => match limit.acquire().await {
                Ok(permit) => Some(permit),
                Err(_) => {
                    return CheckOutcome::agent_fault(crate::probes::limits::FAULT_SHUTTING_DOWN);
                }
            },
            None => None,
        };
        let Ok(_permit) = self.limit.acquire().await else {
            return CheckOutcome::agent_fault(crate::probes::limits::FAULT_SHUTTING_DOWN);
        };
        let spec = &self.services[index];
        match &spec.target {
            Target::Http { url, headers } => {
                self.http.check_with(url, headers, &spec.options).await
            }
            Target::Docker { container } => self.docker.check(container).await,
            Target::Tcp { host, port } => match spec.options.timeout {
                Some(timeout) => self.tcp.check_within(host, *port, timeout).await,
                None => self.tcp.check(host, *port).await,
            },
        }
    }

    fn sample_host(&self) -> HostMetrics {
        match self.host.lock() {
            Ok(mut host) => host.sample(),
            Err(poisoned) => poisoned.into_inner().sample(),
        }
    }
}

/// The server a check talks to, as far as its load is concerned: an http(s) URL's host and port
/// (the URL's, not `INTERNAL_DNS_OVERRIDE_IP`'s: the override points at a reverse proxy that
/// spreads the names over their own back ends), or a `tcp://` host and port. `docker:` checks
/// go to the local engine and have no target here.
fn target_key(target: &Target) -> Option<(String, u16)> {
    match target {
        Target::Http { url, .. } => Some((
            url.host_str()?.to_ascii_lowercase(),
            url.port_or_known_default()?,
        )),
        Target::Tcp { host, port } => Some((host.to_ascii_lowercase(), *port)),
        Target::Docker { .. } => None,
    }
}

/// The most checks a cycle can have in flight at once: every service, within the per-target
/// caps, within `concurrency`. The open-file limit is judged by this number.
pub fn most_in_flight(services: &[ServiceSpec], per_target: usize, concurrency: usize) -> usize {
    let mut sizes: std::collections::HashMap<(String, u16), usize> = Default::default();
    let mut unkeyed = 0;
    for service in services {
        match target_key(&service.target) {
            Some(key) => *sizes.entry(key).or_default() += 1,
            None => unkeyed += 1,
        }
    }
    let capped: usize = sizes
        .values()
        .map(|&n| {
            if per_target == 0 {
                n
            } else {
                n.min(per_target)
            }
        })
        .sum();
    (capped + unkeyed).min(concurrency)
}

/// One shared limit of `per_target` checks in flight for each target with more services than
/// that; `None` for the others (and for every service when `per_target` is 0).
fn target_limits(services: &[ServiceSpec], per_target: usize) -> Vec<Option<Arc<Semaphore>>> {
    if per_target == 0 {
        return vec![None; services.len()];
    }
    let keys: Vec<Option<(String, u16)>> = services.iter().map(|s| target_key(&s.target)).collect();
    let mut sizes: std::collections::HashMap<&(String, u16), usize> = Default::default();
    for key in keys.iter().flatten() {
        *sizes.entry(key).or_default() += 1;
    }
    let mut shared: std::collections::HashMap<&(String, u16), Arc<Semaphore>> = Default::default();
    keys.iter()
        .map(|key| {
            let key = key.as_ref()?;
            (sizes[key] > per_target).then(|| {
                Arc::clone(
                    shared
                        .entry(key)
                        .or_insert_with(|| Arc::new(Semaphore::new(per_target))),
                )
            })
        })
        .collect()
}

/// `2026-11-29T15:41:02.123456-05:00`: microseconds and the zone's offset, as the original.
pub fn iso_timestamp(zoned: &jiff::ZonedDateTime) -> String {
    zoned.strftime("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string()
}

/// `2026-11-29 15:41:02`, the time shown in alert texts.
pub fn alert_time_text(zoned: &jiff::ZonedDateTime) -> String {
    zoned.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, url: &str) -> ServiceSpec {
        let target = if let Some(container) = url.strip_prefix("docker:") {
            Target::Docker {
                container: container.to_owned(),
            }
        } else if let Some(rest) = url.strip_prefix("tcp://") {
            let (host, port) = rest.rsplit_once(':').expect("port");
            Target::Tcp {
                host: host.to_owned(),
                port: port.parse().expect("port"),
            }
        } else {
            Target::Http {
                url: url.parse().expect("url"),
                headers: Vec::new(),
            }
        };
        ServiceSpec {
            name: name.to_owned(),
            target,
            display_url: url.to_owned(),
            options: Default::default(),
        }
    }

    fn same(a: &Option<Arc<Semaphore>>, b: &Option<Arc<Semaphore>>) -> bool {
        matches!((a, b), (Some(a), Some(b)) if Arc::ptr_eq(a, b))
    }

    #[test]
    fn services_share_a_limit_by_url_host_and_port_only_when_they_exceed_it() {
        let services = [
            spec("a", "http://App.example:8080/a"),
            spec("b", "http://app.example:8080/b"),
            spec("c", "http://app.example:8080/c"),
            spec("d", "https://app.example/d"),
            spec("e", "https://app.example:443/e"),
            spec("f", "http://other.example/"),
            spec("g", "tcp://app.example:8080"),
            spec("h", "docker:web"),
            spec("i", "docker:web"),
            spec("j", "docker:web"),
        ];
        let limits = target_limits(&services, 2);
        // app.example:8080 has four (three http, one tcp): one shared limit of 2.
        assert!(same(&limits[0], &limits[1]) && same(&limits[1], &limits[2]));
        assert!(same(&limits[0], &limits[6]));
        assert_eq!(limits[0].as_ref().map(|l| l.available_permits()), Some(2));
        // https://app.example and :443 are one target of two: within the limit, none needed.
        assert!(limits[3].is_none() && limits[4].is_none());
        assert!(limits[5].is_none());
        // docker: checks go to the local engine, not to a target.
        assert!(limits[7..].iter().all(Option::is_none));
        // 0 turns the limit off.
        assert!(target_limits(&services, 0).iter().all(Option::is_none));
    }

    #[test]
    fn the_checks_in_flight_are_bounded_by_the_per_target_caps_and_the_concurrency() {
        let mut services: Vec<ServiceSpec> = (0..10)
            .map(|i| spec(&format!("s{i}"), &format!("http://one.example/{i}")))
            .collect();
        services.push(spec("t", "tcp://two.example:22"));
        services.push(spec("d", "docker:web"));
        // one.example: 4 of its 10; two.example: 1; docker: 1.
        assert_eq!(most_in_flight(&services, 4, 500), 6);
        assert_eq!(most_in_flight(&services, 0, 500), 12);
        assert_eq!(most_in_flight(&services, 4, 3), 3);
    }
}
