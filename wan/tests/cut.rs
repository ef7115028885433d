//! A cut link holds data and new connections; back up, everything flows again.

mod common;

use std::time::Duration;

use common::{any_addr, nats_server, Nats};
use geolb_wan::{Link, LinkConfig, LinkState};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_holds_traffic_until_up() {
    let server = nats_server();
    let up = LinkConfig::symmetric(Duration::from_millis(1));
    let link = Link::start("cut", any_addr(), server.client_addr(), up)
        .await
        .unwrap();
    let mut nats = Nats::connect(link.local_addr()).await.unwrap();

    link.set(up.with_state(LinkState::Cut));
    nats.send(b"PING\r\n").await.unwrap();
    let held = nats.pong(Duration::from_millis(300)).await;
    assert!(held.is_err(), "a PONG crossed a cut link");

    let mut fresh = TcpStream::connect(link.local_addr()).await.unwrap();
    let mut buf = [0u8; 4];
    let info = timeout(Duration::from_millis(300), fresh.read_exact(&mut buf)).await;
    assert!(
        info.is_err(),
        "a new connection got data through a cut link"
    );
    assert_eq!(
        link.stats().total,
        2,
        "the new connection is accepted and held"
    );

    link.set(up);
    nats.pong(Duration::from_secs(1))
        .await
        .expect("the held PING is answered after the heal");
    timeout(Duration::from_secs(1), fresh.read_exact(&mut buf))
        .await
        .expect("the held connection gets its INFO after the heal")
        .unwrap();
    assert_eq!(&buf, b"INFO");
    nats.ping().await;
}
