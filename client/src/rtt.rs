//! The `rtt` driver: runs the election every probe interval (and at once
//! when a probe or the data-plane connection reports trouble) and carries
//! out its decisions.
//!
//! A move is make-before-break: connect to the new server, subscribe,
//! flush, switch the publisher to it, then drain the old connection in the
//! background. `gap_ms` is 0 when the old connection still worked (lame
//! duck, better server); otherwise it runs from the moment the old server
//! was lost (disconnect event) or stopped answering (the unanswered PING)
//! to the moment the new connection is subscribed.

use super::backoff::Backoff;
use super::context::Context;
use super::election::{best, burst_settled, decide, seems_better, Current, Decision, Policy};
use super::session::{Link, LinkEvent, LinkOptions};
use async_nats::Event;
use geolb_proto::client::MoveReason;
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
            Decision::Move { to, reason } => self.move_to(to, reason).await,
        }
    }

    /// Has the candidate that seems better probed fast, and keeps it so
    /// while it beats the current server through the hold.
    fn review(&self, views: &[super::election::View], current: Option<Current>, skip: &[usize]) {
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

    /// Connects to candidate `to` and switches to it.
    async fn move_to(&mut self, to: usize, reason: MoveReason) {
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
        let server = self.ctx.table.server_ref(to);
        self.generation += 1;
        let opened = Link::open(
            &server.url,
            to,
            self.generation,
            &self.params.link,
            self.events.clone(),
            self.ctx.traffic.clone(),
        )
        .await;
        let link = match opened {
            Ok(link) => link,
            Err(e) => {
                let delay = self.params.backoff.next_delay();
                tracing::warn!(server = %server.url, error = %e, retry_in = ?delay, "Cannot move to the elected server; trying another.");
                self.skip.push((to, Instant::now() + delay));
                return;
            }
        };
        self.params.backoff.reset();
        let subscribed = Instant::now();
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
