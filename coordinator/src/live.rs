//! The fleet as it is now, kept up to date from the control plane alone:
//! every agent's last heartbeat, every server's health from the metrics its
//! agent ships, every client's last status (its server, its candidates and
//! their measured round trips, its traffic), and a stream of [`Update`]s
//! for whoever follows it live (scenarios, the dashboard).
//!
//! [`LiveFleet::start`] subscribes to heartbeats, metrics, client reports
//! and events, then primes the agents from the heartbeat stream (`fleet
//! ls`), so a fleet is known at once rather than after an interval. It
//! never needs a monitoring port: it works wherever the coordinator reaches
//! the control plane.

use crate::control::Control;
use crate::liveness::{age_ms, classify, Liveness};
use futures::StreamExt;
use geolb_proto::client::{ClientRecord, ClientStatus};
use geolb_proto::{subject, ChildState, Event, Heartbeat, Metrics, Role, ServerMetrics};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio::sync::broadcast;

/// Updates buffered for a follower that is behind; a slower one misses the
/// oldest (and is told how many) instead of growing memory.
const UPDATES: usize = 16_384;

/// Whether a server's metrics show it healthy and fully joined.
pub fn joined(m: &ServerMetrics, want_routes: u32, want_gateways: usize) -> Result<(), String> {
    let gateways = m.gateways.iter().filter(|g| g.outbound).count();
    if !m.healthy {
        Err(match &m.error {
            Some(e) => format!("monitor unreadable: {e}"),
            None => format!("/healthz answers {}", m.healthz_status),
        })
    } else if m.routes < want_routes {
        Err(format!("{} of {want_routes} route peers", m.routes))
    } else if gateways < want_gateways {
        Err(format!("{gateways} of {want_gateways} gateways"))
    } else {
        Ok(())
    }
}

/// One thing that arrived on the control plane.
#[derive(Debug, Clone)]
pub enum Update {
    /// An agent's heartbeat.
    Heartbeat(Arc<Heartbeat>),
    /// An agent's metrics.
    Metrics(Arc<Metrics>),
    /// A client's status, from the agent `agent`.
    Client {
        /// The agent that published it (from the subject).
        agent: String,
        /// The status.
        status: Arc<ClientStatus>,
    },
    /// An agent's event.
    Event(Arc<Event>),
    /// A change of a routing component (the GeoDNS, the anycast router).
    Routing(Arc<geolb_proto::routing::RoutingEvent>),
}

/// An agent as last heard from.
#[derive(Debug, Clone)]
pub struct AgentView {
    /// Its last heartbeat.
    pub heartbeat: Heartbeat,
    /// Its last metrics, and when they arrived here.
    pub metrics: Option<(Metrics, Instant)>,
}

impl AgentView {
    /// Agent id.
    pub fn id(&self) -> &str {
        &self.heartbeat.status.id
    }

    /// Its region.
    pub fn region(&self) -> &str {
        &self.heartbeat.status.region
    }

    /// Server or client.
    pub fn role(&self) -> Role {
        self.heartbeat.status.role
    }

    /// Live, stale or lost, by the heartbeat's age now.
    pub fn liveness(&self) -> Liveness {
        let age = age_ms(self.heartbeat.at_ms, geolb_proto::now_ms());
        classify(age, self.heartbeat.interval_ms)
    }

    /// Milliseconds since its last heartbeat (agent clock against ours).
    pub fn age_ms(&self) -> u64 {
        age_ms(self.heartbeat.at_ms, geolb_proto::now_ms())
    }

    /// Whether its child is running (or draining) by the last heartbeat.
    pub fn running(&self) -> bool {
        matches!(
            self.heartbeat.status.state,
            ChildState::Running | ChildState::Draining
        )
    }

    /// The server's health from its last metrics, if it is a server with a monitor.
    pub fn server(&self) -> Option<&ServerMetrics> {
        self.metrics.as_ref().and_then(|(m, _)| m.server.as_ref())
    }
}

/// A client as last heard from.
#[derive(Debug, Clone)]
pub struct ClientEntry {
    /// The agent whose report channel carried it.
    pub agent: String,
    /// Its last status.
    pub status: ClientStatus,
    /// When that status arrived here.
    pub received: Instant,
}

#[derive(Default)]
struct State {
    agents: BTreeMap<String, AgentView>,
    clients: BTreeMap<String, ClientEntry>,
}

