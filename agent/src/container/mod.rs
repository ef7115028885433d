//! `geolb-agent run --container NAME`: a sibling container driven through
//! the Docker API instead of a child process, with the same verbs, replies
//! and events.
//!
//! # How it works
//! - Docker owns the container; the agent drives it. A watcher inspects it
//!   on every engine event about it (the events API) and every 2 s in case
//!   one was missed, and every command inspects it as it acts; each change
//!   seen becomes the event a process would give (`started`, `exited`,
//!   `paused`, `resumed`, `restarting`), once ([`state::changes`]).
//! - Commands run one at a time, each in its own task: a second one gets
//!   `conflict` (busy), except a `stop` with mode kill, which kills at once
//!   and interrupts the running one. A flap runs as a task of its own; a
//!   command that takes over ends it first.
//! - Stop modes: `ldm` is `docker kill --signal SIGUSR2`, ended early by the
//!   drain probe with SIGINT, SIGINT at the grace, SIGKILL 5 s later; `term`
//!   is `docker stop` with the grace; `kill` is `docker kill`. `pause` flaps
//!   are `docker pause`/`unpause`. `upgrade` recreates the container from
//!   another image ([`geolb_engine::Engine::recreate`]).
//! - A container that exits on its own is reported, not restarted: that is
//!   Docker's restart policy's job (`docker run --restart`). A container
//!   stopped by a command stays down: if the policy brings it back, the
//!   agent stops it again.
//! - The agent's own end (SIGTERM, SIGINT) leaves the container as it is,
//!   except that a flap in progress is ended with the container up.

mod flap;
mod ops;
mod state;
mod watcher;

use crate::supervisor::{DrainProbe, FlapPlan, Snapshot};
use geolb_engine::Engine;
use geolb_proto::{ErrorKind, EventKind, ReplyError, StopMode};
use ops::Shared;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// How often the watcher inspects the container besides the engine's events.
const WATCH_EVERY: Duration = Duration::from_secs(2);
/// How long the agent's shutdown waits for a flap or a command to finish.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(15);

/// Which container and how to stop it.
#[derive(Clone)]
pub struct Spec {
    /// The container's name or id (its name is used from then on).
    pub name: String,
    /// `docker stop` timeout for `term` stops when the command gives none.
    pub term_grace: Duration,
    /// How long an `ldm` drain may take when the command gives none.
    pub ldm_grace: Duration,
    /// Optional early end of LDM drains (polled every 100 ms while draining).
    pub drain_probe: Option<DrainProbe>,
}

/// A cloneable handle to the supervised container; the same verbs as
/// [`crate::supervisor::Handle`].
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
    snapshot: watch::Receiver<Snapshot>,
}

