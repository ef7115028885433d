//! A reset link resets existing connections and refuses new ones until it is up.

mod common;

use std::time::Duration;

use common::{any_addr, nats_server, Nats};
use geolb_wan::{Link, LinkConfig, LinkState};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Whether `stream` ends (EOF or error) within a second without sending anything.
async fn ends_without_data(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_closes_and_refuses_until_up() {
    let server = nats_server();
    let up = LinkConfig::symmetric(Duration::from_millis(1));
    let link = Link::start("reset", any_addr(), server.client_addr(), up)
        .await
        .unwrap();
    let mut nats = Nats::connect(link.local_addr()).await.unwrap();

    link.set(up.with_state(LinkState::Reset));
    let err = nats.closed(Duration::from_secs(1)).await;
    println!("existing connection: {err}");
    assert_ne!(
        err.kind(),
        std::io::ErrorKind::TimedOut,
        "the connection was not closed"
    );

    for _ in 0..3 {
        match TcpStream::connect(link.local_addr()).await {
            Ok(mut fresh) => assert!(
                ends_without_data(&mut fresh).await,
                "a new connection worked"
            ),
            Err(e) => println!("new connection refused: {e}"),
        }
    }

    link.set(up);
    let mut again = Nats::connect(link.local_addr()).await.unwrap();
    again.ping().await;
    assert_eq!(link.stats().open, 1);
}
