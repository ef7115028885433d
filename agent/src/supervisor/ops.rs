//! Long operations as states: stopping replicas (with grace deadlines and
//! the drain probe), what follows once they are gone, and the flap phases.
//! The actor's loop calls [`Actor::settle`] after every event, so an
//! operation completes as soon as its last replica is reaped.

use super::actor::{Actor, Done, PROBE_EVERY};
use super::flap::Step;
use crate::drain::Drain;
use crate::signals::Signal;
use geolb_proto::{ChildState, ErrorKind, EventKind, FlapMode, ReplyError, StopMode};
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;
use tracing::info;

/// An operation waiting for stopping replicas to be gone.
pub(super) struct Op {
    /// Its name in "busy" messages: stop, restart, replace, scale.
    pub(super) name: &'static str,
    /// What to do once they are gone.
    pub(super) then: Then,
    /// Replies to send then.
    pub(super) finish: Vec<(Done, Result<(), ReplyError>)>,
}

/// The second half of an operation.
pub(super) enum Then {
    /// Nothing: a stop.
    Nothing,
    /// Start every replica again: a restart.
    Start(Done),
    /// Switch the program, then start: a replace.
    Replace { program: PathBuf, done: Done },
    /// Drop the replicas from `to` on: a scale down.
    Remove { from: u32, to: u32, done: Done },
}

impl Actor {
    /// Begins stopping replica `pos` (no-op when it is not alive). A kill
    /// also escalates a stop already under way.
    pub(super) fn begin_stop(&mut self, pos: usize, mode: StopMode, grace: Option<Duration>) {
        let now = Instant::now();
        let (term_grace, ldm_grace) = (self.spec.term_grace, self.spec.ldm_grace);
        let has_probe = self.spec.drain_probe.is_some();
        let replica = &mut self.replicas[pos];
        let Some(pid) = replica.pid else { return };
        if replica.stopping.is_some() && mode != StopMode::Kill {
            return;
        }
        let paused = replica.state == ChildState::Paused;
        let index = replica.index;
        info!(
            replica = index,
            pid = pid.as_raw(),
            ?mode,
            "Stopping the child."
        );
        replica.stopping = Some(mode);
        match mode {
            StopMode::Kill => {
                replica.state = ChildState::Stopping;
                replica.kill_at = None;
                replica.drain = None;
                super::child::signal_group(pid, Signal::Kill);
            }
            StopMode::Term => {
                replica.state = ChildState::Stopping;
                replica.kill_at = Some(now + grace.unwrap_or(term_grace));
                super::child::signal_group(pid, Signal::Term);
            }
            StopMode::Ldm => {
                replica.state = ChildState::Draining;
                replica.drain = Some(Drain::new(now, grace.unwrap_or(ldm_grace)));
                super::child::signal_pid(pid, Signal::Usr2);
                if has_probe {
                    self.probe_at = Some(now + PROBE_EVERY);
                }
                self.emit(EventKind::LameDuck { replica: index });
            }
        }
        if paused && mode != StopMode::Kill {
            // A frozen process handles the signal only once thawed.
            super::child::signal_group(pid, Signal::Cont);
        }
    }

    /// Stops every replica; returns how many are alive and stopping. A
    /// replica waiting out a backoff is stopped at once.
    pub(super) fn stop_all(&mut self, mode: StopMode, grace: Option<Duration>) -> usize {
        for pos in 0..self.replicas.len() {
            let replica = &mut self.replicas[pos];
            if replica.alive() {
                self.begin_stop(pos, mode, grace);
            } else if replica.state == ChildState::Backoff {
                replica.state = ChildState::Stopped;
                replica.restart_at = None;
                let index = replica.index;
                self.emit(EventKind::Stopped {
                    replica: index,
                    mode,
                });
            }
        }
        self.stopping_count()
    }

    /// Replicas alive and being stopped.
    pub(super) fn stopping_count(&self) -> usize {
        self.replicas
            .iter()
            .filter(|r| r.alive() && r.stopping.is_some())
            .count()
    }

    /// A `stop` with mode kill while an operation runs: kill every child
    /// now; the running operation's caller learns it was interrupted, and
    /// both are answered once the children are gone.
    pub(super) fn escalate(&mut self, done: Done) {
        info!("Escalating to SIGKILL: killing every child now.");
        self.stop_all(StopMode::Kill, None);
        let Some(op) = self.op.as_mut() else {
            self.replies.push((done, Ok(())));
            return;
        };
        let interrupted = || {
            ReplyError::new(
                ErrorKind::Conflict,
                "interrupted by a stop with mode kill; the child stays stopped until `start`",
            )
        };
        match std::mem::replace(&mut op.then, Then::Nothing) {
            Then::Start(first) | Then::Replace { done: first, .. } => {
                op.finish.push((first, Err(interrupted())));
            }
            other => op.then = other,
        }
        op.finish.push((done, Ok(())));
    }

