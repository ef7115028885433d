//! One replica as the actor tracks it.

use crate::drain::Drain;
use geolb_proto::{ChildState, ExitInfo, ReplicaStatus, StopMode};
use nix::unistd::Pid;
use tokio::time::Instant;

/// A replica's bookkeeping; the actor owns all of them.
#[derive(Debug)]
pub(super) struct Replica {
    /// Index, also `GEOLB_REPLICA`.
    pub(super) index: u32,
    /// State as reported.
    pub(super) state: ChildState,
    /// Pid while the process exists (until reaped).
    pub(super) pid: Option<Pid>,
    /// Restarts by policy.
    pub(super) restarts: u32,
    /// Backoff attempt; reset after a long enough run.
    pub(super) attempt: u32,
    /// When the current process started.
    pub(super) started: Option<Instant>,
    /// The same, in ms since the epoch.
    pub(super) started_at_ms: Option<u64>,
    /// How the last process ended.
    pub(super) last_exit: Option<ExitInfo>,
    /// Set while a command or a flap stops it: it is not restarted by policy.
    pub(super) stopping: Option<StopMode>,
    /// SIGKILL deadline of a term stop.
    pub(super) kill_at: Option<Instant>,
    /// When a backoff ends and it starts again.
    pub(super) restart_at: Option<Instant>,
    /// The lame-duck drain of an ldm stop.
    pub(super) drain: Option<Drain>,
    /// Start again as soon as the process is gone (a flap's up phase came
    /// before the down phase's process was reaped).
    pub(super) start_when_gone: bool,
}

impl Replica {
    /// A replica that has not run yet.
    pub(super) fn new(index: u32) -> Replica {
        Replica {
            index,
            state: ChildState::Stopped,
            pid: None,
            restarts: 0,
            attempt: 0,
            started: None,
            started_at_ms: None,
            last_exit: None,
            stopping: None,
            kill_at: None,
            restart_at: None,
            drain: None,
            start_when_gone: false,
        }
    }

    /// Whether its process exists.
    pub(super) fn alive(&self) -> bool {
        self.pid.is_some()
    }

    /// Whether it runs and is not being stopped (paused counts as running).
    pub(super) fn up(&self) -> bool {
        self.alive() && self.stopping.is_none()
    }

    /// Whether `start` has something to start here.
    pub(super) fn startable(&self) -> bool {
        !self.alive()
            && matches!(
                self.state,
                ChildState::Stopped | ChildState::Exited | ChildState::Backoff
            )
    }

    /// Marks a fresh process.
    pub(super) fn started(&mut self, pid: Pid, now: Instant, now_ms: u64) {
        self.pid = Some(pid);
        self.state = ChildState::Running;
        self.started = Some(now);
        self.started_at_ms = Some(now_ms);
        self.stopping = None;
        self.kill_at = None;
        self.restart_at = None;
        self.drain = None;
        self.start_when_gone = false;
    }

    /// Marks its process gone; returns the stop mode if a command or flap
    /// stopped it.
    pub(super) fn ended(&mut self, exit: ExitInfo) -> Option<StopMode> {
        self.pid = None;
        self.last_exit = Some(exit);
        self.kill_at = None;
        self.drain = None;
        self.stopping.take()
    }

    /// The status shown in snapshots.
    pub(super) fn status(&self) -> ReplicaStatus {
        ReplicaStatus {
            index: self.index,
            state: self.state,
            pid: self.pid.and_then(|p| u32::try_from(p.as_raw()).ok()),
            restarts: self.restarts,
            started_at_ms: self.started_at_ms,
            last_exit: self.last_exit,
        }
    }
}
