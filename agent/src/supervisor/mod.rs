//! The supervisor: one actor task owns every replica of the child.
//!
//! [`Supervisor::start`] returns a cloneable [`Handle`]; each handle method
//! sends a [`Control`] and awaits its outcome. The actor never blocks on one
//! control: long operations (a drain, a flap) are states with deadlines, so
//! exits are reaped and the snapshot stays fresh while they run.
//!
//! # How it works
//! - Children are spawned with `std::process::Command` as process-group
//!   leaders, with `PR_SET_PDEATHSIG` so nothing outlives the agent.
//! - The actor is also the reaper: on SIGCHLD it calls `waitpid(-1)` until
//!   nothing is left, so orphans are reaped when the agent is PID 1 (or a
//!   child subreaper) and no other code may wait on children.
//! - Restarts follow the [`RestartPolicy`] with [`Backoff`].

mod actor;
pub mod backoff;
mod child;
mod controls;
pub(crate) mod flap;
mod lifecycle;
mod ops;
mod replica;

pub use backoff::Backoff;

use geolb_proto::{
    ChildState, EventKind, FlapMode, FlapStatus, ReplicaStatus, ReplyError, StopMode,
};
use std::ffi::OsString;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::signals::Signal;

/// When a child that exited on its own is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RestartPolicy {
    /// Never; the agent exits with the child's code.
    Never,
    /// When it exited with a non-zero code or was killed by a signal.
    OnFailure,
    /// Always.
    Always,
}

/// Answers "has this draining server lost all its clients?", so an LDM stop
/// can end early with SIGINT instead of waiting out the lame-duck duration.
pub type DrainProbe = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// What to run and how.
#[derive(Clone)]
pub struct Spec {
    /// The program (argv\[0\]).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Variables added to its environment.
    pub env: Vec<(OsString, OsString)>,
    /// Replicas to start with (each gets `GEOLB_REPLICA=<index>`).
    pub replicas: u32,
    /// Restart policy for children that exit on their own.
    pub restart: RestartPolicy,
    /// Restart backoff.
    pub backoff: Backoff,
    /// Grace before SIGKILL for `term` stops when the command gives none.
    pub term_grace: Duration,
    /// Grace before SIGKILL for `ldm` stops when the command gives none.
    pub ldm_grace: Duration,
    /// Optional early end of LDM drains (polled every 100 ms while draining).
    pub drain_probe: Option<DrainProbe>,
}

/// A flap as the actor runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlapPlan {
    /// How the child is taken down.
    pub mode: FlapMode,
    /// Down phase.
    pub down: Duration,
    /// Up phase.
    pub up: Duration,
    /// Down/up cycles.
    pub cycles: u32,
}

/// The supervisor's state as the rest of the agent sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The program currently run.
    pub program: PathBuf,
    /// Replicas wanted.
    pub desired_replicas: u32,
    /// Each replica.
    pub replicas: Vec<ReplicaStatus>,
    /// A flap in progress.
    pub flap: Option<FlapStatus>,
    /// Restarts by policy, over all replicas.
    pub restarts: u32,
}

impl Snapshot {
    /// The replicas' summarised state.
    pub fn state(&self) -> ChildState {
        geolb_proto::status::summarise(&self.replicas)
    }

    /// Pids of the running (or paused, draining) replicas.
    pub fn pids(&self) -> Vec<(u32, u32)> {
        self.replicas
            .iter()
            .filter_map(|r| r.pid.map(|pid| (r.index, pid)))
            .collect()
    }
}

/// A message to the actor; each carries where to send its outcome.
pub(crate) enum Control {
    Stop {
        mode: StopMode,
        grace: Option<Duration>,
        done: oneshot::Sender<Result<(), ReplyError>>,
    },
    Start {
        done: oneshot::Sender<Result<(), ReplyError>>,
    },
    Restart {
        mode: StopMode,
        grace: Option<Duration>,
        done: oneshot::Sender<Result<(), ReplyError>>,
    },
    Replace {
        program: PathBuf,
        drain: bool,
        grace: Option<Duration>,
        done: oneshot::Sender<Result<(), ReplyError>>,
    },
    Flap {
        plan: FlapPlan,
        done: oneshot::Sender<Result<(), ReplyError>>,
    },
    CancelFlap {
        done: oneshot::Sender<Result<(), ReplyError>>,
    },
    Scale {
        replicas: u32,
        done: oneshot::Sender<Result<(), ReplyError>>,
    },
    Forward {
        signal: Signal,
    },
    Drain {
        grace: Duration,
    },
}

