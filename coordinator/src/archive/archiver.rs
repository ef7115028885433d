//! The consumer loop: messages of the telemetry stream, in order, through a
//! durable consumer into [`Batch`]es; a batch is stored (one object per
//! kind) and only then acknowledged, all of it at once (`AckPolicy::All`).
//!
//! Nothing is lost: a message is acknowledged only once its object is
//! stored, so a crash, a restart or an S3 outage leaves it in the stream.
//! Messages a run held when it died are still pending on the durable
//! consumer (the server would deliver them again only after the ack wait,
//! behind newer ones): a new run first replays them from the ack floor
//! through a temporary consumer, so its first batch starts right after the
//! last one stored, and its first acknowledgement covers them too.
//!
//! Nothing is archived twice: messages delivered again that are already
//! stored or held are skipped (and acknowledged), and on start the first
//! batch is checked against the bucket: if objects of a batch starting there
//! exist (stored by a run that died before its acknowledgement), the batch
//! is rebuilt to the same end and its objects written again, byte for byte,
//! under the same keys.

use super::batch::{Batch, Limits, Line, Record};
use super::layout::{self, Kind, Partition};
use super::metrics::Metrics;
use super::retry::{retry, RetryPolicy};
use super::store::{Archive, StoreError};
use super::stream::{self, StreamError};
use crate::control::Control;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{self, stream::Stream};
use futures::StreamExt;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How the archiver batches and stops.
#[derive(Debug, Clone)]
pub struct Options {
    /// The durable consumer's name.
    pub durable: String,
    /// When a batch is full.
    pub limits: Limits,
    /// A batch is stored at the latest this long after its first message arrived.
    pub flush_interval: Duration,
    /// After SIGTERM, how long the last batch may take to store.
    pub shutdown_timeout: Duration,
    /// Longest wait between two attempts of a failing S3 request.
    pub max_retry_delay: Duration,
}

/// Why the archiver stopped before it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The stream or the consumer cannot be used.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// The bucket refused for good, or stayed away past the shutdown grace.
    #[error("{0}; what it held ({1}) stays in the stream and is archived at the next start")]
    Store(StoreError, String),
    /// The consumer's message flow cannot go on.
    #[error("the consumer of stream {stream} cannot go on: {0}", stream = stream::STREAM)]
    Consumer(String),
}

/// The batch being filled, and the last message of it delivered by the
/// durable consumer (acknowledging it acknowledges everything before).
struct Open {
    batch: Batch,
    last: Option<jetstream::Message>,
    flush_at: Instant,
}

/// What the loop keeps between messages.
struct State<'a> {
    archive: &'a Archive,
    options: &'a Options,
    metrics: &'a Metrics,
    stop: RetryPolicy,
    open: Option<Open>,
    /// Highest sequence stored.
    stored: u64,
    /// Whether the first batch was checked against the bucket.
    probed: bool,
}

/// Archives the stream until `shutdown` is cancelled, then stores what it holds.
pub async fn run(
    control: &Control,
    stream: &Stream,
    consumer: PullConsumer,
    archive: &Archive,
    options: &Options,
    metrics: &Metrics,
    shutdown: CancellationToken,
) -> Result<(), ArchiveError> {
    let info = consumer.cached_info();
    let (floor, delivered) = (
        info.ack_floor.stream_sequence,
        info.delivered.stream_sequence,
    );
    let mut state = State {
        archive,
        options,
        metrics,
        stop: RetryPolicy::until_shutdown(shutdown.clone(), options.shutdown_timeout)
            .with_max_delay(options.max_retry_delay),
        open: None,
        stored: floor,
        probed: false,
    };
    tracing::info!(url = %archive.url(), endpoint = archive.endpoint(), control = control.url(), from = floor + 1, "Archiving telemetry.");
    if delivered > floor {
        replay(control, stream, &mut state, floor + 1, delivered, &shutdown).await?;
        if shutdown.is_cancelled() {
            return state.flush().await;
        }
    }
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(1000)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .map_err(|e| ArchiveError::Consumer(e.to_string()))?;
    loop {
        let flush_at = state.open.as_ref().map(|o| o.flush_at);
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = sleep_until(flush_at), if flush_at.is_some() => state.flush().await?,
            next = messages.next() => match next {
                None => return Err(ArchiveError::Consumer("its message flow ended (was the consumer deleted?)".into())),
                Some(Err(e)) => {
                    metrics.consumer_error();
                    tracing::warn!(error = %e, "The consumer's message flow reported an error; going on.");
                }
                Some(Ok(message)) => {
                    let Some(record) = record(&message) else {
                        tracing::warn!(subject = %message.subject, "Skipped a message without JetStream metadata.");
                        continue;
                    };
                    // Not cancelled by a shutdown: a flush under way ends within the grace period.
                    state.take(record, Some(message)).await?;
                }
            },
        }
    }
    state.flush().await
}

