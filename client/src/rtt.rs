//! The `rtt` driver: runs the election every probe interval (and at once
//! when a probe or the data-plane connection reports trouble) and carries
//! out its decisions.
//!
//! A move is make-before-break: connect to the new server, subscribe,
//! flush, switch the publisher to it, then drain the old connection in the
//! background. `gap_ms` is 0 when the old connection still worked (lame
//! duck, better server); otherwise it runs from the moment the old server
//! was lost (the disconnect event, or its probe connection closing when
//! that came first) or stopped answering (the unanswered PING) to the
//! moment the new connection is subscribed.

use super::backoff::Backoff;
use super::context::Context;
use super::election::{
    best, burst_settled, decide, eligible, seems_better, ties, Current, Decision, Policy, View,
};
use super::session::{Link, LinkEvent, LinkOptions};
use super::standby::{self, Standby};
use async_nats::connection::State;
use async_nats::Event;
use geolb_proto::client::MoveReason;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// How long a retired connection may take to drain.
pub const RETIRE_GRACE: Duration = Duration::from_secs(3);
/// How long the old connection keeps its subscriptions once the new one is
/// subscribed: the new interest reaches the cluster's other servers over
/// routes (and other regions over gateways) in its own time, while the old
/// one's unsubscribe travels on other routes; a message published there in
/// between went to neither (one was lost so under load in a rolling
/// upgrade). The receiver drops the duplicates of the overlap.
pub const INTEREST_SETTLE: Duration = Duration::from_secs(1);

/// The driver's parameters.
#[derive(Debug, Clone)]
pub struct RttParams {
    /// Election policy.
    pub policy: Policy,
    /// Evaluation interval (the probe interval).
    pub interval: Duration,
    /// The first election waits this long.
    pub election_window: Duration,
    /// Backoff before retrying a server the data plane could not reach.
    pub backoff: Backoff,
    /// How links are opened.
    pub link: LinkOptions,
    /// Keep a standby connection in the next region ([`crate::standby`]).
    pub standby: bool,
}

/// The driver's state.
struct Driver {
    ctx: Arc<Context>,
    params: RttParams,
    events: mpsc::UnboundedSender<LinkEvent>,
    link: Option<Link>,
    generation: u64,
    /// A data-plane failure of the current link.
    failed: Option<MoveReason>,
    /// Since when the client cannot publish (lost or silent server).
    down_since: Option<Instant>,
    /// Why the client has no link (for the record of its next connection).
    cut_off: Option<MoveReason>,
    better_since: Option<Instant>,
    skip: Vec<(usize, Instant)>,
    /// When the burst of probes after the current server went silent was sent.
    burst: Option<Instant>,
    /// The standby connection outside the current server's region.
    standby: Standby,
    /// Each candidate's region.
    regions: Vec<String>,
    /// The elected server could not be reached: decide again now, not at
    /// the next tick (when a region dies server by server, the first choice
    /// is often a neighbour that has just died too).
    retry: bool,
}

/// How often the driver looks at a burst's answers.
const BURST_POLL: Duration = Duration::from_millis(5);

