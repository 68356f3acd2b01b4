//! The mock's own accept loop (hyper HTTP/1 per connection). It exists for one reason axum's
//! `serve` cannot give: a handler can ask for its connection to be closed with no response at
//! all (the `down` behaviour), which a client sees as a closed connection. It also owns shutdown:
//! stop accepting, release stalled requests, let in-flight answers finish.

use std::future::Future;
use std::pin::Pin;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::MockState;

/// Marker a handler puts in its response's extensions to have the connection closed instead.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AbortConnection;

#[derive(Debug, thiserror::Error)]
#[error("connection closed without a response (simulated down service)")]
struct Aborted;

#[derive(Clone)]
struct Service {
    router: Router,
}

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<Body>;
    type Error = Aborted;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Aborted>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let router = self.router.clone();
        Box::pin(async move {
            let response = match router.oneshot(req.map(Body::new)).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            // An error from the service makes hyper drop the connection without writing.
            if response.extensions().get::<AbortConnection>().is_some() {
                Err(Aborted)
            } else {
                Ok(response)
            }
        })
    }
}

/// Serves `app(state)` on `listener` until `shutdown` resolves (or `state`'s shutdown token is
/// cancelled), then stops accepting, releases requests parked by `timeout` and `slow` services,
/// and returns once every connection has finished.
pub async fn serve<F>(listener: TcpListener, state: MockState, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    let token = state.shutdown_token();
    let service = Service {
        router: crate::app(state),
    };
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            () = token.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let service = service.clone();
                    let token = token.clone();
                    connections.spawn(async move {
                        let conn = hyper::server::conn::http1::Builder::new()
                            .timer(TokioTimer::new())
                            .serve_connection(TokioIo::new(stream), service);
                        tokio::pin!(conn);
                        let result = tokio::select! {
                            r = conn.as_mut() => r,
                            () = token.cancelled() => {
                                conn.as_mut().graceful_shutdown();
                                conn.await
                            }
                        };
                        if let Err(e) = result {
                            tracing::debug!(error = %e, "mock connection ended");
                        }
                    });
                }
                Err(e) => {
                    // Running out of file descriptors must not spin the loop.
                    tracing::warn!(error = %e, "mock accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
    token.cancel();
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}
