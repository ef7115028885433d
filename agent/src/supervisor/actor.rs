//! The actor: one task owning every replica, driven by a `select!` loop over
//! SIGCHLD, a slow reap timer, controls, the nearest deadline and the drain
//! probe. Long operations are states with deadlines; see `controls.rs` for
//! the controls, `ops.rs` for in-flight operations and flaps, and
//! `lifecycle.rs` for spawning, reaping and the restart policy.

use super::child;
use super::flap::Flap;
use super::ops::Op;
use super::replica::Replica;
use super::{Control, Outcome, Snapshot, Spec};
use crate::drain::{Action, Observed, Why};
use crate::signals::Signal;
use geolb_proto::{ChildState, EventKind, ExitInfo, ReplyError};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::signal::unix::{signal, Signal as SignalStream, SignalKind};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

/// Safety-net reap interval, for coalesced SIGCHLDs.
const REAP_EVERY: Duration = Duration::from_secs(1);
/// Drain probe interval.
pub(super) const PROBE_EVERY: Duration = Duration::from_millis(100);
/// The shell's "command not found" code, used when a spawn fails.
pub(super) const SPAWN_FAILED: i32 = 127;

/// Where a control's outcome goes.
pub(super) type Done = oneshot::Sender<Result<(), ReplyError>>;
type Probe = Pin<Box<dyn Future<Output = bool> + Send>>;

/// The actor's state.
pub(super) struct Actor {
    pub(super) spec: Spec,
    pub(super) replicas: Vec<Replica>,
    pub(super) desired: u32,
    pub(super) op: Option<Op>,
    pub(super) flap: Option<Flap>,
    pub(super) shutting_down: bool,
    /// Whether replica 0 was running when shutdown began (its exit is ours).
    pub(super) shutdown_keeps_code: bool,
    pub(super) restarts: u32,
    pub(super) orphans: u64,
    pub(super) probe: Option<Probe>,
    pub(super) probe_at: Option<Instant>,
    /// Replies held until the snapshot is published.
    pub(super) replies: Vec<(Done, Result<(), ReplyError>)>,
    events: mpsc::Sender<EventKind>,
}

/// Runs the supervisor until it has an [`Outcome`].
pub(super) async fn run(
    spec: Spec,
    mut rx: mpsc::Receiver<Control>,
    snapshot: watch::Sender<Snapshot>,
    events: mpsc::Sender<EventKind>,
) -> Outcome {
    if let Err(err) = nix::sys::prctl::set_child_subreaper(true) {
        warn!(%err, "Could not become a child subreaper; orphans will not be reaped.");
    }
    // Registered before the first spawn, so no exit goes unnoticed.
    let mut sigchld = signal(SignalKind::child())
        .inspect_err(|err| warn!(%err, "Could not listen for SIGCHLD; reaping on a timer only."))
        .ok();
    let mut actor = Actor::new(spec, events);
    if let Some(outcome) = actor.start_initial() {
        actor.publish(&snapshot);
        return outcome;
    }
    let mut reap_tick = tokio::time::interval(REAP_EVERY);
    reap_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut controls_open = true;
    loop {
        actor.settle();
        actor.publish(&snapshot);
        for (done, result) in actor.replies.drain(..) {
            let _ = done.send(result);
        }
        if let Some(outcome) = actor.outcome() {
            info!(
                code = outcome.code,
                orphans = actor.orphans,
                "Supervisor finished."
            );
            return outcome;
        }
        let deadline = actor.next_deadline();
        tokio::select! {
            Some(()) = next_sigchld(&mut sigchld) => actor.reap(),
            _ = reap_tick.tick() => actor.reap(),
            control = rx.recv(), if controls_open => match control {
                Some(control) => actor.control(control),
                None => controls_open = false,
            },
            _ = sleep_until(deadline) => actor.on_timer(Instant::now()),
            empty = next_verdict(&mut actor.probe) => actor.on_probe(empty),
        }
    }
}

