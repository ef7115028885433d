//! One function per [`Control`]: each checks what the current state allows,
//! starts the work and either replies at once or leaves an [`Op`] that the
//! actor completes once the stopping replicas are gone.

use super::actor::{Actor, Done};
use super::flap::Flap;
use super::ops::{Op, Then};
use super::replica::Replica;
use super::{Control, FlapPlan};
use crate::signals::Signal;
use geolb_proto::{ChildState, ErrorKind, EventKind, ReplyError, StopMode, MAX_REPLICAS};
use std::time::Duration;
use tokio::time::Instant;
use tracing::info;

fn conflict(message: impl Into<String>) -> ReplyError {
    ReplyError::new(ErrorKind::Conflict, message)
}

impl Actor {
    /// Applies one control.
    pub(super) fn control(&mut self, control: Control) {
        match control {
            Control::Stop { mode, grace, done } => self.stop(mode, grace, done),
            Control::Start { done } => {
                let result = self.start();
                self.replies.push((done, result));
            }
            Control::Restart { mode, grace, done } => {
                self.stop_then(mode, grace, "restart", done, Then::Start)
            }
            Control::Replace {
                program,
                drain,
                grace,
                done,
            } => {
                let mode = if drain { StopMode::Ldm } else { StopMode::Term };
                let then = |done| Then::Replace { program, done };
                self.stop_then(mode, grace, "replace", done, then)
            }
            Control::Flap { plan, done } => {
                let result = self.flap(plan);
                self.replies.push((done, result));
            }
            Control::CancelFlap { done } => {
                let result = self.cancel_flap();
                self.replies.push((done, result));
            }
            Control::Scale { replicas, done } => self.scale(replicas, done),
            Control::Forward { signal } => self.forward(signal),
            Control::Drain { grace } => self.drain(grace),
        }
    }

    /// Refuses mutating controls while an operation runs or after shutdown
    /// began.
    fn idle(&self) -> Result<(), ReplyError> {
        if let Some(op) = &self.op {
            return Err(conflict(format!(
                "busy: a {} is in progress; retry when it finishes",
                op.name
            )));
        }
        if self.shutting_down {
            return Err(conflict(
                "the agent is shutting down; it starts nothing any more",
            ));
        }
        Ok(())
    }

    fn stop(&mut self, mode: StopMode, grace: Option<Duration>, done: Done) {
        if self.op.is_some() {
            match mode {
                StopMode::Kill => self.escalate(done),
                _ => self.replies.push((done, self.idle())),
            }
            return;
        }
        self.drop_flap();
        if self.stop_all(mode, grace) == 0 {
            self.replies.push((done, Ok(())));
        } else {
            let finish = vec![(done, Ok(()))];
            self.op = Some(Op {
                name: "stop",
                then: Then::Nothing,
                finish,
            });
        }
    }

    /// Stops every replica, then does `then` once they are gone.
    fn stop_then(
        &mut self,
        mode: StopMode,
        grace: Option<Duration>,
        name: &'static str,
        done: Done,
        then: impl FnOnce(Done) -> Then,
    ) {
        if let Err(err) = self.idle() {
            self.replies.push((done, Err(err)));
            return;
        }
        self.drop_flap();
        self.stop_all(mode, grace);
        // The op completes on the next settle, at once if nothing ran.
        self.op = Some(Op {
            name,
            then: then(done),
            finish: Vec::new(),
        });
    }

    fn start(&mut self) -> Result<(), ReplyError> {
        self.idle()?;
        let flapping = self.flap.as_ref().map(Flap::cycles_done);
        if let Some(cycles_done) = flapping {
            self.end_flap(cycles_done, true);
        }
        let startable = self.replicas.iter().any(Replica::startable);
        if !startable && flapping.is_none() {
            return Err(conflict("already running; use restart to restart it"));
        }
        self.start_all()
    }

    fn flap(&mut self, plan: FlapPlan) -> Result<(), ReplyError> {
        self.idle()?;
        if self.flap.is_some() {
            return Err(conflict(
                "a flap is already in progress; cancel it first (flap with cancel)",
            ));
        }
        if plan.cycles == 0 {
            return Err(ReplyError::new(
                ErrorKind::InvalidArgument,
                "cycles must be at least 1",
            ));
        }
        let targets: Vec<u32> = self
            .replicas
            .iter()
            .filter(|r| r.up() && r.state == ChildState::Running)
            .map(|r| r.index)
            .collect();
        if targets.is_empty() {
            return Err(conflict("nothing is running; start it first"));
        }
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        info!(mode = ?plan.mode, cycles = plan.cycles, down_ms = millis(plan.down), up_ms = millis(plan.up), "Flap began.");
        self.emit(EventKind::FlapBegan {
            mode: plan.mode,
            cycles: plan.cycles,
            down_ms: millis(plan.down),
            up_ms: millis(plan.up),
        });
        self.flap = Some(Flap::begin(plan, targets, Instant::now()));
        self.flap_down();
        Ok(())
    }