    /// Completes the operation in flight once its replicas are gone.
    pub(super) fn settle(&mut self) {
        if self.op.is_none() || self.stopping_count() > 0 {
            return;
        }
        let Some(op) = self.op.take() else { return };
        let shutting_down = || {
            ReplyError::new(
                ErrorKind::Failed,
                "the agent is shutting down; the child was stopped and not started again",
            )
        };
        self.replies.extend(op.finish);
        match op.then {
            Then::Nothing => {}
            Then::Start(done) if self.shutting_down => {
                self.replies.push((done, Err(shutting_down())))
            }
            Then::Replace { done, .. } if self.shutting_down => {
                self.replies.push((done, Err(shutting_down())))
            }
            Then::Start(done) => {
                let result = self.start_all();
                self.replies.push((done, result));
            }
            Then::Replace { program, done } => {
                let result = self.replace_now(program);
                self.replies.push((done, result));
            }
            Then::Remove { from, to, done } => {
                self.replicas.retain(|r| r.index < to);
                info!(from, to, "Scaled down.");
                self.emit(EventKind::Scaled { from, to });
                self.replies.push((done, Ok(())));
            }
        }
    }

    /// Starts every replica that is not running; the first error, if any.
    pub(super) fn start_all(&mut self) -> Result<(), ReplyError> {
        let mut result = Ok(());
        for pos in 0..self.replicas.len() {
            if self.replicas[pos].startable() {
                let started = self.start_by_command(pos);
                result = result.and(started);
            }
        }
        result
    }

    /// Switches to `program` and starts; if it cannot start, the previous
    /// program is started again so the fleet is not left down.
    fn replace_now(&mut self, program: PathBuf) -> Result<(), ReplyError> {
        let old = std::mem::replace(&mut self.spec.program, program);
        info!(from = %old.display(), to = %self.spec.program.display(), "Switching the program.");
        let Err(err) = self.start_all() else {
            return Ok(());
        };
        let new = std::mem::replace(&mut self.spec.program, old);
        info!(program = %self.spec.program.display(), "Starting the previous program again.");
        let message = match self.start_all() {
            Ok(()) => format!(
                "{}; {} runs again",
                err.message,
                self.spec.program.display()
            ),
            Err(again) => format!(
                "{}; restarting the previous program failed too: {}",
                err.message, again.message
            ),
        };
        tracing::error!(program = %new.display(), "Could not switch the program.");
        Err(ReplyError::new(ErrorKind::Failed, message))
    }

    /// Applies a flap phase change that is due.
    pub(super) fn advance_flap(&mut self, now: Instant) {
        let Some(step) = self.flap.as_mut().and_then(|f| f.advance(now)) else {
            return;
        };
        match step {
            Step::Down => self.flap_down(),
            Step::Up => self.flap_up(),
            Step::End { cycles_done } => self.end_flap(cycles_done, false),
        }
    }

    /// Takes the flapped replicas down.
    pub(super) fn flap_down(&mut self) {
        let Some(flap) = self.flap.as_ref() else {
            return;
        };
        let (plan, grace, cycle) = (flap.plan(), flap.stop_grace(), flap.status().cycle);
        info!(cycle, mode = ?plan.mode, "Flap: taking the child down.");
        for pos in self.flap_positions() {
            let replica = &mut self.replicas[pos];
            if replica.state == ChildState::Backoff {
                replica.state = ChildState::Stopped;
                replica.restart_at = None;
                continue;
            }
            let (Some(pid), ChildState::Running) = (replica.pid, replica.state) else {
                continue;
            };
            match plan.mode {
                FlapMode::Stop => self.begin_stop(pos, StopMode::Term, Some(grace)),
                FlapMode::Kill => self.begin_stop(pos, StopMode::Kill, None),
                FlapMode::Pause => {
                    replica.state = ChildState::Paused;
                    let index = replica.index;
                    super::child::signal_group(pid, Signal::Stop);
                    self.emit(EventKind::Paused { replica: index });
                }
            }
        }
    }

    /// Brings the flapped replicas up: thaws, starts, or starts once gone.
    pub(super) fn flap_up(&mut self) {
        info!("Flap: bringing the child up.");
        for pos in self.flap_positions() {
            let replica = &mut self.replicas[pos];
            match (replica.pid, replica.state) {
                (Some(pid), ChildState::Paused) => {
                    replica.state = ChildState::Running;
                    let index = replica.index;
                    super::child::signal_group(pid, Signal::Cont);
                    self.emit(EventKind::Resumed { replica: index });
                }
                (Some(_), _) if replica.stopping.is_some() => replica.start_when_gone = true,
                (None, ChildState::Stopped) => {
                    let _ = self.start_by_command(pos);
                }
                _ => {}
            }
        }
    }

    /// Ends the flap; when cancelled, the child is left up.
    pub(super) fn end_flap(&mut self, cycles_done: u32, cancelled: bool) {
        if cancelled {
            self.flap_up();
        }
        self.flap = None;
        info!(cycles_done, cancelled, "Flap ended.");
        self.emit(EventKind::FlapEnded {
            cycles_done,
            cancelled,
        });
    }

    /// Ends a flap without bringing anything up, before a stop, restart,
    /// replace or shutdown takes over.
    pub(super) fn drop_flap(&mut self) {
        let Some(flap) = self.flap.take() else { return };
        for replica in &mut self.replicas {
            replica.start_when_gone = false;
        }
        let cycles_done = flap.cycles_done();
        info!(cycles_done, "Flap cancelled.");
        self.emit(EventKind::FlapEnded {
            cycles_done,
            cancelled: true,
        });
    }

    fn flap_positions(&self) -> Vec<usize> {
        let Some(flap) = self.flap.as_ref() else {
            return Vec::new();
        };
        (0..self.replicas.len())
            .filter(|&pos| flap.targets.contains(&self.replicas[pos].index))
            .collect()
    }
}
