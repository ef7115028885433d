//! A link whose target is down refuses diallers as a real network does
//! (nothing listens), rather than accepting and resetting; it listens again
//! once the target is back. nats-server and clients try their next address
//! at once on a refusal, but wait out a reconnect delay after an accepted
//! connection that breaks.

mod common;

use std::time::{Duration, Instant};

use common::{any_addr, nats_server, Nats};
use geolb_testkit::free_addr;
use geolb_wan::{Link, LinkConfig};
use tokio::net::{TcpListener, TcpStream};

/// Dials until the link refuses (nothing listens), at most `limit`.
async fn refused_within(addr: std::net::SocketAddr, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        match TcpStream::connect(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return true,
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_to_nothing_refuses_then_listens_when_the_target_comes() {
    let target = free_addr();
    let link = Link::start("to-nothing", any_addr(), target, LinkConfig::default())
        .await
        .unwrap();
    // The first dial finds the target down; from then on the link refuses.
    assert!(
        refused_within(link.local_addr(), Duration::from_secs(5)).await,
        "the link keeps accepting while its target refuses"
    );
    let listener = TcpListener::bind(target).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let stream = loop {
        match TcpStream::connect(link.local_addr()).await {
            Ok(stream) => break stream,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("the link did not listen again: {e}"),
        }
    };
    let accepted = tokio::time::timeout(Duration::from_secs(5), listener.accept()).await;
    assert!(accepted.is_ok(), "the connection reached the target");
    drop(stream);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_is_refused_before_its_clients_redial() {
    let server = nats_server();
    let link = Link::start(
        "to-server",
        any_addr(),
        server.client_addr(),
        LinkConfig::default(),
    )
    .await
    .unwrap();
    let mut nats = Nats::connect(link.local_addr()).await.unwrap();
    nats.ping().await;
    drop(server);
    // The client hears of the loss; its first redial is already refused.
    let why = nats.closed(Duration::from_secs(5)).await;
    println!("the client heard: {why}");
    let redial = TcpStream::connect(link.local_addr()).await;
    assert!(
        matches!(&redial, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "{redial:?}"
    );
}
