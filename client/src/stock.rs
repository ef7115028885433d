//! The `random` and `ordered` strategies: exactly what a stock async-nats
//! client does, for side-by-side comparison. One client gets every URL
//! (shuffled by async-nats, or in the given order with
//! `retain_servers_order`), keeps the default reconnect delays and ping
//! interval, and moves only when its connection drops. The only departures
//! from the defaults: `ignore_discovered_servers` (nothing bypasses the WAN
//! emulator) and `retry_on_initial_connect` (the client waits for a server
//! rather than exiting when none answers at start).
//!
//! This driver only observes: a Moved record with no `to` when the
//! connection drops, and one with the whole gap when it is back. The
//! reason is `lame_duck` after the server's notice, `unresponsive` when the
//! probes had found the server silent, `lost` otherwise. The server's URL
//! comes from matching its server id against the probes' INFO: the record
//! of a new connection waits up to 2 s for the probes to learn it, and
//! carries an empty URL if they do not (or with `--no-probes`).

use super::args::Strategy;
use super::context::Context;
use super::session::{subscribe, LinkOptions};
use async_nats::{ConnectOptions, Event};
use geolb_proto::client::{MoveReason, ServerRef};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long the final drain may take.
const DRAIN_GRACE: Duration = Duration::from_secs(3);
/// How often a pending connection record tries to learn the server's URL.
const RESOLVE_EVERY: Duration = Duration::from_millis(100);
/// How long a connection record waits for the probes to learn the server's URL.
const RESOLVE_WITHIN: Duration = Duration::from_secs(2);

/// A connection not reported yet: its server's URL is not known yet.
struct Pending {
    reason: MoveReason,
    gap_ms: u64,
    server_id: String,
    name: String,
    since: Instant,
}

/// Runs until `token` is cancelled, then drains the connection.
pub async fn drive(
    ctx: Arc<Context>,
    urls: Vec<String>,
    link: LinkOptions,
    token: CancellationToken,
) -> anyhow::Result<()> {
    let (events, mut event_rx) = mpsc::unbounded_channel::<Event>();
    let mut options = ConnectOptions::new()
        .name(&link.name)
        .ignore_discovered_servers()
        .retry_on_initial_connect()
        .connection_timeout(link.connect_timeout)
        .event_callback(move |event| {
            let _ = events.send(event);
            async {}
        });
    if ctx.strategy == Strategy::Ordered {
        options = options.retain_servers_order();
    }
    let client = options.connect(urls).await?;
    // Not flushed: the subscriptions go out when the first connection is made.
    let receiving = subscribe(&client, &link.subjects, None, ctx.traffic.clone()).await?;
    ctx.publish_to.send_replace(Some(client.clone()));
    let mut watcher = Watcher {
        ctx: ctx.clone(),
        down_since: None,
        lame_duck: false,
        connected_once: false,
        reason: MoveReason::Lost,
        pending: None,
    };
    let mut tick = tokio::time::interval(RESOLVE_EVERY);
    loop {
        tokio::select! {
            biased;
            _ = token.cancelled() => break,
            Some(event) = event_rx.recv() => watcher.on_event(event, &client),
            _ = tick.tick() => watcher.resolve(false),
        }
    }
    watcher.resolve(true);
    ctx.publish_to.send_replace(None);
    let _ = tokio::time::timeout(DRAIN_GRACE, async {
        let _ = client.drain().await;
        let _ = receiving.await;
    })
    .await;
    Ok(())
}

/// Turns connection events into Moved records.
struct Watcher {
    ctx: Arc<Context>,
    down_since: Option<Instant>,
    lame_duck: bool,
    connected_once: bool,
    reason: MoveReason,
    pending: Option<Pending>,
}

impl Watcher {
    fn on_event(&mut self, event: Event, client: &async_nats::Client) {
        match event {
            Event::LameDuckMode => self.lame_duck = true,
            Event::Disconnected => {
                self.resolve(true);
                self.down_since.get_or_insert_with(Instant::now);
                self.reason = self.classify();
                self.lame_duck = false;
                self.ctx.moved(self.reason, None, 0);
            }
            Event::Connected => {
                self.resolve(true);
                let reason = match self.connected_once {
                    true => self.reason,
                    false => MoveReason::Initial,
                };
                self.connected_once = true;
                let gap_ms = match reason {
                    MoveReason::Initial => 0,
                    _ => self
                        .down_since
                        .map_or(0, |t| t.elapsed().as_millis() as u64),
                };
                self.down_since = None;
                let info = client.server_info();
                self.pending = Some(Pending {
                    reason,
                    gap_ms,
                    server_id: info.server_id,
                    name: info.server_name,
                    since: Instant::now(),
                });
                self.resolve(false);
            }
            _ => {}
        }
    }

    /// Reports the pending connection once the probes know its server (or
    /// at once when `now`, or after [`RESOLVE_WITHIN`], with what is known).
    fn resolve(&mut self, now: bool) {
        let Some(pending) = &self.pending else {
            return;
        };
        let found = self.ctx.table.find_server_id(&pending.server_id);
        if found.is_none() && !now && pending.since.elapsed() < RESOLVE_WITHIN {
            return;
        }
        let Some(pending) = self.pending.take() else {
            return;
        };
        let to = match found {
            Some(i) => ServerRef {
                name: pending.name,
                ..self.ctx.table.server_ref(i)
            },
            None => ServerRef {
                url: String::new(),
                region: String::new(),
                name: pending.name,
                cluster: String::new(),
            },
        };
        self.ctx.moved(pending.reason, Some(to), pending.gap_ms);
    }

    /// Why the connection just dropped.
    fn classify(&self) -> MoveReason {
        if self.lame_duck {
            return MoveReason::LameDuck;
        }
        let index = self.ctx.current().and_then(|s| {
            let candidates = self.ctx.table.candidates();
            candidates.iter().position(|c| c.url == s.url)
        });
        let silent = index.is_some_and(|i| self.ctx.table.unanswered_since(i).is_some());
        match silent {
            true => MoveReason::Unresponsive,
            false => MoveReason::Lost,
        }
    }
}