async fn next_sigchld(stream: &mut Option<SignalStream>) -> Option<()> {
    match stream {
        Some(stream) => stream.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn next_verdict(probe: &mut Option<Probe>) -> bool {
    match probe {
        Some(probe) => probe.await,
        None => std::future::pending().await,
    }
}

impl Actor {
    fn new(spec: Spec, events: mpsc::Sender<EventKind>) -> Actor {
        let desired = spec.replicas.max(1);
        Actor {
            replicas: (0..desired).map(Replica::new).collect(),
            desired,
            spec,
            op: None,
            flap: None,
            shutting_down: false,
            shutdown_keeps_code: false,
            restarts: 0,
            orphans: 0,
            probe: None,
            probe_at: None,
            replies: Vec::new(),
            events,
        }
    }

    /// Starts every replica; an outcome of 127 if the first cannot start.
    fn start_initial(&mut self) -> Option<Outcome> {
        for pos in 0..self.replicas.len() {
            if let Err(err) = self.spawn(pos) {
                let exit = child::exit_info(Some(SPAWN_FAILED), None);
                if pos == 0 {
                    let replica = &mut self.replicas[0];
                    replica.ended(exit);
                    replica.state = ChildState::Exited;
                    self.emit_exit(0, &exit);
                    error!(program = %self.spec.program.display(), %err, "The child cannot be started; exiting with 127.");
                    return Some(Outcome { code: SPAWN_FAILED });
                }
                self.on_exit(pos, exit, Instant::now());
            }
        }
        None
    }

    /// Handles every deadline that has passed.
    fn on_timer(&mut self, now: Instant) {
        for pos in 0..self.replicas.len() {
            let replica = &mut self.replicas[pos];
            step_drain(replica, now, Observed::default());
            if let (Some(at), Some(pid)) = (replica.kill_at, replica.pid) {
                if at <= now {
                    replica.kill_at = None;
                    replica.state = ChildState::Stopping;
                    warn!(
                        replica = replica.index,
                        pid = pid.as_raw(),
                        "Grace period over; killing the child."
                    );
                    child::signal_group(pid, Signal::Kill);
                }
            }
            if replica.restart_at.is_some_and(|at| at <= now) {
                replica.restart_at = None;
                replica.restarts = replica.restarts.saturating_add(1);
                self.restarts = self.restarts.saturating_add(1);
                if self.spawn(pos).is_err() {
                    self.on_exit(pos, child::exit_info(Some(SPAWN_FAILED), None), now);
                }
            }
        }
        self.advance_flap(now);
        if self.probe_at.is_some_and(|at| at <= now) {
            self.probe_at = None;
            if self.probe.is_none() && self.draining(now) {
                self.probe = self.spec.drain_probe.as_ref().map(|probe| probe());
            }
        }
    }

    /// Whether a replica drains and the probe's answer still matters.
    pub(super) fn draining(&self, now: Instant) -> bool {
        self.replicas
            .iter()
            .any(|r| r.alive() && r.drain.is_some_and(|d| d.wants_probe(now)))
    }

    /// The drain probe answered.
    fn on_probe(&mut self, empty: bool) {
        self.probe = None;
        let now = Instant::now();
        if !empty {
            if self.draining(now) {
                self.probe_at = Some(now + PROBE_EVERY);
            }
            return;
        }
        let seen = Observed {
            drained: true,
            escalated: false,
        };
        for replica in &mut self.replicas {
            step_drain(replica, now, seen);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let replicas = self.replicas.iter().flat_map(|r| {
            let drain = r.drain.and_then(|d| d.next_deadline());
            let kill = r.kill_at.or(drain).filter(|_| r.alive());
            [kill, r.restart_at]
        });
        let probe = self.probe_at.filter(|_| self.probe.is_none());
        let flap = self.flap.as_ref().map(Flap::deadline);
        replicas.chain([probe, flap]).flatten().min()
    }

    /// How the supervisor ends, once it does.
    fn outcome(&self) -> Option<Outcome> {
        if self.op.is_some() {
            return None;
        }
        let first = self.replicas.first().and_then(|r| r.last_exit);
        if self.shutting_down {
            if self.replicas.iter().any(Replica::alive) {
                return None;
            }
            let code = match first {
                Some(exit) if self.shutdown_keeps_code => exit.shell_code(),
                _ => 0,
            };
            return Some(Outcome { code });
        }
        let ended = self.flap.is_none()
            && !self.replicas.is_empty()
            && self
                .replicas
                .iter()
                .all(|r| !r.alive() && r.state == ChildState::Exited);
        ended.then(|| Outcome {
            code: first.map_or(0, |exit| exit.shell_code()),
        })
    }

    fn publish(&self, snapshot: &watch::Sender<Snapshot>) {
        let now = Snapshot {
            program: self.spec.program.clone(),
            desired_replicas: self.desired,
            replicas: self.replicas.iter().map(Replica::status).collect(),
            flap: self.flap.as_ref().map(Flap::status),
            restarts: self.restarts,
        };
        snapshot.send_if_modified(|current| {
            let changed = *current != now;
            if changed {
                *current = now;
            }
            changed
        });
    }

    /// Sends an event; a full or closed channel drops it.
    pub(super) fn emit(&self, event: EventKind) {
        if let Err(err) = self.events.try_send(event) {
            debug!(%err, "Dropped a supervisor event.");
        }
    }

    pub(super) fn emit_exit(&self, replica: u32, exit: &ExitInfo) {
        self.emit(EventKind::Exited {
            replica,
            code: exit.code,
            signal: exit.signal,
        });
    }
}

/// Takes one step of a replica's drain (if it drains) and sends the signal
/// it calls for.
fn step_drain(replica: &mut Replica, now: Instant, seen: Observed) {
    let (Some(drain), Some(pid)) = (replica.drain, replica.pid) else {
        return;
    };
    let (next, action) = drain.step(now, seen);
    replica.drain = Some(next);
    let (index, raw) = (replica.index, pid.as_raw());
    match action {
        Action::Wait => {}
        Action::Interrupt(Why::Drained) => {
            info!(
                replica = index,
                pid = raw,
                "The server has drained; ending lame-duck mode with SIGINT."
            );
            child::signal_pid(pid, Signal::Int);
        }
        Action::Interrupt(Why::GraceOver) => {
            info!(
                replica = index,
                pid = raw,
                "Drain grace over; shutting the server down with SIGINT."
            );
            child::signal_pid(pid, Signal::Int);
        }
        Action::Kill => {
            replica.state = ChildState::Stopping;
            warn!(
                replica = index,
                pid = raw,
                "Grace period over; killing the child."
            );
            child::signal_group(pid, Signal::Kill);
        }
    }
}

impl Drop for Actor {
    /// Nothing we start outlives us: a dropped actor kills what is left.
    fn drop(&mut self) {
        for pid in self.replicas.iter().filter_map(|r| r.pid) {
            child::signal_group(pid, Signal::Kill);
        }
    }
}
