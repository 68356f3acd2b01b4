//! The dashboard's HTTP side: the axum router (JSON API, `/metrics`, `/health`), its state
//! (a [`ReadStore`] handed in by the binary, the settings, an injectable clock) and `serve`. It
//! depends on the store's interfaces only, never on a backend, and a `ReadStore` has no method
//! that writes: it cannot write the database by construction.

mod api;
pub mod assets;
mod hosts;
mod incidents;
mod live;
mod mask;
mod metrics;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, Method};
use axum::routing::get;
use hb_store::ReadStore;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

pub use live::{RANGES, range_seconds};
pub use mask::mask_error;

/// Where "now" comes from; tests pin it.
pub type Clock = Arc<dyn Fn() -> jiff::Timestamp + Send + Sync>;

/// The settings the dashboard uses (taken from `hb_config::DashboardConfig` by the binary).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Buckets per chart: `TARGET_DATA_POINTS`.
    pub target_data_points: u32,
    /// Zone of the bucket labels.
    pub tz: jiff::tz::TimeZone,
    /// Show only an error category instead of the stored reason.
    pub mask_errors: bool,
    /// Origins allowed by CORS; empty means no CORS headers; `*` allows any origin.
    pub cors_origins: Vec<String>,
    /// Latency thresholds that mark a service slow (`SERVICE_SLOW_MS[_<name>]`).
    pub slow_ms: hb_core::SlowThresholds,
    /// `TLS_EXPIRY_WARN_DAYS`: a certificate with fewer days left is marked expiring.
    pub tls_expiry_warn_days: u32,
    /// `MAINTENANCE_WINDOWS`: shown on the charts and the cards.
    pub maintenance: hb_core::maintenance::MaintenanceSchedule,
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub(crate) reader: Arc<dyn ReadStore>,
    pub(crate) settings: Arc<Settings>,
    pub(crate) clock: Clock,
    pub(crate) reads: Arc<tokio::sync::Semaphore>,
    pub(crate) analytics: Option<assets::Analytics>,
}

impl AppState {
    /// State reading `store`, at most [`ReadStore::max_concurrent_reads`] reads at a time (each
    /// on a blocking thread).
    pub fn new(settings: Settings, store: Arc<dyn ReadStore>) -> AppState {
        let reads = store.max_concurrent_reads().max(1);
        AppState {
            reader: store,
            settings: Arc::new(settings),
            clock: Arc::new(jiff::Timestamp::now),
            reads: Arc::new(tokio::sync::Semaphore::new(reads)),
            analytics: None,
        }
    }

    /// Replaces the wall clock (tests).
    pub fn with_clock(mut self, clock: Clock) -> AppState {
        self.clock = clock;
        self
    }

    /// Adds the web analytics snippet to the page (`UMAMI_SCRIPT_URL`, `UMAMI_WEBSITE_ID`).
    pub fn with_analytics(mut self, analytics: Option<assets::Analytics>) -> AppState {
        self.analytics = analytics;
        self
    }

    /// How many reads run at once: size the runtime's blocking pool to it.
    pub fn read_concurrency(&self) -> usize {
        self.reader.max_concurrent_reads().max(1)
    }

    /// The store, for logs (no credentials).
    pub fn store_name(&self) -> String {
        self.reader.describe()
    }

    pub(crate) fn now(&self) -> jiff::Timestamp {
        (self.clock)()
    }
}

/// The router with every route and layer.
pub fn app(state: AppState) -> Router {
    let cors = cors_layer(&state.settings.cors_origins);
    let page = assets::router(state.analytics.as_ref());
    let router = Router::new()
        .route("/api", get(api::index))
        .route("/health", get(api::health))
        .route("/api/live", get(live::handler))
        .route("/api/alerts", get(api::alerts))
        .route("/api/hosts", get(hosts::handler))
        .route("/api/incidents", get(incidents::handler))
        .route("/metrics", get(metrics::handler))
        .merge(page)
        .with_state(state)
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http());
    match cors {
        Some(c) => router.layer(c),
        None => router,
    }
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        )
    };
    Some(
        CorsLayer::new()
            .allow_methods([Method::GET, Method::OPTIONS])
            .allow_origin(allow),
    )
}

/// Serves `app` on `listener` until `shutdown` completes, with the default server limits
/// ([`hb_serve::Limits::default`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, app, hb_serve::Limits::default(), shutdown).await
}

/// As [`serve`], with explicit limits (header-read and idle timeouts, connection cap, body size).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: hb_serve::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    hb_serve::serve(listener, app, limits, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store that is never there.
    struct Absent;

    impl ReadStore for Absent {
        fn snapshot(
            &self,
            _f: &mut dyn FnMut(&dyn hb_store::Snapshot) -> Result<(), hb_store::StoreError>,
        ) -> Result<(), hb_store::StoreError> {
            Err(hb_store::StoreError::unavailable("absent"))
        }

        fn max_concurrent_reads(&self) -> usize {
            0
        }

        fn describe(&self) -> String {
            "absent".into()
        }
    }

    #[test]
    fn router_builds_with_and_without_cors() {
        let settings = Settings {
            target_data_points: 30,
            tz: jiff::tz::TimeZone::UTC,
            mask_errors: true,
            cors_origins: vec!["http://a.example".into()],
            slow_ms: hb_core::SlowThresholds::default(),
            tls_expiry_warn_days: 14,
            maintenance: Default::default(),
        };
        let state = AppState::new(settings.clone(), Arc::new(Absent));
        assert_eq!(state.read_concurrency(), 1, "at least one read at a time");
        let _ = app(state);
        let _ = app(AppState::new(
            Settings {
                cors_origins: Vec::new(),
                ..settings
            },
            Arc::new(Absent),
        ));
    }
}
