//! TCP probe against real listeners on 127.0.0.1: one that accepts, a closed port, and one
//! whose accept queue is full (a listener with a backlog of 1 that never accepts: Linux drops
//! further SYNs, so the connect hangs until the check's timeout — deterministic, and loopback
//! only, unlike an unroutable address).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hb_agent::probes::TcpProber;
use hb_agent::probes::tcp::NO_IPV4_ADDRESS;
use hb_core::ServiceStatus;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const TIMEOUT: Duration = Duration::from_millis(500);

/// A port on 127.0.0.1 nothing listens on: bound, then released.
async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    port
}

#[tokio::test]
async fn open_port_is_healthy_with_its_connect_time() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let accepted = tokio::spawn(async move { listener.accept().await.map(|_| ()) });
    let o = TcpProber::new(TIMEOUT, true).check("127.0.0.1", port).await;
    assert_eq!(o.status, ServiceStatus::Healthy, "{o:?}");
    assert_eq!(o.reason, None);
    assert_eq!(o.status_code, None);
    let latency = o.latency_ms.expect("a connection has a latency");
    assert!(
        latency > 0.0 && latency < 500.0,
        "sub-millisecond precision, within the timeout: {latency}"
    );
    tokio::time::timeout(Duration::from_secs(2), accepted)
        .await
        .expect("the listener saw the connection")
        .expect("join")
        .expect("accept");
}

#[tokio::test]
async fn a_name_resolves_and_connects() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let o = TcpProber::new(TIMEOUT, true).check("localhost", port).await;
    assert_eq!(o.status, ServiceStatus::Healthy, "{o:?}");
    assert!(o.latency_ms.is_some());
}

#[tokio::test]
async fn closed_port_is_down_connection_refused() {
    let port = closed_port().await;
    let o = TcpProber::new(TIMEOUT, true).check("127.0.0.1", port).await;
    assert_eq!(o.status, ServiceStatus::Down, "{o:?}");
    assert_eq!(o.reason.as_deref(), Some("Connection refused"));
    assert_eq!(o.latency_ms, None);
    assert!(!o.agent_fault);
}

/// A listener on 127.0.0.1 whose accept queue is full, and the connections that fill it (kept
/// open by the caller): a further connect hangs until its timeout.
async fn full_accept_queue() -> (TcpListener, Vec<TcpStream>) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let listener = socket.listen(1).expect("listen with a backlog of 1");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    // Fill the queue: connections complete until it is full, then a SYN goes unanswered.
    let mut held = Vec::new();
    for _ in 0..16 {
        match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => held.push(stream),
            Ok(Err(e)) => panic!("filling the queue: {e}"),
            Err(_elapsed) => return (listener, held),
        }
    }
    panic!("the accept queue never filled ({} held)", held.len());
}

#[tokio::test]
async fn full_accept_queue_is_a_timeout() {
    let (listener, _held) = full_accept_queue().await;
    let port = listener.local_addr().expect("addr").port();
    let started = Instant::now();
    let o = TcpProber::new(TIMEOUT, true).check("127.0.0.1", port).await;
    let took = started.elapsed();
    assert_eq!(o.status, ServiceStatus::Timeout, "{o:?}");
    assert_eq!(o.reason.as_deref(), Some("Timeout"));
    assert_eq!(o.latency_ms, None);
    assert!(
        took >= TIMEOUT && took < TIMEOUT + Duration::from_millis(400),
        "the check takes its timeout, no more: {took:?}"
    );
}

#[tokio::test]
async fn a_service_timeout_replaces_the_global_one() {
    let (listener, _held) = full_accept_queue().await;
    let port = listener.local_addr().expect("addr").port();
    let global = Duration::from_secs(30);
    let own = Duration::from_millis(200);
    let started = Instant::now();
    let o = TcpProber::new(global, true)
        .check_within("127.0.0.1", port, own)
        .await;
    let took = started.elapsed();
    assert_eq!(o.status, ServiceStatus::Timeout, "{o:?}");
    assert!(
        took >= own && took < global,
        "the service's own timeout ran out, not the global one: {took:?}"
    );
}

#[tokio::test]
async fn force_ipv4_refuses_an_ipv6_only_target() {
    let o = TcpProber::new(TIMEOUT, true).check("::1", 22).await;
    assert_eq!(o.status, ServiceStatus::Down, "{o:?}");
    assert_eq!(o.reason.as_deref(), Some(NO_IPV4_ADDRESS));
}

/// An unreachable address must fail at once, never touching a real network: the assertion
/// runs in a copy of this test binary inside a network namespace that has only loopback, where
/// 10.255.255.1 has no route.
#[test]
fn unreachable_network_is_down() {
    if super::in_netns_child() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let o = rt.block_on(TcpProber::new(TIMEOUT, true).check("10.255.255.1", 5432));
        assert_eq!(o.status, ServiceStatus::Down, "{o:?}");
        assert_eq!(o.reason.as_deref(), Some("Network unreachable"));
        assert!(!o.agent_fault);
        return;
    }
    super::run_in_loopback_netns("probes::tcp::unreachable_network_is_down");
}
