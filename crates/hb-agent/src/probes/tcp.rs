//! `tcp://host:port` checks (issue 16): healthy when a connection opens within the timeout.
//! Sends and reads nothing (the connection is closed as soon as it opens); owns no state across
//! cycles and is never sent through the DNS override, which is an HTTP `Host` trick.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hb_core::CheckOutcome;

/// The reason when `FORCE_IPV4` leaves no address to connect to.
pub const NO_IPV4_ADDRESS: &str = "No IPv4 address (FORCE_IPV4 is on)";

/// Checks TCP services. Cheap to clone; holds only settings.
#[derive(Debug, Clone)]
pub struct TcpProber {
    timeout: Duration,
    ipv4_only: bool,
}

impl TcpProber {
    /// `timeout` bounds the whole check (resolution and every connection attempt);
    /// `ipv4_only` is `FORCE_IPV4`.
    pub fn new(timeout: Duration, ipv4_only: bool) -> TcpProber {
        TcpProber { timeout, ipv4_only }
    }

    /// Resolves `host` (an IP address is used as it is), keeps only IPv4 addresses when forced,
    /// and tries them in order until one accepts. Latency runs from the start of the check to
    /// the open connection, as an HTTP check's runs from the start of the request (resolution
    /// included). Never returns an error: every failure is an outcome.
    pub async fn check(&self, host: &str, port: u16) -> CheckOutcome {
        self.check_within(host, port, self.timeout).await
    }

    /// [`check`](Self::check) with the service's own timeout (`SERVICE_TIMEOUT_<name>`).
    pub async fn check_within(&self, host: &str, port: u16, timeout: Duration) -> CheckOutcome {
        let started = Instant::now();
        match tokio::time::timeout(timeout, self.connect(host, port)).await {
            Err(_elapsed) => CheckOutcome::timeout(),
            Ok(Ok(())) => CheckOutcome::healthy(Some(started.elapsed().as_secs_f64() * 1000.0)),
            Ok(Err(outcome)) => outcome,
        }
    }

    async fn connect(&self, host: &str, port: u16) -> Result<(), CheckOutcome> {
        let addrs = self.addresses(host, port).await?;
        let mut last = None;
        for addr in addrs {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(stream) => {
                    drop(stream);
                    return Ok(());
                }
                Err(e) => {
                    let outcome = classify(&e);
                    if outcome.agent_fault {
                        return Err(outcome);
                    }
                    tracing::trace!(%addr, error = %e, "tcp connect failed");
                    last = Some(outcome);
                }
            }
        }
        Err(last.unwrap_or_else(|| CheckOutcome::down("DNS resolution failed")))
    }

    async fn addresses(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, CheckOutcome> {
        let all: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => match tokio::net::lookup_host((host, port)).await {
                Ok(found) => found.collect(),
                Err(e) => {
                    if let Some(fault) = super::limits::agent_fault_of(&e) {
                        return Err(CheckOutcome::agent_fault(fault));
                    }
                    tracing::trace!(host, error = %e, "tcp target did not resolve");
                    return Err(CheckOutcome::down("DNS resolution failed"));
                }
            },
        };
        if all.is_empty() {
            return Err(CheckOutcome::down("DNS resolution failed"));
        }
        let kept = filter_ipv4(all, self.ipv4_only);
        if kept.is_empty() {
            return Err(CheckOutcome::down(NO_IPV4_ADDRESS));
        }
        Ok(kept)
    }
}

/// Only the IPv4 addresses (an IPv4-mapped IPv6 one counts as IPv4) when `ipv4_only`.
fn filter_ipv4(addrs: Vec<SocketAddr>, ipv4_only: bool) -> Vec<SocketAddr> {
    if !ipv4_only {
        return addrs;
    }
    addrs
        .into_iter()
        .filter_map(|a| match a.ip() {
            IpAddr::V4(_) => Some(a),
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(|v4| SocketAddr::new(IpAddr::V4(v4), a.port())),
        })
        .collect()
}

/// A failed connect onto the taxonomy; the agent's own faults (no descriptors, no memory, no
/// local ports) first, since they say nothing about the service.
fn classify(e: &std::io::Error) -> CheckOutcome {
    if let Some(fault) = super::limits::agent_fault_of(e) {
        return CheckOutcome::agent_fault(fault);
    }
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => CheckOutcome::down("Connection refused"),
        K::ConnectionReset | K::ConnectionAborted => CheckOutcome::down("Connection reset"),
        K::HostUnreachable => CheckOutcome::down("Host unreachable"),
        K::NetworkUnreachable => CheckOutcome::down("Network unreachable"),
        K::TimedOut => CheckOutcome::timeout(),
        _ => CheckOutcome::down(format!("Connection failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hb_core::ServiceStatus;

    #[test]
    fn ipv4_filter() {
        let addrs: Vec<SocketAddr> = ["127.0.0.1:5", "[::1]:5", "[::ffff:10.0.0.1]:5"]
            .iter()
            .map(|a| a.parse().expect("addr"))
            .collect();
        let kept: Vec<String> = filter_ipv4(addrs.clone(), true)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(kept, ["127.0.0.1:5", "10.0.0.1:5"]);
        assert_eq!(filter_ipv4(addrs.clone(), false), addrs);
    }

    #[test]
    fn connect_errors_follow_the_taxonomy() {
        use rustix::io::Errno;
        let table = [
            (
                Errno::CONNREFUSED,
                ServiceStatus::Down,
                "Connection refused",
                false,
            ),
            (
                Errno::CONNRESET,
                ServiceStatus::Down,
                "Connection reset",
                false,
            ),
            (
                Errno::HOSTUNREACH,
                ServiceStatus::Down,
                "Host unreachable",
                false,
            ),
            (
                Errno::NETUNREACH,
                ServiceStatus::Down,
                "Network unreachable",
                false,
            ),
            (Errno::TIMEDOUT, ServiceStatus::Timeout, "Timeout", false),
            (
                Errno::MFILE,
                ServiceStatus::Unknown,
                super::super::limits::FAULT_NO_FDS,
                true,
            ),
            (
                Errno::ADDRNOTAVAIL,
                ServiceStatus::Unknown,
                super::super::limits::FAULT_NO_PORTS,
                true,
            ),
        ];
        for (errno, status, reason, fault) in table {
            let o = classify(&std::io::Error::from_raw_os_error(errno.raw_os_error()));
            assert_eq!(o.status, status, "{errno:?}");
            assert_eq!(o.reason.as_deref(), Some(reason), "{errno:?}");
            assert_eq!(o.agent_fault, fault, "{errno:?}");
        }
    }
}