/// Feeds `from..=to` (delivered to a run that died, never acknowledged) from
/// a temporary consumer, until done or `shutdown`.
async fn replay(
    control: &Control,
    stream: &Stream,
    state: &mut State<'_>,
    from: u64,
    to: u64,
    shutdown: &CancellationToken,
) -> Result<(), ArchiveError> {
    tracing::info!(from, to, "Replaying the messages a stopped run held.");
    let consumer =
        stream::replay_consumer(control, stream, &state.options.durable, from, None).await?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| ArchiveError::Consumer(e.to_string()))?;
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(Duration::from_secs(10), messages.next()) => next,
            _ = shutdown.cancelled() => return Ok(()),
        };
        let message = match next {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(e))) => {
                state.metrics.consumer_error();
                tracing::warn!(error = %e, "The replay reported an error; going on.");
                continue;
            }
            // Nothing more to replay (the stream dropped the rest, or it ended).
            Ok(None) | Err(_) => return Ok(()),
        };
        let Some(record) = record(&message) else {
            continue;
        };
        let (seq, pending) = (record.seq, message.info().map_or(0, |i| i.pending));
        if seq > to {
            return Ok(());
        }
        state.take(record, None).await?;
        if seq == to || pending == 0 {
            return Ok(());
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What the archiver keeps of a stream message.
fn record(message: &jetstream::Message) -> Option<Record> {
    let info = message.info().ok()?;
    let ms = info.published.unix_timestamp_nanos() / 1_000_000;
    Some(Record {
        seq: info.stream_sequence,
        subject: message.subject.to_string(),
        time_ms: u64::try_from(ms).unwrap_or(0),
        payload: message.payload.clone(),
    })
}

impl State<'_> {
    /// Adds one message (`message` when the durable delivered it, to be acknowledged).
    async fn take(
        &mut self,
        record: Record,
        message: Option<jetstream::Message>,
    ) -> Result<(), ArchiveError> {
        let held = self
            .open
            .as_ref()
            .map_or(self.stored, |o| o.batch.range().1);
        if record.seq <= held {
            self.metrics.redelivered();
            if let (true, Some(message)) = (record.seq <= self.stored, &message) {
                let _ = message.ack().await;
            }
            return Ok(());
        }
        if record.seq > held + 1 {
            self.metrics.gap(record.seq - held - 1);
        }
        let mut forced_end = None;
        if !self.probed {
            self.probed = true;
            forced_end = self.unacknowledged_end(&record).await?;
        }
        let line = Line::encode(&record);
        if self.open.as_ref().is_some_and(|o| !o.batch.accepts(&line)) {
            self.flush().await?;
        }
        match self.open.as_mut() {
            Some(open) => {
                open.batch.push(line);
                if message.is_some() {
                    open.last = message;
                }
            }
            None => {
                self.open = Some(Open {
                    batch: Batch::start(line, self.options.limits, forced_end),
                    last: message,
                    flush_at: Instant::now() + self.options.flush_interval,
                })
            }
        }
        let open = self.open.as_ref().expect("a batch is open");
        self.metrics.holding(open.batch.messages() as u64);
        if open.batch.is_full() {
            self.flush().await?;
        }
        Ok(())
    }

    /// Stores the open batch's objects, then acknowledges its messages.
    async fn flush(&mut self) -> Result<(), ArchiveError> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        let (first, last) = open.batch.range();
        let messages = open.batch.messages() as u64;
        let objects = open.batch.finish(self.archive.url());
        let (mut bytes, mut ndjson) = (0, 0);
        for object in &objects {
            retry(&object.key, self.metrics, &self.stop, || {
                self.archive
                    .put(&object.key, object.body.clone(), "application/gzip")
            })
            .await
            .map_err(|e| ArchiveError::Store(e, format!("sequences {first} to {last}")))?;
            bytes += object.body.len() as u64;
            ndjson += object.ndjson_bytes as u64;
        }
        // Replayed messages have nothing to acknowledge: the next batch's acknowledgement covers them.
        if let Some(message) = open.last {
            match tokio::time::timeout(Duration::from_secs(10), message.double_ack()).await {
                Ok(Ok(())) => {}
                // Stored all the same: if the messages come again they are skipped.
                Ok(Err(e)) => self.ack_failed(last, &e.to_string()),
                Err(_) => self.ack_failed(last, "no answer in 10 s"),
            }
        }
        self.stored = last;
        self.metrics
            .stored(messages, objects.len() as u64, bytes, ndjson, last);
        self.metrics.holding(0);
        tracing::info!(
            first,
            last,
            messages,
            objects = objects.len(),
            bytes,
            "Stored a batch."
        );
        Ok(())
    }

    fn ack_failed(&self, last: u64, error: &str) {
        self.metrics.ack_failed();
        tracing::warn!(
            last,
            error,
            "The batch is stored but its acknowledgement failed."
        );
    }

    /// The end of a batch starting at `first` that a run stored without
    /// acknowledging it (its objects are in the bucket), if any.
    async fn unacknowledged_end(&self, first: &Record) -> Result<Option<u64>, ArchiveError> {
        let at = Partition::of_ms(first.time_ms);
        let mut end: Option<u64> = None;
        for kind in Kind::ALL {
            let prefix = layout::batch_prefix(self.archive.url(), kind, &at, first.seq);
            let folder = &prefix[..prefix.rfind('/').map_or(0, |i| i + 1)];
            let keys = retry(folder, self.metrics, &self.stop, || {
                self.archive.list(folder)
            })
            .await
            .map_err(|e| ArchiveError::Store(e, "no batch yet".into()))?;
            for (key, _) in keys.iter().filter(|(k, _)| k.starts_with(&prefix)) {
                if let Some((_, last)) = layout::batch_range(key) {
                    end = end.max(Some(last));
                }
            }
        }
        if let Some(end) = end {
            tracing::warn!(
                first = first.seq,
                last = end,
                "Found the objects of a batch stored but not acknowledged; storing it again under the same keys."
            );
        }
        Ok(end)
    }
}
