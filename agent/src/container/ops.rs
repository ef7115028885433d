//! The commands on a container: stopping it in each mode, starting,
//! restarting and recreating it. One command at a time holds the operation
//! slot. Following the container (and turning what changed into events) is
//! `watcher.rs`.

use super::flap::FlapSlot;
use super::state::{self, alive, Intent, Seen};
use super::Spec;
use crate::drain::{Action, Drain, Observed, Why};
use crate::signals::Signal;
use crate::supervisor::Snapshot;
use geolb_engine::{ContainerStatus, Engine, EngineError};
use geolb_proto::{ErrorKind, EventKind, ReplyError, StopMode};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// How often a drain or a stop looks at the container (and asks the probe).
const POLL_EVERY: Duration = Duration::from_millis(100);
/// How long a killed or stopped container may take to be seen gone.
const GONE_WITHIN: Duration = Duration::from_secs(30);

/// What the watcher, the commands and the flap task share.
pub(super) struct Shared {
    pub(super) engine: Engine,
    pub(super) spec: Spec,
    pub(super) state: Mutex<State>,
    /// Serialises inspections, so two never apply out of order.
    pub(super) observing: tokio::sync::Mutex<()>,
    pub(super) snapshot: watch::Sender<Snapshot>,
    pub(super) events: mpsc::Sender<EventKind>,
}

/// The mutable part, behind a short-held lock.
pub(super) struct State {
    pub(super) seen: Seen,
    /// The image last seen, shown while the container cannot be found.
    pub(super) image: String,
    pub(super) intent: Intent,
    /// The command holding the slot, and its "interrupted by a kill" token.
    pub(super) op: Option<(&'static str, CancellationToken)>,
    pub(super) flap: Option<FlapSlot>,
    /// Whether the last inspection failed (logged once per outage).
    pub(super) engine_failing: bool,
}

/// The operation slot, freed on drop.
pub(super) struct Op {
    shared: Arc<Shared>,
    /// Cancelled when a `stop` with mode kill interrupts the operation.
    pub(super) escalated: CancellationToken,
}

impl Drop for Op {
    fn drop(&mut self) {
        self.shared.lock().op = None;
    }
}

fn conflict(message: impl Into<String>) -> ReplyError {
    ReplyError::new(ErrorKind::Conflict, message)
}

pub(super) fn failed(message: impl Into<String>) -> ReplyError {
    ReplyError::new(ErrorKind::Failed, message)
}

impl Shared {
    /// Shared state around the container as first `found`.
    pub(super) fn new(
        engine: Engine,
        mut spec: Spec,
        found: ContainerStatus,
        events: mpsc::Sender<EventKind>,
    ) -> (Arc<Shared>, watch::Receiver<Snapshot>) {
        // Its id changes on an upgrade; its name does not.
        spec.name = found.name.clone();
        let seen = Some(found);
        let first = state::snapshot(&seen, Intent::Follow, None, &spec.name);
        let (snapshot, rx) = watch::channel(first);
        let shared = Arc::new(Shared {
            engine,
            spec,
            state: Mutex::new(State {
                image: seen.as_ref().map(|c| c.image.clone()).unwrap_or_default(),
                seen,
                intent: Intent::Follow,
                op: None,
                flap: None,
                engine_failing: false,
            }),
            observing: tokio::sync::Mutex::new(()),
            snapshot,
            events,
        });
        (shared, rx)
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn name(&self) -> &str {
        &self.spec.name
    }

    /// The command holding the operation slot, if any.
    pub(super) fn busy(&self) -> Option<&'static str> {
        self.lock().op.as_ref().map(|(name, _)| *name)
    }

    /// Takes the operation slot, or says which operation holds it.
    pub(super) fn claim(self: &Arc<Self>, name: &'static str) -> Result<Op, ReplyError> {
        let mut state = self.lock();
        if let Some((busy, _)) = &state.op {
            return Err(conflict(format!(
                "busy: a {busy} is in progress; retry when it finishes"
            )));
        }
        let escalated = CancellationToken::new();
        state.op = Some((name, escalated.clone()));
        Ok(Op {
            shared: self.clone(),
            escalated,
        })
    }

    /// `stop`: down until `start`. A kill while another command runs kills
    /// at once; that command is answered "interrupted".
    pub(super) async fn stop(
        self: &Arc<Self>,
        mode: StopMode,
        grace: Option<Duration>,
    ) -> Result<(), ReplyError> {
        let op = match self.claim("stop") {
            Ok(op) => op,
            Err(_) if mode == StopMode::Kill => return self.escalate().await,
            Err(busy) => return Err(busy),
        };
        self.end_flap(false).await;
        self.bring_down(mode, grace, &op.escalated).await
    }

