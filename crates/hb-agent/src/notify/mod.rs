//! Notifiers: the heartbeat sender and the alert dispatcher with its channels. They own their HTTP
//! clients; they never decide what to alert (that is `hb_core::alerting`) and never touch the
//! database (delivery results go back to the caller through a channel).

pub mod dispatch;
pub mod heartbeat;
pub mod webhook;

pub use dispatch::{AlertChannel, AlertDispatcher, DeliverySettings, DeliveryUpdate};
pub use heartbeat::{HeartbeatSender, heartbeat_payload};

/// The channels alerts go to, in order: the N8N webhook first (when set), then `ALERT_URLS`.
pub fn channels_of(config: &hb_config::AgentConfig) -> Vec<std::sync::Arc<dyn AlertChannel>> {
    config
        .webhook_url
        .iter()
        .map(|url| {
            std::sync::Arc::new(webhook::Webhook { url: url.clone() })
                as std::sync::Arc<dyn AlertChannel>
        })
        .collect()
}

/// A notifier could not be built (the HTTP client failed to initialise).
#[derive(Debug, thiserror::Error)]
pub enum NotifySetupError {
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Builds a client for one notifier: explicit timeout, no proxy (reqwest honours `HTTP_PROXY`
/// otherwise), no redirects (a redirected POST would silently become a GET), IPv4 only when
/// `FORCE_IPV4` says so (binding the IPv4 wildcard makes the connector skip IPv6 addresses).
fn build_client(
    timeout: std::time::Duration,
    ipv4_only: bool,
) -> Result<reqwest::Client, NotifySetupError> {
    // Another component may have installed it first; either way a provider is in place.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = reqwest::Client::builder();
    let builder = if ipv4_only {
        builder.local_address(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    } else {
        builder
    };
    builder
        .timeout(timeout)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| NotifySetupError::Client(describe_error(&e)))
}

/// A reqwest error as text without the request URL (it may carry a token), with its causes,
/// which reqwest's own `Display` hides.
fn describe_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_builder() {
        "invalid request"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
