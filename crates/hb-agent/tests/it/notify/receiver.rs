//! A real axum server on 127.0.0.1:0 that records every request (headers and exact body bytes)
//! and answers from a script the test controls.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use tokio::sync::{Semaphore, mpsc};

/// What to do with one request.
#[derive(Clone)]
pub enum Reply {
    Status(u16),
    /// Never answer (the client's timeout must fire).
    Hang,
    /// Answer 200 only once the test adds a permit.
    WaitThen200(Arc<Semaphore>),
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Clone)]
struct AppState {
    /// Replies in order; the last one repeats.
    script: Arc<Mutex<VecDeque<Reply>>>,
    seen: mpsc::UnboundedSender<Recorded>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    pub requests: mpsc::UnboundedReceiver<Recorded>,
}

impl Receiver {
    pub async fn start(script: Vec<Reply>) -> Receiver {
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let (seen, requests) = mpsc::unbounded_channel();
        let state = AppState {
            script: Arc::clone(&script),
            seen,
        };
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(handle))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { addr, requests }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Every request received so far.
    pub fn drain(&mut self) -> Vec<Recorded> {
        let mut out = Vec::new();
        while let Ok(r) = self.requests.try_recv() {
            out.push(r);
        }
        out
    }
}

async fn handle(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let reply = {
        let mut script = state.script.lock().unwrap();
        if script.len() > 1 {
            script.pop_front().unwrap()
        } else {
            script.front().cloned().unwrap_or(Reply::Status(200))
        }
    };
    state.seen.send(Recorded { headers, body }).unwrap();
    match reply {
        Reply::Status(code) => StatusCode::from_u16(code).unwrap(),
        Reply::Hang => std::future::pending().await,
        Reply::WaitThen200(gate) => {
            gate.acquire().await.unwrap().forget();
            StatusCode::OK
        }
    }
}

/// A URL on 127.0.0.1 where nothing listens: the port was bound and released.
pub async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/hook")
}