    async fn escalate(&self) -> Result<(), ReplyError> {
        info!(container = %self.name(), "Escalating to SIGKILL: killing the container now.");
        if let Some((_, escalated)) = &self.lock().op {
            escalated.cancel();
        }
        self.signal(Signal::Kill).await?;
        self.wait_gone().await
    }

    /// `start`: ends a flap, unpauses a paused container, starts a stopped one.
    pub(super) async fn start(self: &Arc<Self>) -> Result<(), ReplyError> {
        let _op = self.claim("start")?;
        let flapping = self.end_flap(true).await;
        let Some(seen) = self.observe().await? else {
            return Err(failed(format!(
                "container {} no longer exists; create it again",
                self.name()
            )));
        };
        if seen.paused {
            self.engine
                .unpause(self.name())
                .await
                .map_err(|e| failed(e.to_string()))?;
            self.observe().await?;
            return Ok(());
        }
        if seen.running && !flapping {
            return Err(conflict("already running; use restart to restart it"));
        }
        if seen.running {
            return Ok(());
        }
        self.start_now().await
    }

    /// `restart`: down (any mode), then up.
    pub(super) async fn restart(
        self: &Arc<Self>,
        mode: StopMode,
        grace: Option<Duration>,
    ) -> Result<(), ReplyError> {
        let op = self.claim("restart")?;
        self.end_flap(false).await;
        self.bring_down(mode, grace, &op.escalated).await?;
        if op.escalated.is_cancelled() {
            return Err(interrupted());
        }
        self.start_now().await
    }

    /// `upgrade`: down (LDM when `drain`), recreated from `image`, started.
    /// If the new container cannot start, the old one runs again.
    pub(super) async fn replace(
        self: &Arc<Self>,
        image: String,
        drain: bool,
        grace: Option<Duration>,
    ) -> Result<(), ReplyError> {
        let op = self.claim("replace")?;
        self.end_flap(false).await;
        let mode = if drain { StopMode::Ldm } else { StopMode::Term };
        self.bring_down(mode, grace, &op.escalated).await?;
        if op.escalated.is_cancelled() {
            return Err(interrupted());
        }
        let old = self.snapshot.borrow().program.display().to_string();
        info!(container = %self.name(), from = %old, to = %image, "Recreating the container from another image.");
        match self.engine.recreate(self.name(), &image).await {
            Ok(_) if op.escalated.is_cancelled() => {
                self.bring_down(StopMode::Kill, None, &op.escalated).await?;
                Err(interrupted())
            }
            Ok(_) => self.start_now().await,
            Err(e) => {
                error!(container = %self.name(), image = %image, error = %e, "Could not recreate the container; starting the old one again.");
                let message = match self.start_now().await {
                    Ok(()) => format!("cannot run {image}: {e}; {old} runs again"),
                    Err(again) => format!(
                        "cannot run {image}: {e}; starting {old} again failed too: {}",
                        again.message
                    ),
                };
                Err(failed(message))
            }
        }
    }

    /// Starts the container (a no-op when it runs) and records the start.
    pub(super) async fn start_now(&self) -> Result<(), ReplyError> {
        self.engine.start(self.name()).await.map_err(|e| {
            failed(format!(
                "cannot start container {}: {e}; check `docker logs {}`",
                self.name(),
                self.name()
            ))
        })?;
        self.set_intent(Intent::Follow);
        self.observe().await?;
        Ok(())
    }

    /// Takes the container down with `mode` and keeps it down (a stop by
    /// command). Nothing to do when it does not run; a container waiting
    /// out Docker's restart backoff is stopped at once.
    pub(super) async fn bring_down(
        &self,
        mode: StopMode,
        grace: Option<Duration>,
        escalated: &CancellationToken,
    ) -> Result<(), ReplyError> {
        let seen = self.observe().await?;
        if !alive(&seen) {
            return Ok(());
        }
        let paused = seen.as_ref().is_some_and(|c| c.paused);
        let backoff = seen.as_ref().is_some_and(|c| c.restarting);
        self.set_intent(Intent::Stopping(mode));
        info!(container = %self.name(), ?mode, "Stopping the container.");
        let result = match backoff {
            // Nothing runs to signal: `docker stop` cancels Docker's restart.
            true => self
                .engine
                .stop(self.name(), Duration::ZERO)
                .await
                .map_err(|e| failed(e.to_string())),
            false => self.take_down(mode, grace, paused, escalated).await,
        };
        let result = match result {
            Ok(()) => self.wait_gone().await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            self.set_intent(Intent::Follow);
            self.observe().await.ok();
            return Err(e);
        }
        self.keep_down().await;
        let mode = if escalated.is_cancelled() {
            StopMode::Kill
        } else {
            mode
        };
        self.set_intent(Intent::Stopped);
        info!(container = %self.name(), ?mode, "Container stopped.");
        self.emit(EventKind::Stopped { replica: 0, mode });
        Ok(())
    }

