//! HTTP(S) service checks and the internet check (SPEC §3.1–3.3): one long-lived client pair
//! built at start-up, `HEAD` with a `GET` fallback, the status taxonomy and the DNS override,
//! and each service's own options (timeout, healthy codes, method, keyword). Owns no schedule;
//! reads a response body only for a keyword check.

use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use hb_config::{AgentConfig, CheckOptions, HttpMethod, KEYWORD_BODY_LIMIT, Secret};
use hb_core::{CheckOutcome, InternetCheck, ServiceStatus};
use reqwest::header::{HOST, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};

/// Connections idle for less than this are kept for the next cycle.
const MIN_POOL_IDLE: Duration = Duration::from_secs(90);

/// What the HTTP prober needs from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpProberSettings {
    /// Per check: no response headers within it means `timeout`.
    pub timeout: Duration,
    /// Connect over IPv4 only (SPEC §3.2).
    pub force_ipv4: bool,
    /// `INTERNAL_DNS_OVERRIDE_IP`: service checks go there over plain HTTP.
    pub dns_override_ip: Option<IpAddr>,
    /// How long an idle keep-alive connection is kept.
    pub pool_idle_timeout: Duration,
}

impl HttpProberSettings {
    pub fn from_config(c: &AgentConfig) -> Self {
        HttpProberSettings {
            timeout: c.service_timeout,
            force_ipv4: c.force_ipv4,
            dns_override_ip: c.dns_override_ip,
            // Must outlive one loop interval, or keep-alive never spans two cycles.
            pool_idle_timeout: MIN_POOL_IDLE.max(c.loop_interval.saturating_mul(3)),
        }
    }
}

/// The probers could not be built: a start-up fault, not a check result.
#[derive(Debug, thiserror::Error)]
pub enum ProbeSetupError {
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),
}

/// Checks HTTP services. Cheap to clone (the clients are reference-counted) and meant to be
/// built once: its connection pool is what gives keep-alive across cycles.
#[derive(Debug, Clone)]
pub struct HttpProber {
    timeout: Duration,
    /// Used for the internet check always, and for services when there is no override.
    direct: reqwest::Client,
    /// Present only with a DNS override: plain HTTP to the override IP.
    overridden: Option<(IpAddr, reqwest::Client)>,
}

impl HttpProber {
    pub fn new(s: &HttpProberSettings) -> Result<HttpProber, ProbeSetupError> {
        // With `rustls-no-provider` a client cannot be built before a provider is installed.
        // Err only means one is already installed, which is what we want.
        let _ = rustls::crypto::ring::default_provider().install_default();

        let direct = base_builder(s, s.force_ipv4)
            .build()
            .map_err(|e| ProbeSetupError::HttpClient(error_chain(&e.without_url())))?;
        let overridden = match s.dns_override_ip {
            None => None,
            Some(ip) => {
                // An IPv6 override cannot be reached from an IPv4 local address; the operator
                // named it explicitly, so it wins over IPv4 enforcement.
                let client = base_builder(s, s.force_ipv4 && ip.is_ipv4())
                    .tls_danger_accept_invalid_certs(true)
                    .build()
                    .map_err(|e| ProbeSetupError::HttpClient(error_chain(&e.without_url())))?;
                Some((ip, client))
            }
        };
        Ok(HttpProber {
            timeout: s.timeout,
            direct,
            overridden,
        })
    }

    /// `HEAD url` with `headers` (SPEC §3.1), sent to the override IP when one is configured
    /// (SPEC §3.2). A `405`/`501` answer to `HEAD` is retried at once with `GET`, and that answer
    /// counts. Never returns an error: every failure is an outcome.
    pub async fn check(&self, url: &url::Url, headers: &[(String, Secret)]) -> CheckOutcome {
        self.check_with(url, headers, &CheckOptions::default())
            .await
    }

