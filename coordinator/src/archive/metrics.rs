//! The archiver's own metrics: counters kept in one place, served in the
//! Prometheus text format at `GET /metrics` (`--metrics-listen ADDR`) and
//! logged as one line when it stops.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The counters (cheap to clone: shared).
#[derive(Debug, Clone, Default)]
pub struct Metrics(Arc<Counters>);

#[derive(Debug, Default)]
struct Counters {
    messages: AtomicU64,
    objects: AtomicU64,
    bytes_stored: AtomicU64,
    ndjson_bytes: AtomicU64,
    batches: AtomicU64,
    retries: AtomicU64,
    ack_failures: AtomicU64,
    redeliveries: AtomicU64,
    gap_messages: AtomicU64,
    consumer_errors: AtomicU64,
    last_seq: AtomicU64,
    held: AtomicU64,
}

/// A copy of every counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// Messages stored and acknowledged.
    pub messages: u64,
    /// Objects stored.
    pub objects: u64,
    /// Bytes stored (gzip'ed).
    pub bytes_stored: u64,
    /// NDJSON bytes before gzip.
    pub ndjson_bytes: u64,
    /// Batches stored.
    pub batches: u64,
    /// S3 requests retried after a transient failure.
    pub retries: u64,
    /// Acknowledgements that did not reach the control plane (the batch stays stored).
    pub ack_failures: u64,
    /// Messages delivered again that were already stored or held, skipped.
    pub redeliveries: u64,
    /// Messages the stream dropped (by its limits) before they could be archived.
    pub gap_messages: u64,
    /// Errors of the consumer's message flow (reconnects, missed heartbeats).
    pub consumer_errors: u64,
    /// Highest stream sequence stored.
    pub last_seq: u64,
    /// Messages held in the open batch.
    pub held: u64,
}

impl Metrics {
    /// A batch of `messages` in `objects` objects was stored, up to `last_seq`.
    pub fn stored(&self, messages: u64, objects: u64, bytes: u64, ndjson: u64, last_seq: u64) {
        let c = &self.0;
        c.messages.fetch_add(messages, Relaxed);
        c.objects.fetch_add(objects, Relaxed);
        c.bytes_stored.fetch_add(bytes, Relaxed);
        c.ndjson_bytes.fetch_add(ndjson, Relaxed);
        c.batches.fetch_add(1, Relaxed);
        c.last_seq.fetch_max(last_seq, Relaxed);
    }

    /// One S3 request is retried.
    pub fn retried(&self) {
        self.0.retries.fetch_add(1, Relaxed);
    }

    /// An acknowledgement failed.
    pub fn ack_failed(&self) {
        self.0.ack_failures.fetch_add(1, Relaxed);
    }

    /// A message already stored or held came again.
    pub fn redelivered(&self) {
        self.0.redeliveries.fetch_add(1, Relaxed);
    }

    /// `n` sequences were skipped by the stream.
    pub fn gap(&self, n: u64) {
        self.0.gap_messages.fetch_add(n, Relaxed);
    }

    /// The consumer's message flow reported an error.
    pub fn consumer_error(&self) {
        self.0.consumer_errors.fetch_add(1, Relaxed);
    }

    /// The open batch now holds `n` messages.
    pub fn holding(&self, n: u64) {
        self.0.held.store(n, Relaxed);
    }

    /// Every counter, now.
    pub fn snapshot(&self) -> Snapshot {
        let c = &self.0;
        Snapshot {
            messages: c.messages.load(Relaxed),
            objects: c.objects.load(Relaxed),
            bytes_stored: c.bytes_stored.load(Relaxed),
            ndjson_bytes: c.ndjson_bytes.load(Relaxed),
            batches: c.batches.load(Relaxed),
            retries: c.retries.load(Relaxed),
            ack_failures: c.ack_failures.load(Relaxed),
            redeliveries: c.redeliveries.load(Relaxed),
            gap_messages: c.gap_messages.load(Relaxed),
            consumer_errors: c.consumer_errors.load(Relaxed),
            last_seq: c.last_seq.load(Relaxed),
            held: c.held.load(Relaxed),
        }
    }

    /// The Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let s = self.snapshot();
        let rows: [(&str, &str, &str, u64); 12] = [
            (
                "messages_total",
                "counter",
                "Messages stored and acknowledged.",
                s.messages,
            ),
            ("objects_total", "counter", "Objects stored.", s.objects),
            (
                "stored_bytes_total",
                "counter",
                "Bytes stored, gzip'ed.",
                s.bytes_stored,
            ),
            (
                "ndjson_bytes_total",
                "counter",
                "NDJSON bytes before gzip.",
                s.ndjson_bytes,
            ),
            ("batches_total", "counter", "Batches stored.", s.batches),
            (
                "s3_retries_total",
                "counter",
                "S3 requests retried after a transient failure.",
                s.retries,
            ),
            (
                "ack_failures_total",
                "counter",
                "Acknowledgements that did not reach the control plane.",
                s.ack_failures,
            ),
            (
                "redeliveries_skipped_total",
                "counter",
                "Messages delivered again and skipped.",
                s.redeliveries,
            ),
            (
                "stream_gap_messages_total",
                "counter",
                "Messages dropped by the stream's limits before they were archived.",
                s.gap_messages,
            ),
            (
                "consumer_errors_total",
                "counter",
                "Errors of the consumer's message flow.",
                s.consumer_errors,
            ),
            (
                "last_sequence",
                "gauge",
                "Highest stream sequence stored.",
                s.last_seq,
            ),
            (
                "held_messages",
                "gauge",
                "Messages in the open batch.",
                s.held,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in rows {
            out.push_str(&format!(
                "# HELP geolb_archive_{name} {help}\n# TYPE geolb_archive_{name} {kind}\ngeolb_archive_{name} {value}\n"
            ));
        }
        out
    }
}

/// Serves `GET /metrics` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Metrics) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let request = read_head(&mut socket).await;
            let (status, body) = if request.starts_with("GET /metrics ") {
                ("200 OK", metrics.render())
            } else {
                ("404 Not Found", "only GET /metrics is served\n".to_string())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        });
    }
}

/// The request head (up to its blank line, 4 KiB, or 5 s), as text.
async fn read_head(socket: &mut tokio::net::TcpStream) -> String {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 4096 {
        match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_renders() {
        let m = Metrics::default();
        m.stored(10, 2, 300, 3000, 42);
        m.stored(5, 1, 100, 1000, 47);
        m.retried();
        m.gap(3);
        let s = m.snapshot();
        assert_eq!(
            (s.messages, s.objects, s.batches, s.last_seq),
            (15, 3, 2, 47)
        );
        let text = m.render();
        assert!(text.contains(
            "# TYPE geolb_archive_messages_total counter\ngeolb_archive_messages_total 15\n"
        ));
        assert!(text.contains("geolb_archive_s3_retries_total 1\n"));
        assert!(text.contains("geolb_archive_stream_gap_messages_total 3\n"));
    }
}
