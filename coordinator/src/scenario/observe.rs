//! The scenario's eyes: every agent event and every client report on the
//! control plane, kept as a timeline and, per client, its latest status,
//! its counters at the baseline, and its moves.

use crate::control::Control;
use crate::report::TimelineEntry;
use futures::StreamExt;
use geolb_proto::client::{ClientMove, ClientRecord, ClientStatus};
use geolb_proto::{subject, Event, EventKind};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Most timeline entries kept (a report must fit one message).
const MAX_TIMELINE: usize = 5000;

/// What the observer knows of one client.
#[derive(Debug, Clone)]
pub struct ClientView {
    /// Its latest status.
    pub latest: ClientStatus,
    /// Its status when the baseline was taken.
    pub baseline: Option<ClientStatus>,
    /// Its moves since the baseline, with their time (ms since the start).
    pub moves: Vec<(u64, ClientMove)>,
}

impl ClientView {
    /// The region of the server it is on.
    pub fn region_now(&self) -> Option<&str> {
        self.latest.server.as_ref().map(|s| s.region.as_str())
    }
}

#[derive(Default)]
struct Seen {
    timeline: Vec<TimelineEntry>,
    clients: BTreeMap<String, ClientView>,
}

/// Watches the control plane for the whole scenario.
pub struct Observer {
    started: Instant,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Observer {
    /// Subscribes to every event and client report.
    pub async fn start(control: &Control) -> anyhow::Result<Observer> {
        let events = control.client().subscribe(subject::EVENTS_ALL).await?;
        let reports = control.client().subscribe(subject::CLIENTS_ALL).await?;
        let started = Instant::now();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let task = tokio::spawn(watch(events, reports, seen.clone(), started));
        Ok(Observer {
            started,
            seen,
            task,
        })
    }

    /// Milliseconds since the observer started.
    pub fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Adds a scenario step to the timeline.
    pub fn note(&self, kind: &str, detail: impl Into<String>) {
        let detail = detail.into();
        tracing::info!(kind, detail = %detail, "Scenario step.");
        push(
            &mut lock(&self.seen).timeline,
            self.elapsed_ms(),
            "scenario",
            kind,
            detail,
        );
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

    /// The timeline so far.
    pub fn timeline(&self) -> Vec<TimelineEntry> {
        lock(&self.seen).timeline.clone()
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

fn push(timeline: &mut Vec<TimelineEntry>, t_ms: u64, source: &str, kind: &str, detail: String) {
    if timeline.len() < MAX_TIMELINE {
        timeline.push(TimelineEntry {
            t_ms,
            source: source.to_string(),
            kind: kind.to_string(),
            detail,
        });
    }
}

async fn watch(
    mut events: async_nats::Subscriber,
    mut reports: async_nats::Subscriber,
    seen: Arc<Mutex<Seen>>,
    started: Instant,
) {
    loop {
        tokio::select! {
            Some(message) = events.next() => {
                if let Ok(event) = serde_json::from_slice::<Event>(&message.payload) {
                    on_event(&mut lock(&seen), started.elapsed().as_millis() as u64, event);
                }
            }
            Some(message) = reports.next() => {
                if let Ok(ClientRecord::Status(status)) = ClientRecord::decode(&message.payload) {
                    on_status(&mut lock(&seen), status);
                }
            }
            else => return,
        }
    }
}

fn on_event(seen: &mut Seen, t_ms: u64, event: Event) {
    match event.event {
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
                &mut seen.timeline,
                t_ms,
                &report.client,
                "client_moved",
                detail,
            );
            if let Some(view) = seen.clients.get_mut(&report.client) {
                view.moves.push((t_ms, *report));
            }
        }
        EventKind::Unknown => {}
        kind => {
            let value = serde_json::to_value(&kind).unwrap_or_default();
            let detail = value
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(k, _)| *k != "kind")
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            push(&mut seen.timeline, t_ms, &event.agent, &kind.name(), detail);
        }
    }
}

fn on_status(seen: &mut Seen, status: ClientStatus) {
    match seen.clients.get_mut(&status.client) {
        Some(view) => view.latest = status,
        None => {
            seen.clients.insert(
                status.client.clone(),
                ClientView {
                    latest: status,
                    baseline: None,
                    moves: Vec::new(),
                },
            );
        }
    }
}
