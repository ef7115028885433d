//! The scenario's eyes: every agent event and every client report the
//! fleet sees, kept as a timeline and, per client, its latest status, its
//! counters at the baseline, and its moves. Every timeline entry is also
//! published on `geolb.scenario.<run id>` as it is added
//! ([`geolb_proto::scenario`]), so the run can be followed live.

use crate::live::{LiveFleet, Update};
use crate::report::TimelineEntry;
use geolb_proto::client::{ClientMove, ClientStatus};
use geolb_proto::routing::RoutingEvent;
use geolb_proto::scenario::{self, ScenarioUpdate};
use geolb_proto::{Event, EventKind};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{broadcast, mpsc};

/// Most timeline entries kept (a report must fit one message).
const MAX_TIMELINE: usize = 5000;

/// What the observer knows of one client.
#[derive(Debug, Clone)]
pub struct ClientView {
    /// The agent whose report channel carries it.
    pub agent: String,
    /// Its latest status.
    pub latest: ClientStatus,
    /// When that status arrived.
    pub received: Instant,
    /// Its status when the baseline was taken.
    pub baseline: Option<ClientStatus>,
    /// Its moves since the baseline, with their time (ms since the start).
    pub moves: Vec<(u64, ClientMove)>,
    /// `dns`: every lookup it reported, oldest first.
    pub lookups: Vec<geolb_proto::client::Lookup>,
}

impl ClientView {
    /// The region of the server it is on.
    pub fn region_now(&self) -> Option<&str> {
        self.latest.server.as_ref().map(|s| s.region.as_str())
    }

    /// Its status before the fault: the baseline, else the latest.
    pub fn before(&self) -> &ClientStatus {
        self.baseline.as_ref().unwrap_or(&self.latest)
    }
}

#[derive(Default)]
struct Seen {
    timeline: Vec<TimelineEntry>,
    clients: BTreeMap<String, ClientView>,
    routing: Vec<(u64, RoutingEvent)>,
    missed: u64,
}

/// Watches the fleet for the whole scenario.
pub struct Observer {
    started: Instant,
    seen: Arc<Mutex<Seen>>,
    published: mpsc::UnboundedSender<TimelineEntry>,
    task: tokio::task::JoinHandle<()>,
}

impl Observer {
    /// Follows `live`; publishes run `run`'s entries on `client`.
    pub fn start(live: &LiveFleet, client: async_nats::Client, run: String) -> Observer {
        let started = Instant::now();
        let seen = Arc::new(Mutex::new(Seen::default()));
        for (id, entry) in live.clients() {
            lock(&seen).clients.insert(
                id,
                ClientView {
                    agent: entry.agent,
                    latest: entry.status,
                    received: entry.received,
                    baseline: None,
                    moves: Vec::new(),
                    lookups: Vec::new(),
                },
            );
        }
        let (published, entries) = mpsc::unbounded_channel();
        let task = tokio::spawn(watch(
            live.subscribe(),
            entries,
            published.clone(),
            client,
            run,
            seen.clone(),
            started,
        ));
        Observer {
            started,
            seen,
            published,
            task,
        }
    }

    /// Milliseconds since the observer started.
    pub fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Adds a scenario step to the timeline.
    pub fn note(&self, kind: &str, detail: impl Into<String>) {
        let detail = detail.into();
        tracing::info!(kind, detail = %detail, "Scenario step.");
        let entry = TimelineEntry {
            t_ms: self.elapsed_ms(),
            source: "scenario".into(),
            kind: kind.into(),
            detail,
        };
        push(&mut lock(&self.seen), &self.published, entry);
    }

    /// Takes every client's counters as the baseline and forgets older moves.
    pub fn mark_baseline(&self) {
        for view in lock(&self.seen).clients.values_mut() {
            view.baseline = Some(view.latest.clone());
            view.moves.clear();
        }
    }

    /// Every client known, by id.
    pub fn clients(&self) -> BTreeMap<String, ClientView> {
        lock(&self.seen).clients.clone()
    }

    /// Every change of a routing component since the start, with its time
    /// (ms since the start).
    pub fn routing(&self) -> Vec<(u64, RoutingEvent)> {
        lock(&self.seen).routing.clone()
    }

    /// The timeline so far, with a last entry saying how many updates a
    /// busy coordinator missed, if any.
    pub fn timeline(&self) -> Vec<TimelineEntry> {
        let seen = lock(&self.seen);
        let mut timeline = seen.timeline.clone();
        if seen.missed > 0 {
            timeline.push(TimelineEntry {
                t_ms: self.elapsed_ms(),
                source: "scenario".into(),
                kind: "missed".into(),
                detail: format!("{} updates arrived faster than they were read", seen.missed),
            });
        }
        timeline
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|p| p.into_inner())
}

