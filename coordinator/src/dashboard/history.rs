//! Each agent's last minutes, for the agent page's charts: one sample per
//! metrics message (CPU, memory, connections, message rates), each client
//! candidate's RTT (the mean over the agent's clients, at most one point a
//! second), the gaps of its clients' moves, and its last events. Fed from
//! [`LiveFleet::subscribe`](crate::live::LiveFleet::subscribe); every ring
//! is bounded, and a lagging feed skips updates rather than grow.

use super::plane::Plane;
use crate::live::Update;
use geolb_proto::client::{ClientStatus, Traffic};
use geolb_proto::{Event, EventKind, Metrics};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast::{error::RecvError, Receiver};

/// Samples kept per agent (5 minutes of 1 s metrics).
pub const SAMPLES: usize = 300;
/// Events kept per agent.
pub const EVENTS: usize = 50;
/// Client moves kept per agent.
pub const MOVES: usize = 100;
/// Candidates followed per client agent.
const CANDIDATES: usize = 32;

/// One metrics sample.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sample {
    /// When, ms since the epoch.
    pub at_ms: u64,
    /// CPU of the child (or the server as it reports it), percent of a core.
    pub cpu_pct: f64,
    /// Resident memory, bytes.
    pub rss_bytes: f64,
    /// Client connections (a server's; a client agent's connected clients).
    pub connections: f64,
    /// Messages in per second (a server's; a client agent's received).
    pub msgs_in: f64,
    /// Messages out per second (a server's; a client agent's sent).
    pub msgs_out: f64,
}

/// One client move: when, which client, its gap.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    /// When, ms since the epoch.
    pub at_ms: u64,
    /// The client.
    pub client: String,
    /// Its gap, ms.
    pub gap_ms: u64,
    /// Where to (server name), if anywhere.
    pub to: Option<String>,
}

/// What is kept of one agent.
#[derive(Debug, Clone, Default)]
pub struct AgentHistory {
    /// Metrics samples, oldest first.
    pub samples: VecDeque<Sample>,
    /// Last events, oldest first.
    pub events: VecDeque<Event>,
    /// Client moves, oldest first.
    pub moves: VecDeque<Move>,
    /// RTT by candidate URL: (ms since epoch, mean RTT) points, oldest first.
    pub rtt: BTreeMap<String, VecDeque<(u64, f64)>>,
    traffic: BTreeMap<String, (Traffic, bool)>,
    last_counters: Option<(u64, f64, f64)>,
    rtt_now: BTreeMap<String, BTreeMap<String, f64>>,
}

/// Every agent's history.
#[derive(Default)]
pub struct History {
    agents: Mutex<BTreeMap<String, AgentHistory>>,
    lagged: Mutex<u64>,
}

impl History {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, AgentHistory>> {
        self.agents.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of agent `id`'s history.
    pub fn agent(&self, id: &str) -> Option<AgentHistory> {
        self.lock().get(id).cloned()
    }

    /// Updates missed because the dashboard fell behind.
    pub fn lagged(&self) -> u64 {
        *self.lagged.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies one update.
    pub fn apply(&self, update: &Update) {
        let mut agents = self.lock();
        match update {
            Update::Metrics(m) => on_metrics(agents.entry(m.agent.clone()).or_default(), m),
            Update::Client { agent, status } => {
                on_status(agents.entry(agent.clone()).or_default(), status)
            }
            Update::Event(e) => on_event(agents.entry(e.agent.clone()).or_default(), e),
            Update::Heartbeat(_) | Update::Routing(_) => {}
        }
    }
}

fn push<T>(ring: &mut VecDeque<T>, item: T, max: usize) {
    if ring.len() >= max {
        ring.pop_front();
    }
    ring.push_back(item);
}

fn on_metrics(h: &mut AgentHistory, m: &Metrics) {
    let children_cpu: f64 = m.children.iter().map(|c| c.cpu_pct as f64).sum();
    let children_rss: f64 = m.children.iter().map(|c| c.rss_bytes as f64).sum();
    let (connections, counters) = match &m.server {
        Some(s) => (s.connections as f64, (s.in_msgs as f64, s.out_msgs as f64)),
        None => {
            let connected = h.traffic.values().filter(|(_, on)| *on).count() as f64;
            let received: u64 = h.traffic.values().map(|(t, _)| t.received).sum();
            let sent: u64 = h.traffic.values().map(|(t, _)| t.sent).sum();
            (connected, (received as f64, sent as f64))
        }
    };
    let (msgs_in, msgs_out) = match h.last_counters {
        Some((at, i, o)) if m.at_ms > at => {
            let dt = (m.at_ms - at) as f64 / 1000.0;
            (
                ((counters.0 - i) / dt).max(0.0),
                ((counters.1 - o) / dt).max(0.0),
            )
        }
        _ => (0.0, 0.0),
    };
    h.last_counters = Some((m.at_ms, counters.0, counters.1));
    let sample = Sample {
        at_ms: m.at_ms,
        cpu_pct: children_cpu,
        rss_bytes: children_rss,
        connections,
        msgs_in,
        msgs_out,
    };
    push(&mut h.samples, sample, SAMPLES);
}

fn on_status(h: &mut AgentHistory, s: &ClientStatus) {
    if h.traffic.len() < 4096 || h.traffic.contains_key(&s.client) {
        h.traffic
            .insert(s.client.clone(), (s.traffic, s.server.is_some()));
    }
    for c in s.candidates.iter().take(CANDIDATES) {
        let Some(rtt) = c.rtt_ms.filter(|r| r.is_finite()) else {
            continue;
        };
        let now = h.rtt_now.entry(c.url.clone()).or_default();
        if now.len() < 4096 || now.contains_key(&s.client) {
            now.insert(s.client.clone(), rtt);
        }
        let mean = now.values().sum::<f64>() / now.len() as f64;
        if h.rtt.len() >= CANDIDATES && !h.rtt.contains_key(&c.url) {
            continue;
        }
        let ring = h.rtt.entry(c.url.clone()).or_default();
        match ring.back_mut() {
            Some(last) if last.0 / 1000 == s.at_ms / 1000 => last.1 = mean,
            _ => push(ring, (s.at_ms, mean), SAMPLES),
        }
    }
}

fn on_event(h: &mut AgentHistory, e: &Event) {
    if let EventKind::ClientMoved { report } = &e.event {
        let moved = Move {
            at_ms: report.at_ms,
            client: report.client.clone(),
            gap_ms: report.gap_ms,
            to: report.to.as_ref().map(|s| s.name.clone()),
        };
        push(&mut h.moves, moved, MOVES);
    }
    push(&mut h.events, e.clone(), EVENTS);
}

/// Feeds `plane`'s history from the fleet's updates until the fleet stops.
pub async fn follow(plane: Arc<Plane>, mut updates: Receiver<Update>) {
    loop {
        match updates.recv().await {
            Ok(update) => {
                plane.history.apply(&update);
                // State changes come as events; ages, charts and client
                // positions are redrawn by the once-a-second tick.
                if matches!(update, Update::Event(_)) {
                    plane.touch();
                }
            }
            Err(RecvError::Lagged(n)) => {
                *plane
                    .history
                    .lagged
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) += n;
            }
            Err(RecvError::Closed) => return,
        }
    }
}
