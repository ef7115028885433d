//! Where records go: one datagram each to the agent's report socket
//! (`GEOLB_REPORT_SOCKET`), or JSON lines on stdout without an agent.
//!
//! Sending never blocks traffic: a record is queued (at most [`QUEUE`]) to
//! one task that writes it on a socket connected to the agent's. A Unix
//! datagram socket holds only a few datagrams (`net.unix.max_dgram_qlen`,
//! 10 by default) and a non-blocking sender's surplus was lost: a process of
//! a hundred clients dropped hundreds of records a minute, some of them
//! moves. Connected, the writer waits until the agent has read. A record
//! that finds the queue full or the agent gone is dropped and counted.

use geolb_proto::client::{ClientRecord, MAX_RECORD, REPORT_SOCKET_ENV};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UnixDatagram;
use tokio::sync::mpsc;

/// Records waiting for the agent at most.
pub const QUEUE: usize = 4096;

/// The report channel.
#[derive(Debug)]
pub struct Reporter {
    sink: Sink,
    counts: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    dropped: AtomicU64,
    /// Queued and not yet written (or dropped).
    pending: AtomicU64,
}

#[derive(Debug)]
enum Sink {
    Socket(mpsc::Sender<Vec<u8>>),
    Stdout,
}

impl Reporter {
    /// The socket named by `GEOLB_REPORT_SOCKET`, else stdout.
    pub fn from_env() -> Reporter {
        match std::env::var_os(REPORT_SOCKET_ENV).filter(|p| !p.is_empty()) {
            Some(path) => Reporter::socket(PathBuf::from(path)),
            None => Reporter::stdout(),
        }
    }

    /// JSON lines on stdout.
    pub fn stdout() -> Reporter {
        Reporter {
            sink: Sink::Stdout,
            counts: Arc::default(),
        }
    }

    /// Datagrams to the socket at `path` (which need not exist yet), written
    /// by a task of the current runtime.
    pub fn socket(path: PathBuf) -> Reporter {
        let (tx, rx) = mpsc::channel(QUEUE);
        let counts = Arc::new(Counts::default());
        tokio::spawn(deliver(path, rx, counts.clone()));
        Reporter {
            sink: Sink::Socket(tx),
            counts,
        }
    }

    /// Queues (or prints) one record; false when it was dropped.
    pub fn send(&self, record: &ClientRecord) -> bool {
        let bytes = record.encode();
        let len = bytes.len();
        let sent = match &self.sink {
            Sink::Socket(_) if len > MAX_RECORD => false,
            Sink::Socket(tx) => {
                self.counts.pending.fetch_add(1, Ordering::Relaxed);
                let queued = tx.try_send(bytes).is_ok();
                if !queued {
                    self.counts.pending.fetch_sub(1, Ordering::Relaxed);
                }
                queued
            }
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(&bytes)
                    .and_then(|_| out.write_all(b"\n"))
                    .and_then(|_| out.flush())
                    .is_ok()
            }
        };
        if !sent {
            self.counts.drop_one(len);
        }
        sent
    }

    /// Waits (at most `within`) until every queued record is written.
    pub async fn flush(&self, within: Duration) {
        let until = Instant::now() + within;
        while self.counts.pending.load(Ordering::Relaxed) > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Records dropped so far.
    pub fn dropped(&self) -> u64 {
        self.counts.dropped.load(Ordering::Relaxed)
    }
}

impl Counts {
    fn drop_one(&self, bytes: usize) {
        if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!(
                bytes,
                "Report record dropped: the agent does not take it; counting further drops."
            );
        }
    }
}

/// Writes queued records to the agent's socket, connecting (again) when needed.
async fn deliver(path: PathBuf, mut rx: mpsc::Receiver<Vec<u8>>, counts: Arc<Counts>) {
    let mut socket = None;
    while let Some(bytes) = rx.recv().await {
        if socket.is_none() {
            socket = connect(&path);
        }
        let written = match &socket {
            Some(s) => s.send(&bytes).await.is_ok(),
            None => false,
        };
        if !written {
            socket = None;
            counts.drop_one(bytes.len());
        }
        counts.pending.fetch_sub(1, Ordering::Relaxed);
    }
}

fn connect(path: &Path) -> Option<UnixDatagram> {
    let socket = UnixDatagram::unbound().ok()?;
    socket.connect(path).ok()?;
    Some(socket)
}

#[cfg(test)]
mod tests {
    use super::*;
    use geolb_proto::client::{ClientMove, MoveReason};

    fn record(at_ms: u64) -> ClientRecord {
        ClientRecord::Moved(ClientMove {
            v: 1,
            at_ms,
            client: "c".into(),
            region: "lon".into(),
            reason: MoveReason::Initial,
            from: None,
            to: None,
            gap_ms: 0,
        })
    }

    #[tokio::test]
    async fn sends_datagrams_in_order_waits_for_a_slow_agent_and_counts_drops() {
        let dir = std::env::temp_dir().join(format!("geolb-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.sock");
        let _ = std::fs::remove_file(&path);
        let reporter = Reporter::socket(path.clone());
        assert!(reporter.send(&record(0)), "queued");
        reporter.flush(Duration::from_secs(5)).await;
        assert_eq!(reporter.dropped(), 1, "nobody listens yet");
        let agent = UnixDatagram::bind(&path).unwrap();
        // Far more than the socket holds, before the agent reads any.
        for at_ms in 1..=200 {
            assert!(reporter.send(&record(at_ms)));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut buf = vec![0; MAX_RECORD];
        for at_ms in 1..=200 {
            let n = tokio::time::timeout(Duration::from_secs(5), agent.recv(&mut buf))
                .await
                .expect("a record within 5 s")
                .unwrap();
            assert_eq!(ClientRecord::decode(&buf[..n]).unwrap(), record(at_ms));
        }
        reporter.flush(Duration::from_secs(5)).await;
        assert_eq!(reporter.dropped(), 1, "none lost while the agent was slow");
        drop(agent);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
