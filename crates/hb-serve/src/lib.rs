//! Serving an axum [`Router`] on a TCP listener with the limits every server of the binary
//! shares (the dashboard, the mock, any later one): a header-read timeout, an idle keep-alive
//! timeout, a cap on open connections, bounded header and body sizes, and a graceful shutdown
//! with a deadline. It owns the accept loop and the connection tasks; it knows no route.
//!
//! Why not `axum::serve`: it sets no timer, so hyper's header-read timeout never fires and a
//! client that sends half a request keeps its connection (and its buffers) forever; it has no
//! connection cap either.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;
use tower_http::limit::RequestBodyLimitLayer;

/// A client must send a whole request head within this time (also bounds how long a fresh
/// connection may stay silent).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A keep-alive connection with no request in flight is closed after this long. Shorter than
/// the header-read timeout, because hyper's header timer also runs between requests and would
/// otherwise decide first.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Open connections at most; at the cap the oldest idle or incomplete ones make room.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1_024;
/// Request bodies larger than this are refused with 413 (the biggest legitimate body, a
/// heartbeat of a few hundred services, is a few tens of KiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// A request head (request line plus headers) larger than this is refused with 431; it also
/// caps each connection's read buffer, so a thousand slow clients cannot hold 400 KiB each.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;
/// After shutdown is requested, in-flight requests get this long to finish.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// hyper refuses a smaller buffer (it panics below 8 KiB).
const MIN_HEADER_BYTES: usize = 8 * 1024;
/// At shutdown, a connection with no request in flight for this long is closed (long enough for
/// the end of a response to have been flushed).
const DRAIN_IDLE: Duration = Duration::from_millis(500);
/// How often a server at its cap, with every connection busy, looks for room again.
const CAP_RECHECK: Duration = Duration::from_millis(50);

/// The limits of one server; `Limits::default()` holds the defaults above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

/// Put in a response's extensions, it makes the server drop the connection without writing
/// anything (the mock uses it to simulate a service that hangs up).
#[derive(Debug, Clone, Copy)]
pub struct CloseConnection;

#[derive(Debug, thiserror::Error)]
#[error("connection closed without a response on the handler's request")]
struct Closed;

/// Serves `router` on `listener` until `shutdown` completes; then stops accepting, lets
/// in-flight requests finish (idle connections close at once) for up to
/// `limits.shutdown_grace`, closes whatever is left, and returns.
pub async fn serve<F>(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    // Both: the tower-http layer answers 413 before any handler runs (even one that never reads
    // its body); axum's own limit would otherwise let extractors read up to 2 MB.
    let router = router
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes));
    let max_connections = limits.max_connections.max(1);
    let epoch = Instant::now();
    let draining = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let mut open: BTreeMap<u64, Open> = BTreeMap::new();
    let mut next_id = 0u64;
    let mut cap_logged = false;
    tokio::pin!(shutdown);
    loop {
        if open.len() >= max_connections {
            if !cap_logged {
                cap_logged = true;
                tracing::warn!(
                    max_connections,
                    "connection cap reached: the oldest idle or incomplete connections are \
                     closed to make room (logged once)"
                );
            }
            if !evict_oldest_idle(&mut open) {
                // Every connection is in a request: new clients wait in the backlog.
                tokio::select! {
                    () = &mut shutdown => break,
                    Some(_) = tasks.join_next() => sweep(&mut open),
                    () = tokio::time::sleep(CAP_RECHECK) => {}
                }
                continue;
            }
        }
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next() => sweep(&mut open),
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let activity = Arc::new(Activity::new(epoch));
                    let handle = tasks.spawn(connection(
                        stream,
                        router.clone(),
                        limits,
                        Arc::clone(&activity),
                        draining.clone(),
                    ));
                    open.insert(next_id, Open { activity, handle });
                    next_id += 1;
                }
                Err(e) => {
                    // Out of file descriptors, say: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    draining.cancel();
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = tasks.len(),
            grace_ms = limits.shutdown_grace.as_millis() as u64,
            "connections still busy after the shutdown grace: closing them"
        );
        tasks.shutdown().await;
    }
    Ok(())
}