/// Runs until `token` is cancelled, then drains the connection.
pub async fn drive(ctx: Arc<Context>, params: RttParams, token: CancellationToken) {
    let (events, mut event_rx) = mpsc::unbounded_channel();
    let mut tick = tokio::time::interval(params.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let started = Instant::now();
    let table = ctx.table.clone();
    let mut driver = Driver {
        ctx,
        params,
        events,
        link: None,
        generation: 0,
        failed: None,
        down_since: None,
        cut_off: None,
        better_since: None,
        skip: Vec::new(),
        burst: None,
        standby: Standby::default(),
        regions: (0..table.len())
            .map(|i| table.server_ref(i).region)
            .collect(),
        retry: false,
    };
    loop {
        tokio::select! {
            biased;
            _ = token.cancelled() => break,
            Some((generation, event)) = event_rx.recv() => driver.on_event(generation, event),
            _ = table.changed.notified() => {}
            _ = tick.tick() => {}
            _ = tokio::time::sleep(BURST_POLL), if driver.burst.is_some() => {}
        }
        if driver.link.is_none() && started.elapsed() < driver.params.election_window {
            continue;
        }
        driver.step().await;
        // Each failed move skips its candidate, so this ends.
        while std::mem::take(&mut driver.retry) && !token.is_cancelled() {
            driver.step().await;
        }
    }
    driver.ctx.publish_to.send_replace(None);
    if let Some(link) = driver.link.take() {
        let _ = tokio::time::timeout(RETIRE_GRACE, link.client.drain()).await;
    }
}

impl Driver {
    /// Notes a data-plane event of the current link.
    fn on_event(&mut self, generation: u64, event: Event) {
        if self.link.as_ref().map(|l| l.generation) != Some(generation) {
            return;
        }
        tracing::debug!(client = %self.ctx.id, %event, "Data-plane connection event.");
        match event {
            Event::Disconnected | Event::Closed => {
                self.failed = Some(MoveReason::Lost);
                self.down_since.get_or_insert_with(Instant::now);
            }
            Event::LameDuckMode => {
                self.failed.get_or_insert(MoveReason::LameDuck);
            }
            _ => {}
        }
    }

    /// Decides and acts once.
    async fn step(&mut self) {
        let now = Instant::now();
        self.skip.retain(|(_, until)| *until > now);
        let skip: Vec<usize> = self.skip.iter().map(|(i, _)| *i).collect();
        let mut views = self.ctx.table.views(now);
        let current = self.link.as_ref().map(|l| Current {
            index: l.index,
            failed: self.failed,
        });
        let mut decision = decide(
            &views,
            current,
            &self.params.policy,
            &mut self.better_since,
            &skip,
            now,
        );
        // A silent server: ask every candidate first, and trust only those
        // that answer (the others were last heard up to an idle interval ago).
        let silent = matches!(
            decision,
            Decision::Move {
                reason: MoveReason::Unresponsive,
                ..
            }
        );
        match (silent, self.burst, current) {
            (false, _, _) | (true, _, None) => self.burst = None,
            (true, None, Some(_)) => {
                self.ctx.table.burst();
                self.burst = Some(now);
                return;
            }
            (true, Some(sent), Some(current)) => {
                let elapsed = now.saturating_duration_since(sent);
                if !burst_settled(&views, current.index, elapsed) {
                    return;
                }
                for view in &mut views {
                    view.recent = elapsed;
                }
                self.burst = None;
                decision = decide(
                    &views,
                    Some(current),
                    &self.params.policy,
                    &mut self.better_since,
                    &skip,
                    now,
                );
            }
        }
        match decision {
            Decision::Stay => self.review(&views, current, &skip),
            Decision::Leave { reason } => self.leave(reason),
            Decision::Move { to, reason } => self.move_to(to, reason, &views).await,
        }
        self.keep_standby(&views);
    }

    /// Keeps the standby on the best server of the other regions.
    fn keep_standby(&mut self, views: &[View]) {
        if !self.params.standby {
            return;
        }
        let policy = &self.params.policy;
        let want = (self.link.as_ref())
            .and_then(|l| standby::target(views, l.index, &self.regions, policy));
        let (table, options, events) = (
            self.ctx.table.clone(),
            self.params.link.clone(),
            self.events.clone(),
        );
        self.standby.keep(want, &self.regions, views, move |i| {
            standby::open(table.server_ref(i).url, options, events)
        });
    }

    /// Has the candidate that seems better probed fast, and keeps it so
    /// while it beats the current server through the hold.
    fn review(&self, views: &[View], current: Option<Current>, skip: &[usize]) {
        let Some(current) = current else { return };
        let policy = &self.params.policy;
        let winning = best(views, policy, skip)
            .filter(|&b| b != current.index && self.better_since.is_some());
        let review = winning.or_else(|| seems_better(views, current.index, policy, skip));
        self.ctx.table.review(review);
    }

    /// Drops a lost connection with nowhere to go.
    fn leave(&mut self, reason: MoveReason) {
        let Some(link) = self.link.take() else {
            return;
        };
        self.down_since.get_or_insert_with(Instant::now);
        self.ctx.publish_to.send_replace(None);
        self.ctx.table.elect(None);
        link.retire(Duration::ZERO, RETIRE_GRACE);
        self.failed = None;
        self.cut_off = Some(reason);
        self.ctx.moved(reason, None, 0);
    }

    /// Connects to candidate `to` (or promotes the standby, when it is as
    /// good a server of the same region) and switches to it.
    async fn move_to(&mut self, to: usize, reason: MoveReason, views: &[View]) {
        let reason = match (&self.link, reason) {
            (None, MoveReason::Initial) => self.cut_off.unwrap_or(MoveReason::Initial),
            _ => reason,
        };
        if reason == MoveReason::Unresponsive {
            let silent = self
                .link
                .as_ref()
                .and_then(|l| self.ctx.table.unanswered_since(l.index));
            self.down_since = self.down_since.or(silent).or(Some(Instant::now()));
        }
        let rtt = |i: usize| views.get(i).and_then(|v| v.rtt_ms);
        let as_good = |i: usize| {
            self.regions.get(i) == self.regions.get(to)
                && views
                    .get(i)
                    .is_some_and(|v| eligible(v, &self.params.policy))
                && matches!((rtt(i), rtt(to)), (Some(a), Some(b)) if ties(a, b))
        };
        let standby = self.standby.take(to, as_good);
        let to = standby.as_ref().map_or(to, |s| s.index);
        let server = self.ctx.table.server_ref(to);
        self.generation += 1;
        tracing::debug!(client = %self.ctx.id, to = %server.url, ?reason, standby = standby.is_some(), "Moving.");
        let opened = match standby {
            Some(standby) => {
                standby.tag.store(self.generation, Ordering::Relaxed);
                let traffic = self.ctx.traffic.clone();
                Link::on(
                    standby.client,
                    to,
                    self.generation,
                    &self.params.link,
                    traffic,
                )
                .await
            }
            None => {
                let events = self.events.clone();
                let traffic = self.ctx.traffic.clone();
                let link = &self.params.link;
                Link::open(&server.url, to, self.generation, link, events, traffic).await
            }
        };
        let link = match opened {
            Ok(link) => link,
            Err(e) => {
                let delay = self.params.backoff.next_delay();
                tracing::warn!(server = %server.url, error = %e, retry_in = ?delay, "Cannot move to the elected server; trying another.");
                self.skip.push((to, Instant::now() + delay));
                self.retry = true;
                return;
            }
        };
        self.params.backoff.reset();
        let subscribed = Instant::now();
        if let (MoveReason::Lost, None, Some(old)) = (reason, self.down_since, &self.link) {
            // The probe saw the server go before the link did: the client was
            // cut off since then, unless the link still stands.
            if old.client.connection_state() != State::Connected {
                self.down_since = self.ctx.table.down_since(old.index);
            }
        }
        let gap = self
            .down_since
            .map_or(0, |since| (subscribed - since).as_millis() as u64);
        let mut to_ref = server;
        let info = link.client.server_info();
        if !info.server_name.is_empty() {
            to_ref.name = info.server_name;
        }
        self.ctx.publish_to.send_replace(Some(link.client.clone()));
        self.ctx.table.elect(Some(to));
        if let Some(old) = self.link.replace(link) {
            let overlap = subscribed + INTEREST_SETTLE + RETIRE_GRACE + Duration::from_secs(1);
            self.ctx.traffic.lock().overlap_until(overlap);
            old.retire(INTEREST_SETTLE, RETIRE_GRACE);
        }
        self.failed = None;
        self.down_since = None;
        self.cut_off = None;
        self.better_since = None;
        self.ctx.moved(reason, Some(to_ref), gap);
    }
}
