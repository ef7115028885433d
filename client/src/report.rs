//! Where records go: one datagram each to the agent's report socket
//! (`GEOLB_REPORT_SOCKET`), or JSON lines on stdout without an agent.
//!
//! Sending never blocks traffic: the socket is non-blocking, and a record
//! the agent cannot take (gone, or its buffer full) is dropped and counted.

use geolb_proto::client::{ClientRecord, MAX_RECORD, REPORT_SOCKET_ENV};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// The report channel.
#[derive(Debug)]
pub struct Reporter {
    sink: Sink,
    dropped: AtomicU64,
}

#[derive(Debug)]
enum Sink {
    Socket { socket: UnixDatagram, path: PathBuf },
    Stdout,
}

impl Reporter {
    /// The socket named by `GEOLB_REPORT_SOCKET`, else stdout.
    pub fn from_env() -> std::io::Result<Reporter> {
        match std::env::var_os(REPORT_SOCKET_ENV).filter(|p| !p.is_empty()) {
            Some(path) => Reporter::socket(PathBuf::from(path)),
            None => Ok(Reporter::stdout()),
        }
    }

    /// JSON lines on stdout.
    pub fn stdout() -> Reporter {
        Reporter {
            sink: Sink::Stdout,
            dropped: AtomicU64::new(0),
        }
    }

    /// Datagrams to the socket at `path` (which need not exist yet).
    pub fn socket(path: PathBuf) -> std::io::Result<Reporter> {
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        Ok(Reporter {
            sink: Sink::Socket { socket, path },
            dropped: AtomicU64::new(0),
        })
    }

    /// Sends one record; returns whether it went out.
    pub fn send(&self, record: &ClientRecord) -> bool {
        let bytes = record.encode();
        let sent = match &self.sink {
            Sink::Socket { .. } if bytes.len() > MAX_RECORD => false,
            Sink::Socket { socket, path } => socket.send_to(&bytes, path).is_ok(),
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(&bytes)
                    .and_then(|_| out.write_all(b"\n"))
                    .and_then(|_| out.flush())
                    .is_ok()
            }
        };
        if !sent && self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!(
                bytes = bytes.len(),
                "Report record dropped: the agent does not take it; counting further drops."
            );
        }
        sent
    }

    /// Records dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geolb_proto::client::{ClientMove, MoveReason};

    fn record() -> ClientRecord {
        ClientRecord::Moved(ClientMove {
            v: 1,
            at_ms: 1,
            client: "c".into(),
            region: "lon".into(),
            reason: MoveReason::Initial,
            from: None,
            to: None,
            gap_ms: 0,
        })
    }

    #[test]
    fn sends_datagrams_and_counts_drops() {
        let dir = std::env::temp_dir().join(format!("geolb-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.sock");
        let _ = std::fs::remove_file(&path);
        let reporter = Reporter::socket(path.clone()).unwrap();
        assert!(!reporter.send(&record()), "nobody listens yet");
        assert_eq!(reporter.dropped(), 1);
        let agent = UnixDatagram::bind(&path).unwrap();
        assert!(reporter.send(&record()));
        let mut buf = vec![0; MAX_RECORD];
        let n = agent.recv(&mut buf).unwrap();
        assert_eq!(ClientRecord::decode(&buf[..n]).unwrap(), record());
        drop(agent);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
