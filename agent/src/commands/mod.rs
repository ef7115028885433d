//! The verbs: one function per verb in its own file, dispatched by
//! [`answer`] once a request is admitted ([`crate::admission`]: decoding,
//! signatures, the rate gate and the memory of answered ids), and the
//! [`Context`] every verb acts on.

mod flap;
mod scale;
mod stop;
mod upgrade;

use crate::admission::{self, Auth, Bucket, Gate, Memory, Seen};
use crate::control::outbox::Outbox;
use crate::identity::Identity;
use crate::monitor::Monitor;
use crate::supervisor::Snapshot;
use crate::target::Target;
use geolb_proto::{AgentStatus, ErrorKind, EventKind, Reply, ReplyError, Request};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Everything a verb needs to act.
pub struct Context {
    /// What is supervised: the child processes or a container.
    pub handle: Target,
    /// The control-plane connection's health, when there is a control plane.
    pub control: Option<Arc<crate::control::health::Health>>,
    /// Who we are.
    pub identity: Identity,
    /// Where installed nats-server versions live (`<dir>/<version>/nats-server`).
    pub servers_dir: PathBuf,
    /// Binaries fetched from the control plane (`upgrade --to obj:NAME`).
    pub objects: crate::objects::Objects,
    /// The server's monitoring endpoint, for `--role server`.
    pub monitor: Option<Monitor>,
    /// Default health-gate timeout of `upgrade`.
    pub upgrade_timeout: Duration,
    /// Events go here.
    pub outbox: Arc<Outbox>,
    /// The child's version as last read from its monitor.
    pub child_version: Mutex<Option<String>>,
    /// Answered command ids.
    pub memory: Memory,
    /// The latest status of each client replica (client agents with a control plane).
    pub client_reports: Option<Arc<crate::control::reports::Latest>>,
    /// When the agent started.
    pub started: Instant,
    /// Which commands are obeyed (`--trust`).
    pub auth: Auth,
    /// The rate limit and in-flight cap of requests.
    pub gate: Gate,
    /// The rate of `command_refused` events and warnings.
    pub refusals: Bucket,
    /// Refusals not reported because of that rate.
    pub refusals_unreported: AtomicU64,
}

impl Context {
    /// The agent's status as replies and heartbeats carry it.
    pub fn status(&self) -> AgentStatus {
        status_of(self, &self.handle.snapshot())
    }

    /// Remembers the child's version (read from `/varz`).
    pub fn set_child_version(&self, version: Option<String>) {
        if let Ok(mut v) = self.child_version.lock() {
            *v = version;
        }
    }
}

fn status_of(ctx: &Context, snapshot: &Snapshot) -> AgentStatus {
    let version = ctx
        .child_version
        .lock()
        .ok()
        .and_then(|v| v.clone())
        .or_else(|| crate::binaries::version_of_path(&snapshot.program));
    AgentStatus {
        id: ctx.identity.id.clone(),
        region: ctx.identity.region.clone(),
        role: ctx.identity.role,
        host: ctx.identity.host.clone(),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        state: snapshot.state(),
        version,
        program: snapshot.program.display().to_string(),
        restarts: snapshot.restarts,
        desired_replicas: snapshot.desired_replicas,
        replicas: snapshot.replicas.clone(),
        flap: snapshot.flap.clone(),
        uptime_ms: ctx.started.elapsed().as_millis() as u64,
    }
}

/// Answers one request sent to `verb` (the endpoint's name) with `payload`.
/// Never panics: bad input becomes a typed error reply and changes nothing.
pub async fn answer(ctx: &Context, verb: &str, payload: &[u8]) -> Reply {
    let command = match admission::decode(&ctx.auth, verb, payload) {
        Ok(pair) => pair,
        Err((id, error)) => return refuse(ctx, verb, id, error),
    };
    let (command, request) = command;
    if request == Request::Status {
        // Read-only: nothing to apply twice, and status polling must not
        // push real command ids out of the bounded memory.
        return Reply::new(command.id, Ok(()), ctx.status());
    }
    let claim = match ctx.memory.see(&command.id) {
        Seen::New(claim) => claim,
        Seen::Done(reply) => {
            tracing::debug!(id = %command.id, "Repeated command id answered from memory.");
            return *reply;
        }
        Seen::InFlight(first) => match first.wait().await {
            Some(reply) => return reply,
            None => return Reply::new(command.id, Err(busy()), ctx.status()),
        },
    };
    tracing::info!(id = %command.id, verb, "Command received.");
    let outcome = apply(ctx, request).await;
    if let Err(e) = &outcome {
        tracing::warn!(id = %command.id, verb, error = %e, "Command failed.");
    }
    let reply = Reply::new(command.id, outcome, ctx.status());
    claim.complete(reply.clone());
    reply
}

fn busy() -> ReplyError {
    ReplyError::new(
        ErrorKind::Failed,
        "the first request with this id ended without an answer; send it again with a new id",
    )
}

/// Answers `error` and reports it: a warning and a `command_refused` event,
/// themselves rate-limited so a flood of bad requests cannot flood the
/// outbox (the next reported refusal counts the ones left out).
pub fn refuse(ctx: &Context, verb: &str, id: String, error: ReplyError) -> Reply {
    let verb: String = verb.chars().take(32).collect();
    if ctx.refusals.take() {
        let skipped = ctx.refusals_unreported.swap(0, Ordering::Relaxed);
        tracing::warn!(verb, error = %error, skipped, "Command refused.");
        let mut message = error.message.clone();
        if skipped > 0 {
            message.push_str(&format!(" ({skipped} more refusals not reported)"));
        }
        ctx.outbox.push(EventKind::CommandRefused {
            verb,
            error: error.kind,
            message,
        });
    } else {
        ctx.refusals_unreported.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(verb, error = %error, "Command refused (not reported: too many).");
    }
    Reply::new(id, Err(error), ctx.status())
}

async fn apply(ctx: &Context, request: Request) -> Result<(), ReplyError> {
    match request {
        Request::Status => Ok(()),
        Request::Start => ctx.handle.start().await,
        Request::Stop(args) => stop::stop(ctx, args).await,
        Request::Restart(args) => stop::restart(ctx, args).await,
        Request::Upgrade(args) => upgrade::upgrade(ctx, args).await,
        Request::Flap(args) => flap::flap(ctx, args).await,
        Request::Scale(args) => scale::scale(ctx, args).await,
    }
}