/// One open connection as the accept loop sees it.
struct Open {
    activity: Arc<Activity>,
    handle: AbortHandle,
}

fn sweep(open: &mut BTreeMap<u64, Open>) {
    open.retain(|_, c| !c.handle.is_finished());
}

/// Closes the oldest connection with no request in flight (idle keep-alive, or still sending
/// its request head). False when every connection is busy.
fn evict_oldest_idle(open: &mut BTreeMap<u64, Open>) -> bool {
    let oldest = open
        .iter()
        .find(|(_, c)| c.activity.busy.load(Ordering::Acquire) == 0)
        .map(|(id, _)| *id);
    let Some(id) = oldest else {
        return false;
    };
    if let Some(c) = open.remove(&id) {
        tracing::debug!("closing an idle connection to stay under the connection cap");
        c.handle.abort();
    }
    true
}

/// What a connection is doing, shared between its task, its service and the accept loop.
struct Activity {
    epoch: Instant,
    /// Requests in flight, counted until their response body is done.
    busy: AtomicUsize,
    /// When the last request ended, in ms after `epoch` (the accept time until then).
    last_ms: AtomicU64,
}

impl Activity {
    fn new(epoch: Instant) -> Activity {
        let a = Activity {
            epoch,
            busy: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        };
        a.touch();
        a
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Release);
    }

    /// When the connection becomes idle for `idle`; `None` while a request is in flight.
    fn idle_deadline(&self, idle: Duration) -> Option<Instant> {
        if self.busy.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(self.epoch + Duration::from_millis(self.last_ms.load(Ordering::Acquire)) + idle)
    }
}

/// Marks a request in flight until dropped (with the response body, or with the connection).
struct Busy(Arc<Activity>);

impl Busy {
    fn enter(activity: &Arc<Activity>) -> Busy {
        activity.busy.fetch_add(1, Ordering::AcqRel);
        Busy(Arc::clone(activity))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn connection(
    stream: TcpStream,
    router: Router,
    limits: Limits,
    activity: Arc<Activity>,
    draining: CancellationToken,
) {
    let service = ConnService {
        router,
        activity: Arc::clone(&activity),
    };
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES))
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let timer = tokio::time::sleep(limits.idle_timeout);
    tokio::pin!(timer);
    // `closing`: keep-alive is off (idle, or shutdown); `drain`: shutdown was requested.
    let mut closing = false;
    let mut drain = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended");
                }
                return;
            }
            () = draining.cancelled(), if !drain => {
                drain = true;
                closing = true;
                conn.as_mut().graceful_shutdown();
                timer.as_mut().reset(Instant::now());
            }
            () = &mut timer, if drain || !closing => {
                // At shutdown the limit is short: hyper's graceful shutdown closes an idle
                // keep-alive connection itself, but one still sending its head would hold the
                // shutdown until the header-read timeout.
                let wait = if drain { DRAIN_IDLE } else { limits.idle_timeout };
                match activity.idle_deadline(wait) {
                    Some(deadline) if deadline <= Instant::now() => {
                        if drain {
                            return;
                        }
                        // Closes an idle keep-alive connection at once; one still sending its
                        // head is left to the header-read timeout.
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                    Some(deadline) => timer.as_mut().reset(deadline),
                    None => timer.as_mut().reset(Instant::now() + wait),
                }
            }
        }
    }
}

#[derive(Clone)]
struct ConnService {
    router: Router,
    activity: Arc<Activity>,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<Body>;
    type Error = Closed;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Closed>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let busy = Busy::enter(&self.activity);
        let router = self.router.clone();
        Box::pin(async move {
            let response = match router.oneshot(req.map(Body::new)).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            // An error from the service makes hyper drop the connection without writing.
            if response.extensions().get::<CloseConnection>().is_some() {
                return Err(Closed);
            }
            Ok(response.map(|body| Body::new(Tracked { body, _busy: busy })))
        })
    }
}

/// A response body that keeps its connection counted busy until it is done.
struct Tracked {
    body: Body,
    _busy: Busy,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
