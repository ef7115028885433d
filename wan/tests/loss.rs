//! Loss on a TCP link is what the application sees of it: nothing goes
//! missing, but a lost chunk arrives one retransmission timeout late and
//! what follows waits behind it.

mod common;

use std::time::{Duration, Instant};

use common::{any_addr, echo_server};
use geolb_proto::wan::RETRANSMIT_TIMEOUT;
use geolb_wan::{Link, LinkConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Round trips of one small frame through `link`, each timed.
async fn echo_times(link: &Link, n: usize) -> Vec<Duration> {
    let mut stream = TcpStream::connect(link.local_addr()).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut times = Vec::new();
    for seq in 0..n as u32 {
        let began = Instant::now();
        stream.write_all(&seq.to_be_bytes()).await.unwrap();
        let mut back = [0u8; 4];
        timeout(Duration::from_secs(10), stream.read_exact(&mut back))
            .await
            .expect("nothing is lost")
            .unwrap();
        assert_eq!(u32::from_be_bytes(back), seq, "in order");
        times.push(began.elapsed());
    }
    times
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lost_chunk_costs_a_retransmission_timeout() {
    let echo = echo_server().await;
    let rtt = Duration::from_millis(2);
    let lossy = LinkConfig::symmetric(rtt).with_loss_pct(100.0);
    let link = Link::start("loss", any_addr(), echo, lossy).await.unwrap();
    for took in echo_times(&link, 3).await {
        // Both directions lose their chunk: two timeouts at least.
        assert!(took >= 2 * (RETRANSMIT_TIMEOUT + rtt), "{took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lossless_link_never_adds_a_timeout() {
    let echo = echo_server().await;
    let link = Link::start("clean", any_addr(), echo, LinkConfig::default())
        .await
        .unwrap();
    let times = echo_times(&link, 20).await;
    let fastest = times.iter().min().unwrap();
    assert!(*fastest < RETRANSMIT_TIMEOUT, "{times:?}");
}
