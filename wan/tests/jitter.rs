//! Jitter delays chunks by different amounts but never reorders or loses data.

mod common;

use std::time::Duration;

use common::{any_addr, echo_server, eventually};
use geolb_wan::{Link, LinkConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const FRAMES: u32 = 2000;
const FRAME: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jitter_preserves_order() {
    let echo = echo_server().await;
    let config =
        LinkConfig::symmetric(Duration::from_millis(2)).with_jitter(Duration::from_millis(3));
    let link = Link::start("jitter", any_addr(), echo, config)
        .await
        .unwrap();
    let stream = TcpStream::connect(link.local_addr()).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut r, mut w) = stream.into_split();
    let writer = tokio::spawn(async move {
        for seq in 0..FRAMES {
            let mut frame = [0u8; FRAME];
            frame[..4].copy_from_slice(&seq.to_be_bytes());
            w.write_all(&frame).await.unwrap();
            if seq % 10 == 0 {
                // Separate writes a little, so the link sees many chunks.
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        }
        w
    });
    let mut frame = [0u8; FRAME];
    for expected in 0..FRAMES {
        timeout(Duration::from_secs(10), r.read_exact(&mut frame))
            .await
            .expect("frames lost")
            .unwrap();
        let seq = u32::from_be_bytes(frame[..4].try_into().unwrap());
        assert_eq!(seq, expected, "frames reordered");
    }
    drop(writer.await.unwrap());
    let sent = u64::from(FRAMES) * FRAME as u64;
    let counted = || link.stats().bytes_out == sent && link.stats().bytes_back == sent;
    assert!(eventually(counted).await, "{:?}", link.stats());
}