    async fn take_down(
        &self,
        mode: StopMode,
        grace: Option<Duration>,
        paused: bool,
        escalated: &CancellationToken,
    ) -> Result<(), ReplyError> {
        if paused && mode == StopMode::Ldm {
            // A frozen server handles SIGUSR2 only once thawed.
            self.engine
                .unpause(self.name())
                .await
                .map_err(|e| failed(e.to_string()))?;
        }
        match mode {
            StopMode::Kill => self.signal(Signal::Kill).await,
            StopMode::Term => {
                let grace = grace.unwrap_or(self.spec.term_grace);
                tokio::select! {
                    stopped = self.engine.stop(self.name(), grace) => {
                        stopped.map_err(|e| failed(e.to_string()))
                    }
                    _ = escalated.cancelled() => self.signal(Signal::Kill).await,
                }
            }
            StopMode::Ldm => {
                let grace = grace.unwrap_or(self.spec.ldm_grace);
                self.drain(grace, escalated).await
            }
        }
    }

    /// Lame-duck mode as [`Drain`] steps it, polled every 100 ms (and woken
    /// by a kill that interrupts); returns once the container is down.
    async fn drain(
        &self,
        grace: Duration,
        escalated: &CancellationToken,
    ) -> Result<(), ReplyError> {
        self.emit(EventKind::LameDuck { replica: 0 });
        self.signal(Signal::Usr2).await?;
        let mut drain = Drain::new(Instant::now(), grace);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(POLL_EVERY) => {}
                _ = escalated.cancelled(), if !drain.killed() => {}
            }
            if !alive(&self.observe().await?) {
                return Ok(());
            }
            let now = Instant::now();
            let seen = Observed {
                drained: drain.wants_probe(now) && self.drained().await,
                escalated: escalated.is_cancelled(),
            };
            let action;
            (drain, action) = drain.step(now, seen);
            match action {
                Action::Wait => {}
                Action::Interrupt(why) => {
                    let why = match why {
                        Why::GraceOver => "Drain grace over",
                        Why::Drained => "The server has drained",
                    };
                    info!(container = %self.name(), "{why}; ending lame-duck mode with SIGINT.");
                    self.signal(Signal::Int).await?;
                }
                Action::Kill => {
                    warn!(container = %self.name(), "Killing the draining container.");
                    self.signal(Signal::Kill).await?;
                }
            }
        }
    }

    async fn drained(&self) -> bool {
        match &self.spec.drain_probe {
            Some(probe) => probe().await,
            None => false,
        }
    }

    /// Waits until the container is seen down.
    async fn wait_gone(&self) -> Result<(), ReplyError> {
        let deadline = Instant::now() + GONE_WITHIN;
        loop {
            let seen = self.observe().await?;
            if !seen.as_ref().is_some_and(|c| c.running) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(failed(format!(
                    "container {} still runs {GONE_WITHIN:?} after it was stopped; check the Docker engine",
                    self.name()
                )));
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// A stop by command is final: Docker's restart policy may bring back a
    /// container that exited after a signal other than its stop signal
    /// (an LDM drain); `docker stop` cancels that.
    async fn keep_down(&self) {
        let seen = self.observe().await.ok().flatten();
        if seen.is_some_and(|c| c.running || c.restarting) {
            info!(container = %self.name(), "Docker's restart policy brought the container back; stopping it.");
            if let Err(e) = self.engine.stop(self.name(), Duration::ZERO).await {
                warn!(container = %self.name(), error = %e, "Could not stop the container again.");
            }
            self.wait_gone().await.ok();
        }
    }

    /// Sends `signal`; a container that is already down is not an error.
    async fn signal(&self, signal: Signal) -> Result<(), ReplyError> {
        match self.engine.kill(self.name(), signal.name()).await {
            Ok(()) | Err(EngineError::Conflict(_)) => Ok(()),
            Err(e) => Err(failed(format!(
                "cannot send {signal} to container {}: {e}",
                self.name()
            ))),
        }
    }

    /// Passes a signal the agent received on to the container.
    pub(super) async fn forward(&self, signal: Signal) {
        info!(container = %self.name(), %signal, "Forwarding a signal to the container.");
        match self.signal(signal).await {
            Ok(()) => self.emit(EventKind::SignalForwarded {
                signal: signal.number(),
            }),
            Err(e) => warn!(error = %e, "Signal not forwarded."),
        }
    }
}

fn interrupted() -> ReplyError {
    conflict("interrupted by a stop with mode kill; the child stays stopped until `start`")
}