    /// [`check`](Self::check) with a service's own options: its timeout, its healthy codes,
    /// its method, and a keyword the body must contain (read with `GET`, at most
    /// [`KEYWORD_BODY_LIMIT`] bytes, within the same timeout). Latency is the time to the
    /// response headers in every case.
    pub async fn check_with(
        &self,
        url: &url::Url,
        headers: &[(String, Secret)],
        options: &CheckOptions,
    ) -> CheckOutcome {
        let mut header_map = match build_headers(headers) {
            Ok(h) => h,
            Err(reason) => return CheckOutcome::unknown(reason),
        };
        let (client, target) = match &self.overridden {
            None => (&self.direct, url.clone()),
            Some((ip, client)) => match override_target(url, *ip) {
                Ok((target, host)) => {
                    header_map.insert(HOST, host);
                    (client, target)
                }
                Err(reason) => return CheckOutcome::unknown(reason),
            },
        };

        let timeout = options.timeout.unwrap_or(self.timeout);
        let deadline = Instant::now() + timeout;
        if options.keyword.is_some() || options.method.is_some() {
            let method = match (options.method, &options.keyword) {
                (Some(HttpMethod::Head), None) => Method::HEAD,
                _ => Method::GET,
            };
            return self
                .check_exactly(client, method, &target, &header_map, deadline, options)
                .await;
        }
        let first = self
            .send(client, Method::HEAD, &target, &header_map, timeout)
            .await;
        match first {
            Ok((code, latency_ms, _))
                if code == StatusCode::METHOD_NOT_ALLOWED
                    || code == StatusCode::NOT_IMPLEMENTED =>
            {
                tracing::trace!(
                    code = code.as_u16(),
                    latency_ms,
                    "HEAD refused, retrying with GET"
                );
                // The retry shares the check's deadline so a check never takes two timeouts.
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return CheckOutcome::timeout();
                }
                match self
                    .send(client, Method::GET, &target, &header_map, left)
                    .await
                {
                    Ok((code, latency_ms, cert)) => {
                        status_outcome(code, latency_ms, options).with_cert(cert)
                    }
                    Err(e) => classify(&e),
                }
            }
            Ok((code, latency_ms, cert)) => {
                status_outcome(code, latency_ms, options).with_cert(cert)
            }
            Err(e) => classify(&e),
        }
    }

    /// One request with the method the service asked for (no HEAD→GET retry), then the
    /// keyword search in the body when there is one and the status counts as healthy.
    async fn check_exactly(
        &self,
        client: &reqwest::Client,
        method: Method,
        url: &url::Url,
        headers: &HeaderMap,
        deadline: Instant,
        options: &CheckOptions,
    ) -> CheckOutcome {
        let left = deadline.saturating_duration_since(Instant::now());
        let (mut response, latency_ms) =
            match self.respond(client, method, url, headers, left).await {
                Ok(answer) => answer,
                Err(e) => return classify(&e),
            };
        let outcome = status_outcome(response.status(), latency_ms, options)
            .with_cert(cert_expiry_ms(&response));
        let Some(keyword) = &options.keyword else {
            return outcome;
        };
        if outcome.status != ServiceStatus::Healthy {
            return outcome;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, body_contains(&mut response, keyword.as_bytes())).await {
            Err(_elapsed) => CheckOutcome::timeout(),
            Ok(Err(e)) => classify(&e),
            Ok(Ok(true)) => outcome,
            Ok(Ok(false)) => CheckOutcome {
                status: ServiceStatus::Error,
                reason: Some(KEYWORD_NOT_FOUND.to_owned()),
                ..outcome
            },
        }
    }

    /// The internet check on `PING_URL`, never overridden: online on 2xx/3xx within the
    /// timeout, with its latency.
    pub async fn internet(&self, ping_url: &str) -> InternetCheck {
        let offline = InternetCheck {
            online: false,
            ping_ms: None,
        };
        let Ok(url) = url::Url::parse(ping_url) else {
            tracing::debug!("PING_URL does not parse as a URL");
            return offline;
        };
        match self
            .send(
                &self.direct,
                Method::HEAD,
                &url,
                &HeaderMap::new(),
                self.timeout,
            )
            .await
        {
            Ok((code, latency_ms, _)) if code.is_success() || code.is_redirection() => {
                InternetCheck {
                    online: true,
                    ping_ms: Some(latency_ms),
                }
            }
            Ok((code, _, _)) => {
                tracing::debug!(
                    code = code.as_u16(),
                    "internet check answered with a failure status"
                );
                offline
            }
            Err(e) => {
                tracing::debug!(reason = ?classify(&e).reason, "internet check failed");
                offline
            }
        }
    }

    /// Sends one request and returns its status, the time to its headers in ms and the leaf
    /// certificate's expiry. The response is dropped unread: for `HEAD` that leaves the
    /// connection reusable.
    async fn send(
        &self,
        client: &reqwest::Client,
        method: Method,
        url: &url::Url,
        headers: &HeaderMap,
        timeout: Duration,
    ) -> Result<(StatusCode, f64, Option<i64>), reqwest::Error> {
        let (response, latency_ms) = self.respond(client, method, url, headers, timeout).await?;
        Ok((response.status(), latency_ms, cert_expiry_ms(&response)))
    }

    /// Sends one request; the response (its body unread) and the time to its headers in ms.
    async fn respond(
        &self,
        client: &reqwest::Client,
        method: Method,
        url: &url::Url,
        headers: &HeaderMap,
        timeout: Duration,
    ) -> Result<(reqwest::Response, f64), reqwest::Error> {
        let request = client
            .request(method, url.clone())
            .headers(headers.clone())
            .timeout(timeout);
        let start = Instant::now();
        let response = request.send().await?;
        Ok((response, start.elapsed().as_secs_f64() * 1000.0))
    }
}

