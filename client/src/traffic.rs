//! The traffic itself: a publisher that sends a sequenced message at
//! `--rate` through whichever data-plane connection is current, and a
//! receive loop per connection that feeds the [`Receiver`].
//!
//! The publisher gives every tick a sequence number, even when no server is
//! connected or the publish does not get through within one interval: what
//! the client could not send shows as lost on the receiving side.

use super::message::{self, Header};
use super::payload::Payload;
use super::tracker::Receiver;
use async_nats::Client;
use futures::StreamExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// What the publisher sends.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Sender id.
    pub id: String,
    /// Subject.
    pub subject: String,
    /// Payload bytes per message.
    pub size: usize,
    /// Messages per second (0: none).
    pub rate: f64,
    /// What follows each header line.
    pub payload: Payload,
}

/// Shared traffic state: counters and the receiver.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Messages handed to a connection.
    pub sent: AtomicU64,
    /// What was received.
    pub receiver: Mutex<Receiver>,
}

impl Traffic {
    /// The report's traffic section.
    pub fn snapshot(&self) -> geolb_proto::client::Traffic {
        let sent = self.sent.load(Ordering::Relaxed);
        self.lock().traffic(sent)
    }

    /// The receiver, locked.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Receiver> {
        self.receiver.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Publishes until `token` is cancelled, through the client in `target`.
pub async fn publish(
    out: Outgoing,
    mut target: watch::Receiver<Option<Client>>,
    traffic: Arc<Traffic>,
    token: CancellationToken,
) {
    if out.rate <= 0.0 || !out.rate.is_finite() {
        return;
    }
    let period = Duration::from_secs_f64(1.0 / out.rate).max(Duration::from_micros(100));
    let run = message::now_us();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut seq = 0u64;
    loop {
        tokio::select! {
            biased;
            _ = token.cancelled() => return,
            _ = tick.tick() => {}
        }
        seq += 1;
        let Some(client) = target.borrow_and_update().clone() else {
            continue;
        };
        let header = Header {
            id: out.id.clone(),
            run,
            seq,
            sent_us: message::now_us(),
        };
        let payload = out.payload.encode(&header, out.size);
        let send = client.publish(out.subject.clone(), payload.into());
        if let Ok(Ok(())) = tokio::time::timeout(period, send).await {
            traffic.sent.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Feeds every message of `messages` to the receiver until the stream ends.
pub async fn receive<S>(mut messages: S, traffic: Arc<Traffic>)
where
    S: futures::Stream<Item = async_nats::Message> + Unpin,
{
    while let Some(msg) = messages.next().await {
        let Some(header) = message::decode(&msg.payload) else {
            continue;
        };
        let now_us = message::now_us();
        traffic.lock().observe(&header, now_us, Instant::now());
    }
}
