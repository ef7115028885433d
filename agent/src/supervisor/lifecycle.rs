//! Spawning replicas, reaping exits and applying the restart policy.

use super::actor::{Actor, SPAWN_FAILED};
use super::child;
use super::RestartPolicy;
use geolb_proto::{ChildState, EventKind, ExitInfo, ReplyError};
use std::time::Duration;
use tokio::time::Instant;
use tracing::{debug, info, warn};

impl Actor {
    /// Spawns replica `pos`; on error logs and returns a message naming the
    /// program, leaving the replica's state to the caller.
    pub(super) fn spawn(&mut self, pos: usize) -> Result<(), String> {
        let program = &self.spec.program;
        let Some(replica) = self.replicas.get_mut(pos) else {
            return Err(format!("no replica at position {pos}"));
        };
        let index = replica.index;
        match child::spawn(program, &self.spec.args, &self.spec.env, index) {
            Ok(pid) => {
                replica.started(pid, Instant::now(), child::now_ms());
                info!(replica = index, pid = pid.as_raw(), program = %program.display(), "Child started.");
                let program = program.display().to_string();
                let pid = u32::try_from(pid.as_raw()).unwrap_or(0);
                self.emit(EventKind::Started {
                    replica: index,
                    pid,
                    program,
                });
                Ok(())
            }
            Err(err) => {
                warn!(replica = index, program = %program.display(), %err, "Could not start the child.");
                Err(format!(
                    "cannot start {}: {err}; check that it exists and is executable",
                    program.display()
                ))
            }
        }
    }

    /// Reaps every ended child; our replicas' exits are handled, any other
    /// pid is an orphan.
    pub(super) fn reap(&mut self) {
        let now = Instant::now();
        for (pid, exit) in child::reap_all() {
            match self.replicas.iter().position(|r| r.pid == Some(pid)) {
                Some(pos) => self.on_exit(pos, exit, now),
                None => {
                    self.orphans += 1;
                    debug!(
                        pid = pid.as_raw(),
                        orphans = self.orphans,
                        "Reaped an orphan."
                    );
                }
            }
        }
    }

    /// A replica's process ended (or could not be spawned on a restart).
    pub(super) fn on_exit(&mut self, pos: usize, exit: ExitInfo, now: Instant) {
        let Some(replica) = self.replicas.get_mut(pos) else {
            return;
        };
        let (index, pid) = (replica.index, replica.pid.map(|p| p.as_raw()));
        let ran = replica.started.map(|s| now.saturating_duration_since(s));
        let stopped_by = replica.ended(exit);
        info!(
            replica = index,
            pid,
            code = exit.code,
            signal = exit.signal,
            "Child exited."
        );
        self.emit_exit(index, &exit);
        if let Some(mode) = stopped_by {
            let replica = &mut self.replicas[pos];
            replica.state = ChildState::Stopped;
            let again = std::mem::take(&mut replica.start_when_gone);
            info!(replica = index, ?mode, "Child stopped.");
            self.emit(EventKind::Stopped {
                replica: index,
                mode,
            });
            if again && !self.shutting_down {
                self.start_by_command(pos).ok();
            }
            return;
        }
        self.apply_policy(pos, exit, ran, now);
    }

    fn apply_policy(&mut self, pos: usize, exit: ExitInfo, ran: Option<Duration>, now: Instant) {
        let restart = !self.shutting_down
            && match self.spec.restart {
                RestartPolicy::Never => false,
                RestartPolicy::OnFailure => !exit.success(),
                RestartPolicy::Always => true,
            };
        let backoff = self.spec.backoff;
        let replica = &mut self.replicas[pos];
        if !restart {
            replica.state = ChildState::Exited;
            return;
        }
        if ran.is_some_and(|ran| ran >= backoff.reset_after) {
            replica.attempt = 0;
        }
        replica.attempt = replica.attempt.saturating_add(1);
        let delay = backoff.delay(replica.attempt, fastrand::f64());
        replica.state = ChildState::Backoff;
        replica.restart_at = Some(now + delay);
        let (index, attempt) = (replica.index, replica.attempt);
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        info!(
            replica = index,
            attempt, delay_ms, "Child will be restarted after a backoff."
        );
        self.emit(EventKind::Restarting {
            replica: index,
            attempt,
            delay_ms,
        });
    }

    /// Starts replica `pos` for a command or a flap; on failure it stays
    /// stopped, with exit code 127 recorded.
    pub(super) fn start_by_command(&mut self, pos: usize) -> Result<(), ReplyError> {
        self.spawn(pos).map_err(|message| {
            let exit = child::exit_info(Some(SPAWN_FAILED), None);
            let replica = &mut self.replicas[pos];
            replica.ended(exit);
            replica.state = ChildState::Stopped;
            let index = replica.index;
            self.emit_exit(index, &exit);
            ReplyError::new(geolb_proto::ErrorKind::Failed, message)
        })
    }
}