/// How the supervisor ended, for the agent's exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The exit code the agent should exit with (the child's, or 128+signal).
    pub code: i32,
}

/// A cloneable handle to the supervisor actor.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Control>,
    snapshot: watch::Receiver<Snapshot>,
}

/// The supervisor actor; see the module doc.
pub struct Supervisor;

impl Supervisor {
    /// Starts the actor and the initial replicas. Events go to `events`
    /// (a full channel drops the event). The task ends when every replica
    /// ended on its own with no restart due, or after a forwarded SIGTERM or
    /// SIGINT once every child is gone.
    pub fn start(spec: Spec, events: mpsc::Sender<EventKind>) -> (Handle, JoinHandle<Outcome>) {
        let (tx, rx) = mpsc::channel(64);
        let (snapshot_tx, snapshot) = watch::channel(Snapshot {
            program: spec.program.clone(),
            desired_replicas: spec.replicas,
            replicas: Vec::new(),
            flap: None,
            restarts: 0,
        });
        let task = tokio::spawn(actor::run(spec, rx, snapshot_tx, events));
        (Handle { tx, snapshot }, task)
    }
}

impl Handle {
    /// The current state.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.borrow().clone()
    }

    /// A receiver that sees every state change.
    pub fn watch(&self) -> watch::Receiver<Snapshot> {
        self.snapshot.clone()
    }

    /// Stops every replica; they stay stopped until [`Handle::start`].
    pub async fn stop(&self, mode: StopMode, grace: Option<Duration>) -> Result<(), ReplyError> {
        self.call(|done| Control::Stop { mode, grace, done }).await
    }

    /// Starts stopped or exited replicas; a conflict when all already run.
    pub async fn start(&self) -> Result<(), ReplyError> {
        self.call(|done| Control::Start { done }).await
    }

    /// Stops then starts every replica.
    pub async fn restart(&self, mode: StopMode, grace: Option<Duration>) -> Result<(), ReplyError> {
        self.call(|done| Control::Restart { mode, grace, done })
            .await
    }

    /// Stops every replica (LDM when `drain`, else SIGTERM), switches to
    /// `program` with the same arguments and starts again. Health gating is
    /// the caller's.
    pub async fn replace_program(
        &self,
        program: PathBuf,
        drain: bool,
        grace: Option<Duration>,
    ) -> Result<(), ReplyError> {
        self.call(|done| Control::Replace {
            program,
            drain,
            grace,
            done,
        })
        .await
    }

    /// Begins a flap; returns once it began.
    pub async fn flap(&self, plan: FlapPlan) -> Result<(), ReplyError> {
        self.call(|done| Control::Flap { plan, done }).await
    }

    /// Ends a flap early and leaves the child running.
    pub async fn cancel_flap(&self) -> Result<(), ReplyError> {
        self.call(|done| Control::CancelFlap { done }).await
    }

    /// Changes the number of replicas.
    pub async fn scale(&self, replicas: u32) -> Result<(), ReplyError> {
        self.call(|done| Control::Scale { replicas, done }).await
    }

    /// Passes a signal the agent received on to every child's process group.
    pub async fn forward(&self, signal: Signal) {
        let _ = self.tx.send(Control::Forward { signal }).await;
    }

    /// Shuts down like a forwarded SIGTERM, but drains: every child is
    /// stopped in lame-duck mode (ended early by the drain probe, SIGINT
    /// after `grace`), then the supervisor ends with the child's code.
    pub async fn drain(&self, grace: Duration) {
        let _ = self.tx.send(Control::Drain { grace }).await;
    }

    async fn call(
        &self,
        control: impl FnOnce(oneshot::Sender<Result<(), ReplyError>>) -> Control,
    ) -> Result<(), ReplyError> {
        let gone = || {
            ReplyError::new(
                geolb_proto::ErrorKind::Failed,
                "the supervisor has shut down; the agent is exiting",
            )
        };
        let (done, outcome) = oneshot::channel();
        self.tx.send(control(done)).await.map_err(|_| gone())?;
        outcome.await.map_err(|_| gone())?
    }
}
