//! What the client's tasks share: its identity, the probe table, the
//! traffic counters, the report channel, the current server, and the
//! publisher's target connection. Records are built here, in one place.

use super::args::Strategy;
use super::report::Reporter;
use super::table::Table;
use super::traffic::Traffic;
use async_nats::Client;
use geolb_proto::client::{
    ClientMove, ClientRecord, ClientStatus, Lookup, MoveReason, Routed, ServerRef, MAX_LOOKUPS,
};
use geolb_proto::{now_ms, PROTOCOL_VERSION};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The shortest span the probe rate is measured over (it spans up to twice this).
pub const RATE_SPAN: Duration = Duration::from_secs(10);

/// Shared by the driver, the publisher and the reporter.
#[derive(Debug)]
pub struct Context {
    /// Client id.
    pub id: String,
    /// The client's region.
    pub region: String,
    /// The strategy.
    pub strategy: Strategy,
    /// Probe results.
    pub table: Arc<Table>,
    /// Traffic counters.
    pub traffic: Arc<Traffic>,
    /// Where records go.
    pub reporter: Arc<Reporter>,
    /// The connection the publisher uses.
    pub publish_to: watch::Sender<Option<Client>>,
    current: Mutex<Option<ServerRef>>,
    /// The server before the current outage, if cut off.
    last: Mutex<Option<ServerRef>>,
    switches: AtomicU32,
    started: Instant,
    connected_after_ms: OnceLock<u64>,
    /// `dns` and `anycast`: attempts and lookups.
    routed: Mutex<Option<Routed>>,
    /// Two marks of the PING count, `RATE_SPAN` or more apart: (older, newer).
    pings_at: Mutex<((Instant, u64), (Instant, u64))>,
    /// Clients in this process (`--count`).
    pub process_clients: u32,
}

impl Context {
    /// A context with no server yet.
    pub fn new(
        id: String,
        region: String,
        strategy: Strategy,
        table: Arc<Table>,
        reporter: Arc<Reporter>,
    ) -> Context {
        Context {
            id,
            region,
            strategy,
            table,
            traffic: Arc::new(Traffic::default()),
            reporter,
            publish_to: watch::Sender::new(None),
            current: Mutex::new(None),
            last: Mutex::new(None),
            switches: AtomicU32::new(0),
            started: Instant::now(),
            connected_after_ms: OnceLock::new(),
            routed: Mutex::new(None),
            pings_at: Mutex::new(((Instant::now(), 0), (Instant::now(), 0))),
            process_clients: 1,
        }
    }

    /// PINGs per second over the last [`RATE_SPAN`] to twice that (none
    /// before any PING). Over one report interval the rate was a count of
    /// a second: the elected server's 5 plus whichever of the idle
    /// candidates' PINGs (one each 2 s) fell in it.
    fn probe_rate(&self) -> Option<f64> {
        let pings = self.table.pings();
        let now = Instant::now();
        let mut marks = self.pings_at.lock().unwrap_or_else(|p| p.into_inner());
        let (older, newer) = *marks;
        if now.duration_since(newer.0) >= RATE_SPAN {
            *marks = (newer, (now, pings));
        }
        let (since, before) = older;
        let secs = now.duration_since(since).as_secs_f64();
        (pings > 0 && secs > 0.0).then(|| ((pings - before) as f64 / secs * 10.0).round() / 10.0)
    }

    /// Marks the client as routed (`dns`, `anycast`) to `target`.
    pub fn route_to(&self, target: &str) {
        *self.routed.lock().unwrap_or_else(|p| p.into_inner()) = Some(Routed {
            target: target.to_string(),
            ..Routed::default()
        });
    }

    /// Counts one connection attempt, `failed` when nothing answered.
    pub fn attempted(&self, failed: bool) {
        if let Some(routed) = self
            .routed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            routed.attempts += 1;
            routed.failed_attempts += u64::from(failed);
        }
    }

    /// Keeps one DNS lookup (the latest [`MAX_LOOKUPS`]).
    pub fn looked_up(&self, lookup: Lookup) {
        if let Some(routed) = self
            .routed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            if routed.lookups.len() == MAX_LOOKUPS {
                routed.lookups.remove(0);
            }
            routed.lookups.push(lookup);
        }
    }

    /// The server the client is on.
    pub fn current(&self) -> Option<ServerRef> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_current(&self, server: Option<ServerRef>) {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let previous = std::mem::replace(&mut *current, server);
        if current.is_none() && previous.is_some() {
            *self.last.lock().unwrap_or_else(|p| p.into_inner()) = previous;
        }
    }

    /// The current server, else the one before the outage.
    fn current_or_last(&self) -> Option<ServerRef> {
        self.current()
            .or_else(|| self.last.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }

    /// The status record now.
    pub fn status(&self) -> ClientRecord {
        ClientRecord::Status(ClientStatus {
            v: PROTOCOL_VERSION,
            at_ms: now_ms(),
            client: self.id.clone(),
            region: self.region.clone(),
            strategy: self.strategy.name().to_string(),
            server: self.current(),
            candidates: self.table.candidates(),
            traffic: self.traffic.snapshot(),
            switches: self.switches.load(Ordering::Relaxed),
            by_sender: self.traffic.lock().by_sender(),
            connected_after_ms: self.connected_after_ms.get().copied(),
            routed: self
                .routed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            probe_rate: self.probe_rate(),
            process_clients: (self.process_clients > 1).then_some(self.process_clients),
        })
    }

    /// Records a change of server (`to: None` when cut off), sends the
    /// Moved record and logs it. `from` is the current server, or the one
    /// before the outage.
    pub fn moved(&self, reason: MoveReason, to: Option<ServerRef>, gap_ms: u64) {
        let from = self.current_or_last();
        if to.is_some() && from.is_some() {
            self.switches.fetch_add(1, Ordering::Relaxed);
        }
        if to.is_some() {
            let after = self.started.elapsed().as_millis() as u64;
            let _ = self.connected_after_ms.set(after);
        }
        self.set_current(to.clone());
        let url = |s: &Option<ServerRef>| s.as_ref().map_or("none".to_string(), |s| s.url.clone());
        match &to {
            Some(_) => {
                tracing::info!(client = %self.id, ?reason, from = %url(&from), to = %url(&to), gap_ms, "Client moved.")
            }
            None => {
                tracing::warn!(client = %self.id, ?reason, from = %url(&from), "Client lost its server; nothing else answers yet.")
            }
        }
        self.reporter.send(&ClientRecord::Moved(ClientMove {
            v: PROTOCOL_VERSION,
            at_ms: now_ms(),
            client: self.id.clone(),
            region: self.region.clone(),
            reason,
            from,
            to,
            gap_ms,
        }));
    }
}
