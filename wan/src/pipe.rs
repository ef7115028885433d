//! One direction of one connection: a reader that stamps each chunk with the time it
//! is due, and a writer that delivers the chunks on time and in order.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch, Semaphore};

use crate::timer::sleep_until;
use geolb_proto::wan::{LinkConfig, LinkState, RETRANSMIT_TIMEOUT};

/// Bytes read at most per chunk.
pub const CHUNK: usize = 64 * 1024;
/// The read buffer of a quiet direction: it doubles up to [`CHUNK`] while
/// reads fill it, and shrinks back when they no longer do, so that the
/// thousands of idle probe connections of a large lab cost kilobytes, not
/// two chunks, each.
const SMALL_READ: usize = 4 * 1024;
/// Bytes a direction holds at most before its reader pauses (backpressure).
pub const QUEUE: usize = 4 * 1024 * 1024;

/// Which way the data flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the dialler to the target.
    Out,
    /// From the target back to the dialler.
    Back,
}

impl Direction {
    fn delay(self, c: &LinkConfig) -> Duration {
        match self {
            Direction::Out => c.delay_out,
            Direction::Back => c.delay_back,
        }
    }
}

/// What the reader saw, in order.
enum Item {
    Data(Vec<u8>),
    Eof,
    Failed(io::Error),
}

/// Why a direction ended badly; the connection is then reset on both sides.
#[derive(Debug)]
pub enum Broken {
    /// Reading failed (delivered in order, at its due time): reset both sides now.
    Read(io::Error),
    /// Writing failed: the other direction, which reads the same dead socket, ends soon.
    Write(io::Error),
}

/// Forwards `from` to `to` with the delays of `config` until EOF (forwarded as a
/// half-close) or an error on either side; `ended` runs as soon as the
/// reader sees the end, and the end is forwarded once it finished.
pub async fn pipe<R, W, E, F>(
    dir: Direction,
    from: R,
    to: W,
    config: watch::Receiver<LinkConfig>,
    bytes: &AtomicU64,
    ended: E,
) -> Result<(), Broken>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    E: FnOnce() -> F,
    F: std::future::Future<Output = ()>,
{
    let budget = Semaphore::new(QUEUE);
    let (tx, rx) = mpsc::unbounded_channel();
    let read = async {
        read(dir, from, config.clone(), &budget, tx, ended).await;
        std::future::pending::<()>().await
    };
    // The writer decides the outcome; a reader blocked on a dead connection is dropped.
    tokio::select! {
        result = write(dir, to, config.clone(), &budget, rx, bytes) => result,
        () = read => unreachable!("the reader never completes"),
    }
}

async fn read<R: AsyncRead + Unpin, F: std::future::Future<Output = ()>>(
    dir: Direction,
    mut from: R,
    config: watch::Receiver<LinkConfig>,
    budget: &Semaphore,
    tx: mpsc::UnboundedSender<(Instant, Item)>,
    ended: impl FnOnce() -> F,
) {
    let mut ended = Some(ended);
    let mut buf = vec![0u8; SMALL_READ];
    let mut last_due = Instant::now();
    loop {
        // Reserve a whole chunk first, so a full queue leaves data in the kernel.
        let Ok(permit) = budget.acquire_many(CHUNK as u32).await else {
            return;
        };
        permit.forget();
        let result = from.read(&mut buf).await;
        let now = Instant::now();
        let item = match result {
            Ok(0) => Item::Eof,
            Ok(n) => {
                let data = buf[..n].to_vec();
                resize_for(&mut buf, n);
                Item::Data(data)
            }
            Err(e) => Item::Failed(e),
        };
        let len = match &item {
            Item::Data(d) => d.len(),
            _ => 0,
        };
        budget.add_permits(CHUNK - len);
        let due = due(dir, &config.borrow(), now).max(last_due);
        last_due = due;
        let last = !matches!(item, Item::Data(_));
        if last {
            if let Some(ended) = ended.take() {
                ended().await;
            }
        }
        if tx.send((due, item)).is_err() || last {
            return;
        }
    }
}

/// Grows `buf` (up to [`CHUNK`]) after a read of `n` bytes that filled it,
/// and shrinks it (down to [`SMALL_READ`]) after one that used under a quarter.
fn resize_for(buf: &mut Vec<u8>, n: usize) {
    let size = buf.len();
    let next = match n {
        n if n == size => (size * 2).min(CHUNK),
        n if n < size / 4 => (size / 2).max(SMALL_READ),
        _ => size,
    };
    if next != size {
        buf.resize(next, 0);
        buf.shrink_to_fit();
    }
}

/// When data read at `now` must be delivered: the delay plus a random
/// jitter, plus a retransmission timeout when the chunk is "lost".
fn due(dir: Direction, c: &LinkConfig, now: Instant) -> Instant {
    let jitter = match c.jitter.as_nanos() as u64 {
        0 => Duration::ZERO,
        max => Duration::from_nanos(fastrand::u64(0..=max)),
    };
    let lost = c.loss_ppm > 0 && fastrand::u32(0..1_000_000) < c.loss_ppm;
    let retransmit = match lost {
        true => RETRANSMIT_TIMEOUT + c.rtt(),
        false => Duration::ZERO,
    };
    now + dir.delay(c) + jitter + retransmit
}

async fn write<W: AsyncWrite + Unpin>(
    dir: Direction,
    mut to: W,
    mut config: watch::Receiver<LinkConfig>,
    budget: &Semaphore,
    mut rx: mpsc::UnboundedReceiver<(Instant, Item)>,
    bytes: &AtomicU64,
) -> Result<(), Broken> {
    while let Some((mut due, item)) = rx.recv().await {
        loop {
            if config.borrow().state != LinkState::Up {
                // Held while cut: after the heal the data still crosses the link.
                let Ok(c) = config.wait_for(|c| c.state == LinkState::Up).await else {
                    return Ok(());
                };
                due = due.max(Instant::now() + dir.delay(&c));
            }
            if due > Instant::now() {
                sleep_until(due).await;
            }
            if config.borrow().state == LinkState::Up {
                break;
            }
        }
        match item {
            Item::Data(data) => {
                to.write_all(&data).await.map_err(Broken::Write)?;
                budget.add_permits(data.len());
                bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
            Item::Eof => {
                let _ = to.shutdown().await;
                return Ok(());
            }
            Item::Failed(e) => return Err(Broken::Read(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_buffer_follows_the_reads() {
        let mut buf = vec![0u8; SMALL_READ];
        // Full reads double it up to a chunk.
        let mut sizes = Vec::new();
        for _ in 0..6 {
            let n = buf.len();
            resize_for(&mut buf, n);
            sizes.push(buf.len() / 1024);
        }
        assert_eq!(sizes, [8, 16, 32, 64, 64, 64]);
        // A half-full read keeps it; small ones halve it back to the floor.
        resize_for(&mut buf, CHUNK / 2);
        assert_eq!(buf.len(), CHUNK);
        let mut sizes = Vec::new();
        for _ in 0..6 {
            resize_for(&mut buf, 6);
            sizes.push(buf.len() / 1024);
        }
        assert_eq!(sizes, [32, 16, 8, 4, 4, 4]);
    }
}
