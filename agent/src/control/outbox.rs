//! The event outbox: every event gets a sequence number and waits here until
//! the control plane has it. The buffer is bounded; when it is full the
//! oldest event is dropped and counted, and an `events_dropped` event tells
//! the reader how many once the control plane is back.

use crate::identity::Identity;
use async_nats::connection::State;
use geolb_proto::{now_ms, subject, Event, EventKind, OutboxStats, PROTOCOL_VERSION};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Events sent in one batch before a flush.
const BATCH: usize = 256;

/// The bounded, ordered buffer of events not yet confirmed sent.
pub struct Outbox {
    identity: Identity,
    capacity: usize,
    inner: Mutex<Inner>,
    wake: Notify,
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<Event>,
    next_seq: u64,
    dropped_total: u64,
    dropped_unreported: u64,
}

impl Outbox {
    /// An empty outbox holding at most `capacity` events.
    pub fn new(identity: Identity, capacity: usize) -> Outbox {
        Outbox {
            identity,
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                next_seq: 1,
                ..Inner::default()
            }),
            wake: Notify::new(),
        }
    }

    /// Stamps `kind` with the next sequence number and queues it.
    pub fn push(&self, kind: EventKind) {
        tracing::debug!(event = %kind.name(), "Event queued.");
        let mut inner = self.lock();
        let event = Event {
            v: PROTOCOL_VERSION,
            seq: inner.next_seq,
            at_ms: now_ms(),
            agent: self.identity.id.clone(),
            region: self.identity.region.clone(),
            role: self.identity.role,
            event: kind,
        };
        inner.next_seq += 1;
        // The report of drops may exceed the bound by one: it must not cause a drop itself.
        let is_report = matches!(event.event, EventKind::EventsDropped { .. });
        if inner.queue.len() >= self.capacity && !is_report {
            inner.queue.pop_front();
            inner.dropped_total += 1;
            inner.dropped_unreported += 1;
        }
        inner.queue.push_back(event);
        drop(inner);
        self.wake.notify_one();
    }

    /// Buffered, dropped and capacity counts.
    pub fn stats(&self) -> OutboxStats {
        let inner = self.lock();
        OutboxStats {
            buffered: inner.queue.len() as u64,
            dropped: inner.dropped_total,
            capacity: self.capacity as u64,
        }
    }

    /// The oldest events, up to `n`, without removing them.
    fn peek(&self, n: usize) -> Vec<Event> {
        self.lock().queue.iter().take(n).cloned().collect()
    }

    /// Removes every event up to and including `seq`.
    fn confirm(&self, seq: u64) {
        let mut inner = self.lock();
        while inner.queue.front().is_some_and(|e| e.seq <= seq) {
            inner.queue.pop_front();
        }
    }

    /// Takes the count of drops not yet reported.
    fn take_unreported_drops(&self) -> u64 {
        std::mem::take(&mut self.lock().dropped_unreported)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends queued events in order while connected, until cancelled.
    /// Events leave the buffer only after a successful flush, so a
    /// connection lost mid-batch resends the batch (readers dedupe by `seq`).
    pub async fn run(&self, client: async_nats::Client, token: CancellationToken) {
        let subject = subject::event(&self.identity.region, &self.identity.id);
        loop {
            tokio::select! {
                biased;
                _ = token.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
            while client.connection_state() == State::Connected {
                let dropped = self.take_unreported_drops();
                if dropped > 0 {
                    tracing::warn!(
                        dropped,
                        "Events were dropped while the control plane was away."
                    );
                    self.push(EventKind::EventsDropped { count: dropped });
                }
                let batch = self.peek(BATCH);
                let Some(last) = batch.last().map(|e| e.seq) else {
                    break;
                };
                if send(&client, &subject, &batch).await {
                    self.confirm(last);
                } else {
                    break;
                }
            }
        }
    }

    /// Tries once, briefly, to send what is queued (used at shutdown).
    pub async fn flush_now(&self, client: &async_nats::Client) {
        let subject = subject::event(&self.identity.region, &self.identity.id);
        let batch = self.peek(usize::MAX);
        if let Some(last) = batch.last().map(|e| e.seq) {
            if send(client, &subject, &batch).await {
                self.confirm(last);
            }
        }
    }
}

async fn send(client: &async_nats::Client, subject: &str, batch: &[Event]) -> bool {
    for event in batch {
        if client
            .publish(subject.to_string(), event.encode().into())
            .await
            .is_err()
        {
            return false;
        }
    }
    matches!(
        tokio::time::timeout(Duration::from_secs(2), client.flush()).await,
        Ok(Ok(()))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use geolb_proto::Role;

    fn outbox(capacity: usize) -> Outbox {
        Outbox::new(Identity::for_tests("a", "lon", Role::Server), capacity)
    }

    #[test]
    fn numbers_events_in_order() {
        let outbox = outbox(10);
        for _ in 0..3 {
            outbox.push(EventKind::Paused { replica: 0 });
        }
        let seqs: Vec<u64> = outbox.peek(10).iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
        outbox.confirm(2);
        let seqs: Vec<u64> = outbox.peek(10).iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![3]);
    }

    #[test]
    fn drops_the_oldest_and_counts() {
        let outbox = outbox(2);
        for _ in 0..5 {
            outbox.push(EventKind::Paused { replica: 0 });
        }
        let seqs: Vec<u64> = outbox.peek(10).iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![4, 5]);
        assert_eq!(outbox.stats().dropped, 3);
        assert_eq!(outbox.take_unreported_drops(), 3);
        assert_eq!(outbox.take_unreported_drops(), 0);
        outbox.push(EventKind::EventsDropped { count: 3 });
        assert_eq!(outbox.stats().dropped, 3, "the report drops nothing");
        assert_eq!(outbox.stats().buffered, 3);
    }
}