/// The fleet, followed live; clones share it. Dropping the last clone stops following.
#[derive(Clone)]
pub struct LiveFleet {
    state: Arc<Mutex<State>>,
    updates: broadcast::Sender<Update>,
    _task: Arc<AbortOnDrop>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl LiveFleet {
    /// Follows the fleet on `control`, primed with the heartbeat stream.
    pub async fn start(control: &Control) -> anyhow::Result<LiveFleet> {
        let client = control.client();
        let heartbeats = client.subscribe(subject::HEARTBEATS_ALL).await?;
        let metrics = client.subscribe(subject::METRICS_ALL).await?;
        let clients = client.subscribe(subject::CLIENTS_ALL).await?;
        let events = client.subscribe(subject::EVENTS_ALL).await?;
        let routing = client.subscribe(geolb_proto::routing::CHANGES_ALL).await?;
        let state = Arc::new(Mutex::new(State::default()));
        let (updates, _) = broadcast::channel(UPDATES);
        let task = tokio::spawn(follow(
            [heartbeats, metrics, clients, events, routing],
            state.clone(),
            updates.clone(),
        ));
        let live = LiveFleet {
            state,
            updates,
            _task: Arc::new(AbortOnDrop(task)),
        };
        // Agents gone for longer than the stream keeps are not listed.
        if let Ok(listed) = crate::fleet::list(control).await {
            let mut state = live.lock();
            for entry in listed {
                on_heartbeat(&mut state, entry.heartbeat);
            }
        }
        Ok(live)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows every update from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Update> {
        self.updates.subscribe()
    }

    /// Every agent heard of, by id.
    pub fn agents(&self) -> BTreeMap<String, AgentView> {
        self.lock().agents.clone()
    }

    /// One agent.
    pub fn agent(&self, id: &str) -> Option<AgentView> {
        self.lock().agents.get(id).cloned()
    }

    /// Every client heard of, by client id.
    pub fn clients(&self) -> BTreeMap<String, ClientEntry> {
        self.lock().clients.clone()
    }

    /// The live agents of `role`, sorted by region then id (naturally).
    pub fn live(&self, role: Role) -> Vec<AgentView> {
        let mut agents: Vec<AgentView> = self
            .lock()
            .agents
            .values()
            .filter(|a| a.role() == role && a.liveness() == Liveness::Live)
            .cloned()
            .collect();
        agents.sort_by(|a, b| {
            crate::fleet::natural_cmp(a.region(), b.region())
                .then_with(|| crate::fleet::natural_cmp(a.id(), b.id()))
        });
        agents
    }

    /// The regions with at least one live server agent.
    pub fn server_regions(&self) -> BTreeSet<String> {
        self.live(Role::Server)
            .iter()
            .map(|a| a.region().to_string())
            .collect()
    }
}

async fn follow(
    subscriptions: [async_nats::Subscriber; 5],
    state: Arc<Mutex<State>>,
    updates: broadcast::Sender<Update>,
) {
    let mut all = futures::stream::select_all(subscriptions);
    while let Some(message) = all.next().await {
        let update = match decode(&message) {
            Some(update) => update,
            None => continue,
        };
        {
            let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
            apply(&mut state, &update);
        }
        // Nobody following is fine.
        let _ = updates.send(update);
    }
}

fn decode(message: &async_nats::Message) -> Option<Update> {
    let subject = message.subject.as_str();
    let payload = &message.payload;
    if subject.starts_with("geolb.hb.") {
        serde_json::from_slice(payload)
            .ok()
            .map(|hb| Update::Heartbeat(Arc::new(hb)))
    } else if subject.starts_with("geolb.metrics.") {
        serde_json::from_slice(payload)
            .ok()
            .map(|m| Update::Metrics(Arc::new(m)))
    } else if subject.starts_with("geolb.client.") {
        let agent = subject.rsplit('.').next()?.to_string();
        match ClientRecord::decode(payload).ok()? {
            ClientRecord::Status(status) => Some(Update::Client {
                agent,
                status: Arc::new(status),
            }),
            ClientRecord::Moved(_) => None,
        }
    } else if subject.starts_with("geolb.evt.") {
        serde_json::from_slice(payload)
            .ok()
            .map(|e| Update::Event(Arc::new(e)))
    } else if subject.starts_with("geolb.routing.") {
        serde_json::from_slice(payload)
            .ok()
            .map(|e| Update::Routing(Arc::new(e)))
    } else {
        None
    }
}

fn apply(state: &mut State, update: &Update) {
    match update {
        Update::Heartbeat(hb) => on_heartbeat(state, (**hb).clone()),
        Update::Metrics(m) => {
            if let Some(agent) = state.agents.get_mut(&m.agent) {
                agent.metrics = Some(((**m).clone(), Instant::now()));
            }
        }
        Update::Client { agent, status } => {
            state.clients.insert(
                status.client.clone(),
                ClientEntry {
                    agent: agent.clone(),
                    status: (**status).clone(),
                    received: Instant::now(),
                },
            );
        }
        Update::Event(_) | Update::Routing(_) => {}
    }
}

fn on_heartbeat(state: &mut State, heartbeat: Heartbeat) {
    match state.agents.get_mut(&heartbeat.status.id) {
        Some(agent) if agent.heartbeat.at_ms > heartbeat.at_ms => {}
        Some(agent) => agent.heartbeat = heartbeat,
        None => {
            state.agents.insert(
                heartbeat.status.id.clone(),
                AgentView {
                    heartbeat,
                    metrics: None,
                },
            );
        }
    }
}