    fn cancel_flap(&mut self) -> Result<(), ReplyError> {
        let Some(cycles_done) = self.flap.as_ref().map(Flap::cycles_done) else {
            return Err(conflict("no flap is in progress"));
        };
        self.end_flap(cycles_done, true);
        Ok(())
    }

    fn scale(&mut self, to: u32, done: Done) {
        let result = self.idle().and_then(|()| match self.flap {
            Some(_) => Err(conflict(
                "a flap is in progress; cancel it first (flap with cancel)",
            )),
            None if to == 0 || to > MAX_REPLICAS => Err(ReplyError::new(
                ErrorKind::InvalidArgument,
                format!("replicas must be 1 to {MAX_REPLICAS}; use stop to stop them all"),
            )),
            None => Ok(()),
        });
        let from = self.desired;
        if result.is_err() || to == from {
            self.replies.push((done, result));
            return;
        }
        self.desired = to;
        if to > from {
            self.replicas.extend((from..to).map(Replica::new));
            let mut result = Ok(());
            for pos in from as usize..to as usize {
                result = result.and(self.start_by_command(pos));
            }
            info!(from, to, "Scaled up.");
            self.emit(EventKind::Scaled { from, to });
            self.replies.push((done, result));
            return;
        }
        for pos in 0..self.replicas.len() {
            if self.replicas[pos].index >= to {
                self.begin_stop(pos, StopMode::Term, None);
            }
        }
        let then = Then::Remove { from, to, done };
        self.op = Some(Op {
            name: "scale",
            then,
            finish: Vec::new(),
        });
    }

    /// Passes `signal` on to every child's group; TERM and INT begin the
    /// shutdown: no more restarts, no flap, and the actor ends once every
    /// child is gone.
    fn forward(&mut self, signal: Signal) {
        let shutdown = signal.shuts_down();
        if shutdown {
            self.begin_shutdown(signal);
        }
        info!(%signal, "Forwarding a signal to the children.");
        let mut resumed = Vec::new();
        for replica in &mut self.replicas {
            let Some(pid) = replica.pid else { continue };
            super::child::signal_group(pid, signal);
            if shutdown && replica.state == ChildState::Paused {
                super::child::signal_group(pid, Signal::Cont);
                replica.state = ChildState::Running;
                resumed.push(replica.index);
            }
        }
        for replica in resumed {
            self.emit(EventKind::Resumed { replica });
        }
        self.emit(EventKind::SignalForwarded {
            signal: signal.number(),
        });
    }

    /// `docker stop` (or any SIGTERM) with `--on-term drain`: begins the
    /// shutdown, then stops every child in lame-duck mode within `grace`.
    /// A running operation (an upgrade, a stop) is not interrupted: the
    /// SIGTERM is forwarded as it is.
    fn drain(&mut self, grace: Duration) {
        if self.op.is_some() || self.shutting_down {
            info!("SIGTERM during an operation or a shutdown: forwarding it instead of draining.");
            self.forward(Signal::Term);
            return;
        }
        self.begin_shutdown(Signal::Term);
        info!(?grace, "SIGTERM: draining the children in lame-duck mode.");
        let mut resumed = Vec::new();
        for replica in &mut self.replicas {
            if let (ChildState::Paused, Some(pid)) = (replica.state, replica.pid) {
                super::child::signal_group(pid, Signal::Cont);
                replica.state = ChildState::Running;
                resumed.push(replica.index);
            }
        }
        for replica in resumed {
            self.emit(EventKind::Resumed { replica });
        }
        if self.stop_all(StopMode::Ldm, Some(grace)) > 0 {
            self.op = Some(Op {
                name: "drain",
                then: Then::Nothing,
                finish: Vec::new(),
            });
        }
    }

    /// No more restarts and no flap; the actor ends once every child is gone.
    fn begin_shutdown(&mut self, signal: Signal) {
        if self.shutting_down {
            return;
        }
        info!(%signal, "Shutting down: no more restarts.");
        self.shutting_down = true;
        // The child's code counts when it is still running, or when it
        // failed and waits to restart; a child stopped by a command does not.
        self.shutdown_keeps_code = self
            .replicas
            .first()
            .is_some_and(|r| r.alive() || r.state == ChildState::Backoff);
        self.drop_flap();
        for replica in &mut self.replicas {
            if replica.state == ChildState::Backoff {
                replica.state = ChildState::Exited;
                replica.restart_at = None;
            }
        }
    }
}