fn push(seen: &mut Seen, published: &mpsc::UnboundedSender<TimelineEntry>, entry: TimelineEntry) {
    if seen.timeline.len() < MAX_TIMELINE {
        let _ = published.send(entry.clone());
        seen.timeline.push(entry);
    }
}

async fn watch(
    mut updates: broadcast::Receiver<Update>,
    mut entries: mpsc::UnboundedReceiver<TimelineEntry>,
    published: mpsc::UnboundedSender<TimelineEntry>,
    client: async_nats::Client,
    run: String,
    seen: Arc<Mutex<Seen>>,
    started: Instant,
) {
    let subject = scenario::subject(&run);
    loop {
        tokio::select! {
            update = updates.recv() => match update {
                Ok(update) => {
                    let t_ms = started.elapsed().as_millis() as u64;
                    on_update(&mut lock(&seen), &published, t_ms, update);
                }
                Err(broadcast::error::RecvError::Lagged(n)) => lock(&seen).missed += n,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            Some(entry) = entries.recv() => {
                let update = ScenarioUpdate::Entry { run: run.clone(), entry };
                if let Ok(body) = serde_json::to_vec(&update) {
                    let _ = client.publish(subject.clone(), body.into()).await;
                }
            }
        }
    }
}

fn on_update(
    seen: &mut Seen,
    published: &mpsc::UnboundedSender<TimelineEntry>,
    t_ms: u64,
    update: Update,
) {
    match update {
        Update::Event(event) => on_event(seen, published, t_ms, &event),
        Update::Client { agent, status } => on_status(seen, agent, (*status).clone()),
        Update::Routing(event) => on_routing(seen, published, t_ms, &event),
        Update::Heartbeat(_) | Update::Metrics(_) => {}
    }
}

fn on_event(
    seen: &mut Seen,
    published: &mpsc::UnboundedSender<TimelineEntry>,
    t_ms: u64,
    event: &Event,
) {
    let entry = |source: &str, kind: String, detail: String| TimelineEntry {
        t_ms,
        source: source.to_string(),
        kind,
        detail,
    };
    match &event.event {
        EventKind::ClientMoved { report } => {
            let from = report
                .from
                .as_ref()
                .map_or("-".to_string(), |s| s.name.clone());
            let to = report
                .to
                .as_ref()
                .map_or("nowhere".to_string(), |s| s.name.clone());
            let detail = format!(
                "{from} -> {to} ({:?}, gap {} ms)",
                report.reason, report.gap_ms
            );
            push(
                seen,
                published,
                entry(&report.client, "client_moved".into(), detail),
            );
            if let Some(view) = seen.clients.get_mut(&report.client) {
                view.moves.push((t_ms, (**report).clone()));
            }
        }
        EventKind::Unknown => {}
        kind => {
            let detail = fields(&serde_json::to_value(kind).unwrap_or_default());
            push(seen, published, entry(&event.agent, kind.name(), detail));
        }
    }
}

fn on_routing(
    seen: &mut Seen,
    published: &mpsc::UnboundedSender<TimelineEntry>,
    t_ms: u64,
    event: &RoutingEvent,
) {
    let detail = fields(&serde_json::to_value(&event.change).unwrap_or_default());
    let entry = TimelineEntry {
        t_ms,
        source: event.source.clone(),
        kind: event.change.kind().to_string(),
        detail,
    };
    push(seen, published, entry);
    seen.routing.push((t_ms, event.clone()));
}

/// A tagged record's fields but its `kind`, as `key=value` words.
fn fields(value: &serde_json::Value) -> String {
    value
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| *k != "kind")
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn on_status(seen: &mut Seen, agent: String, status: ClientStatus) {
    let view = seen
        .clients
        .entry(status.client.clone())
        .or_insert_with(|| ClientView {
            agent: agent.clone(),
            latest: status.clone(),
            received: Instant::now(),
            baseline: None,
            moves: Vec::new(),
            lookups: Vec::new(),
        });
    // A status carries the latest lookups: keep the ones not seen yet.
    let newest = view.lookups.last().map_or(0, |l| l.at_ms);
    if let Some(routed) = &status.routed {
        let fresh = routed.lookups.iter().filter(|l| l.at_ms > newest);
        view.lookups.extend(fresh.cloned());
    }
    view.latest = status;
    view.agent = agent;
    view.received = Instant::now();
}