/// The reason of a keyword check whose text is not in the body's first MiB.
pub const KEYWORD_NOT_FOUND: &str = "Keyword not found";

/// The outcome of an answer's status: `SERVICE_EXPECT_<name>` decides when set, else SPEC §3.1.
fn status_outcome(code: StatusCode, latency_ms: f64, options: &CheckOptions) -> CheckOutcome {
    let code = code.as_u16();
    CheckOutcome::http_answer(code, latency_ms, options.healthy_code(code))
}

/// Reads the body chunk by chunk, at most [`KEYWORD_BODY_LIMIT`] bytes, until `needle` shows
/// up (also across a chunk boundary). Stops reading as soon as it is found.
async fn body_contains(
    response: &mut reqwest::Response,
    needle: &[u8],
) -> Result<bool, reqwest::Error> {
    let mut seen: Vec<u8> = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = KEYWORD_BODY_LIMIT - seen.len();
        let take = &chunk[..chunk.len().min(room)];
        // Only the tail that could start a match needs to be searched again.
        let from = seen.len().saturating_sub(needle.len().saturating_sub(1));
        seen.extend_from_slice(take);
        if seen[from..].windows(needle.len()).any(|w| w == needle) {
            return Ok(true);
        }
        if seen.len() >= KEYWORD_BODY_LIMIT {
            return Ok(false);
        }
    }
    Ok(false)
}

/// The leaf certificate's `notAfter` (epoch ms) of an https response; `None` for plain HTTP
/// (also behind the DNS override) or a certificate that does not parse.
fn cert_expiry_ms(response: &reqwest::Response) -> Option<i64> {
    let der = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()?
        .peer_certificate()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    cert.validity().not_after.timestamp().checked_mul(1000)
}

fn base_builder(s: &HttpProberSettings, ipv4_only: bool) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder()
        // reqwest honours HTTP_PROXY even without default features; a proxy would make
        // every latency and the DNS override meaningless.
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        // The leaf certificate of every https answer, for its expiry (TLS_EXPIRY_WARN_DAYS).
        .tls_info(true)
        .pool_idle_timeout(s.pool_idle_timeout)
        .user_agent(concat!("heartbeat-monitor/", env!("CARGO_PKG_VERSION")));
    if ipv4_only {
        builder.local_address(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    } else {
        builder
    }
}

fn build_headers(headers: &[(String, Secret)]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("Invalid header name {name:?}"))?;
        // The value is a secret: name the header, never the value.
        let mut header_value = HeaderValue::from_str(value.expose())
            .map_err(|_| format!("Invalid value for header {name:?}"))?;
        header_value.set_sensitive(true);
        map.append(header_name, header_value);
    }
    Ok(map)
}

/// The override target (SPEC §3.2): plain HTTP to `ip` on the URL's port (80 for https without
/// one), and the `Host` header the URL would have produced (its port only when explicit).
fn override_target(url: &url::Url, ip: IpAddr) -> Result<(url::Url, HeaderValue), String> {
    let host = url
        .host_str()
        .ok_or_else(|| "URL has no host".to_string())?;
    let host_header = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let port = url.port().unwrap_or(80);
    let mut target = url.clone();
    target
        .set_scheme("http")
        .map_err(|()| "cannot rewrite the URL to plain HTTP".to_string())?;
    target
        .set_ip_host(ip)
        .map_err(|()| "cannot point the URL at the override IP".to_string())?;
    target
        .set_port(Some(port))
        .map_err(|()| "cannot set the override port".to_string())?;
    let host_value =
        HeaderValue::from_str(&host_header).map_err(|_| "URL host is not a valid Host header")?;
    Ok((target, host_value))
}

