//! Bulk data crosses a link without hanging; the figures are printed, not asserted.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{any_addr, counting_sink, ms};
use geolb_wan::{Link, LinkConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const MIB: usize = 1024 * 1024;

/// Sends `bytes` in 64 KiB writes and waits for the sink's count.
async fn push(addr: SocketAddr, bytes: usize) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let chunk = vec![7u8; 64 * 1024];
    for _ in 0..bytes / chunk.len() {
        stream.write_all(&chunk).await.unwrap();
    }
    stream.shutdown().await.unwrap();
    let mut count = [0u8; 8];
    stream.read_exact(&mut count).await.unwrap();
    assert_eq!(u64::from_be_bytes(count), bytes as u64, "bytes lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_transfer_completes() {
    let sink = counting_sink().await;
    for (rtt_ms, connections, mib_each) in [(8, 1, 64), (105, 1, 64), (8, 16, 8)] {
        let config = LinkConfig::symmetric(Duration::from_millis(rtt_ms));
        let link = Link::start("bulk", any_addr(), sink, config).await.unwrap();
        let start = Instant::now();
        let pushes: Vec<_> = (0..connections)
            .map(|_| tokio::spawn(push(link.local_addr(), mib_each * MIB)))
            .collect();
        for p in pushes {
            timeout(Duration::from_secs(60), p)
                .await
                .expect("transfer hung")
                .unwrap();
        }
        let elapsed = start.elapsed();
        let total = connections * mib_each;
        println!(
            "RTT {rtt_ms} ms, {connections} connection(s), {total} MiB: {:.0} ms, {:.1} MB/s",
            ms(elapsed),
            (total * MIB) as f64 / elapsed.as_secs_f64() / 1e6
        );
        assert_eq!(link.stats().bytes_out, (total * MIB) as u64);
    }
}