/// Connects to the engine and finds the container; errors say what to fix
/// (no engine, no such container) and leave nothing behind. The watcher
/// runs until `token` is cancelled.
pub async fn start(
    spec: Spec,
    events: mpsc::Sender<EventKind>,
    token: CancellationToken,
) -> anyhow::Result<Handle> {
    let engine = Engine::connect().await?;
    let found = engine
        .container(&spec.name)
        .await
        .map_err(|e| anyhow::anyhow!("--container {}: {e}", spec.name))?;
    tracing::info!(
        container = %found.name,
        id = %&found.id[..found.id.len().min(12)],
        image = %found.image,
        running = found.running,
        "Supervising a container through the Docker API."
    );
    let (shared, snapshot) = Shared::new(engine, spec, found, events);
    let watcher = shared.clone();
    tokio::spawn(async move { watcher.watch(WATCH_EVERY, token).await });
    Ok(Handle { shared, snapshot })
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

    /// Stops the container; it stays stopped until [`Handle::start`].
    pub async fn stop(&self, mode: StopMode, grace: Option<Duration>) -> Result<(), ReplyError> {
        self.run(move |s| async move { s.stop(mode, grace).await })
            .await
    }

    /// Starts (or unpauses) it; a conflict when it already runs.
    pub async fn start(&self) -> Result<(), ReplyError> {
        self.run(|s| async move { s.start().await }).await
    }

    /// Stops then starts it.
    pub async fn restart(&self, mode: StopMode, grace: Option<Duration>) -> Result<(), ReplyError> {
        self.run(move |s| async move { s.restart(mode, grace).await })
            .await
    }

    /// Drains it (LDM when `drain`, else `docker stop`), recreates it from
    /// `image` and starts it. Health gating is the caller's.
    pub async fn replace_image(
        &self,
        image: String,
        drain: bool,
        grace: Option<Duration>,
    ) -> Result<(), ReplyError> {
        self.run(move |s| async move { s.replace(image, drain, grace).await })
            .await
    }

    /// The image reference `to` names: itself, or with no `:` or `/`, a tag
    /// of the current image's repository; `not_installed` when the engine
    /// does not have it.
    pub async fn resolve_image(&self, to: &str) -> Result<String, ReplyError> {
        let current = self.snapshot().program.display().to_string();
        let image = image_reference(to.trim(), &current);
        match self.shared.engine.has_image(&image).await {
            Ok(true) => Ok(image),
            Ok(false) => Err(ReplyError::new(
                ErrorKind::NotInstalled,
                format!("image {image} is not in the Docker engine; build or pull it first"),
            )),
            Err(e) => Err(ReplyError::new(ErrorKind::Failed, e.to_string())),
        }
    }

    /// Begins a flap; returns once it began.
    pub async fn flap(&self, plan: FlapPlan) -> Result<(), ReplyError> {
        self.run(move |s| async move { s.flap(plan).await }).await
    }

    /// Ends a flap early and leaves the container running.
    pub async fn cancel_flap(&self) -> Result<(), ReplyError> {
        self.run(|s| async move { s.cancel_flap().await }).await
    }

    /// Refused: a container is one replica.
    pub async fn scale(&self, replicas: u32) -> Result<(), ReplyError> {
        if replicas == 1 {
            return Ok(());
        }
        Err(ReplyError::new(
            ErrorKind::Conflict,
            "the agent supervises one container, which is one replica; \
             run more containers, each with its agent, instead",
        ))
    }

    /// Passes a signal the agent received on to the container (`docker kill --signal`).
    pub async fn forward(&self, signal: crate::signals::Signal) {
        self.shared.forward(signal).await
    }

    /// The agent is ending: a flap in progress is ended with the container
    /// up, and a command in progress (an upgrade recreating the container)
    /// gets a moment to finish.
    pub async fn shutdown(&self) {
        let settle = async {
            self.shared.end_flap(true).await;
            while let Some(busy) = self.shared.busy() {
                tracing::info!(
                    command = busy,
                    "Waiting for the command in progress to finish."
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        };
        if tokio::time::timeout(SHUTDOWN_WAIT, settle).await.is_err() {
            tracing::warn!(
                "Ending with a command or flap unfinished; check the container's state."
            );
        }
    }

    /// Runs a command in its own task, so a dropped request cannot cut it short.
    async fn run<F, Fut>(&self, command: F) -> Result<(), ReplyError>
    where
        F: FnOnce(Arc<Shared>) -> Fut,
        Fut: std::future::Future<Output = Result<(), ReplyError>> + Send + 'static,
    {
        tokio::spawn(command(self.shared.clone()))
            .await
            .unwrap_or_else(|e| {
                Err(ReplyError::new(
                    ErrorKind::Failed,
                    format!("the command's task failed: {e}"),
                ))
            })
    }
}

/// `to` as a full image reference: a bare tag (`2.14.6`: no `:`, `/` or `@`)
/// goes with the repository of `current`.
fn image_reference(to: &str, current: &str) -> String {
    if to.contains([':', '/', '@']) || current.is_empty() {
        return to.to_string();
    }
    let without_digest = current.split('@').next().unwrap_or(current);
    // A `:` after the last `/` starts the tag; one before is a registry port.
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    let repository = match without_digest[last_slash..].rfind(':') {
        Some(colon) => &without_digest[..last_slash + colon],
        None => without_digest,
    };
    format!("{repository}:{to}")
}

#[cfg(test)]
mod tests {
    use super::image_reference;

    #[test]
    fn a_bare_tag_goes_with_the_current_repository() {
        let cases = [
            ("2.14.6", "geolb-server:latest", "geolb-server:2.14.6"),
            ("2.14.6", "geolb-server", "geolb-server:2.14.6"),
            (
                "v2",
                "localhost:5000/nats/server:v1",
                "localhost:5000/nats/server:v2",
            ),
            ("v2", "localhost:5000/nats", "localhost:5000/nats:v2"),
            ("v2", "nats@sha256:abc", "nats:v2"),
            ("other:1", "geolb-server:latest", "other:1"),
            ("registry/x", "geolb-server:latest", "registry/x"),
        ];
        for (to, current, want) in cases {
            assert_eq!(image_reference(to, current), want, "{to} on {current}");
        }
    }
}
