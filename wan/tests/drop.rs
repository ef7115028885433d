//! Dropping a link closes its listener and its connections.

mod common;

use std::time::{Duration, Instant};

use common::{any_addr, nats_server, Nats};
use geolb_wan::{Link, LinkConfig};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_closes_everything() {
    let server = nats_server();
    let link = Link::start(
        "drop",
        any_addr(),
        server.client_addr(),
        LinkConfig::default(),
    )
    .await
    .unwrap();
    let addr = link.local_addr();
    let mut nats = Nats::connect(addr).await.unwrap();
    drop(link);

    let err = nats.closed(Duration::from_secs(1)).await;
    assert_ne!(
        err.kind(),
        std::io::ErrorKind::TimedOut,
        "the connection was not closed"
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while TcpStream::connect(addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "{addr} still accepts connections"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