/// Maps a failed request onto the taxonomy. Reasons are built from the cause chain only:
/// `reqwest::Error`'s own `Display` carries the URL, which may carry credentials.
fn classify(err: &reqwest::Error) -> CheckOutcome {
    if let Some(fault) = super::limits::agent_fault_of(err) {
        return CheckOutcome::agent_fault(fault);
    }
    if err.is_timeout() {
        return CheckOutcome::timeout();
    }
    if err.is_builder() {
        return CheckOutcome::unknown(format!("Invalid request: {}", root_cause(err)));
    }
    let mut cause: Option<&(dyn StdError + 'static)> = err.source();
    while let Some(e) = cause {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return CheckOutcome::down(format!("TLS error: {tls}"));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            match io.kind() {
                K::ConnectionRefused => return CheckOutcome::down("Connection refused"),
                K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => {
                    return CheckOutcome::down("Connection reset");
                }
                K::TimedOut => return CheckOutcome::timeout(),
                _ => {}
            }
        }
        let text = e.to_string();
        if text.starts_with("dns error") {
            return CheckOutcome::down("DNS resolution failed");
        }
        if text.contains("connection closed before message completed") {
            return CheckOutcome::down("Connection closed before a response");
        }
        cause = next_cause(e);
    }
    if err.is_connect() {
        CheckOutcome::down(format!("Connection failed: {}", root_cause(err)))
    } else {
        CheckOutcome::down(format!("Request failed: {}", root_cause(err)))
    }
}

/// The next error down the chain. `io::Error::source()` skips its own payload (where the TLS
/// stack puts its `rustls::Error`, sometimes inside a second `io::Error`), so step into it.
fn next_cause<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    if let Some(inner) = e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        return Some(inner);
    }
    e.source()
}

/// The innermost cause's message, which unlike the outer error never names the URL.
fn root_cause(err: &reqwest::Error) -> String {
    let mut last: Option<&(dyn StdError + 'static)> = None;
    let mut cause = err.source();
    while let Some(e) = cause {
        last = Some(e);
        cause = next_cause(e);
    }
    match last {
        Some(e) => e.to_string(),
        None => "unknown cause".to_string(),
    }
}

/// The whole cause chain joined with `->`, for start-up errors (which carry no URL).
fn error_chain(err: &dyn StdError) -> String {
    let mut out = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        out.push_str(" -> ");
        out.push_str(&e.to_string());
        cause = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str, ip: &str) -> (String, String) {
        let url = url::Url::parse(url).expect("test URL parses");
        let ip: IpAddr = ip.parse().expect("test IP parses");
        let (t, host) = override_target(&url, ip).expect("override applies");
        (
            t.to_string(),
            host.to_str().expect("ascii host").to_string(),
        )
    }

    #[test]
    fn override_target_rules() {
        let table = [
            (
                "https://app.example.test/health?x=1",
                "10.1.2.3",
                "http://10.1.2.3/health?x=1",
                "app.example.test",
            ),
            (
                "https://app.example.test:8443/h",
                "10.1.2.3",
                "http://10.1.2.3:8443/h",
                "app.example.test:8443",
            ),
            (
                "http://app.example.test:8080/",
                "10.1.2.3",
                "http://10.1.2.3:8080/",
                "app.example.test:8080",
            ),
            (
                "http://app.example.test/",
                "10.1.2.3",
                "http://10.1.2.3/",
                "app.example.test",
            ),
            (
                "https://u:p@app.example.test:9000/",
                "::1",
                "http://u:p@[::1]:9000/",
                "app.example.test:9000",
            ),
        ];
        for (url, ip, want_url, want_host) in table {
            let (got_url, got_host) = target(url, ip);
            assert_eq!(got_url, want_url, "{url}");
            assert_eq!(got_host, want_host, "{url}");
        }
    }

    #[test]
    fn settings_from_config() {
        let load = |interval: &str| {
            let env = hb_config::EnvSource::from_pairs([
                ("LOOP_INTERVAL_SECONDS", interval),
                ("SERVICE_TIMEOUT_SECONDS", "0.5"),
                ("INTERNAL_DNS_OVERRIDE_IP", "10.0.0.7"),
                ("SERVICE_URL_a", "http://a.test/"),
            ]);
            let c = <AgentConfig as hb_config::RoleConfig>::load(&env).expect("valid test config");
            HttpProberSettings::from_config(&c)
        };
        let s = load("10");
        assert_eq!(s.pool_idle_timeout, Duration::from_secs(90));
        assert_eq!(s.timeout, Duration::from_millis(500));
        assert!(s.force_ipv4);
        assert_eq!(s.dns_override_ip, Some("10.0.0.7".parse().expect("ip")));
        assert_eq!(load("60").pool_idle_timeout, Duration::from_secs(180));
    }

    #[test]
    fn header_values_never_appear_in_errors() {
        let bad = [("X-Key".to_string(), Secret::new("hunter2\n"))];
        let err = build_headers(&bad).expect_err("newline is not a valid header value");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("X-Key"), "{err}");
    }
}
