//! What the agent supervises: child processes (the default) or a sibling
//! container (`--container`). The verbs in [`crate::commands`] drive either
//! through this one type and never ask which.

#[cfg(feature = "docker")]
use crate::container;
use crate::signals::Signal;
use crate::supervisor::{self, FlapPlan, Snapshot};
use geolb_proto::{ReplyError, StopMode};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::watch;

/// The supervised thing, behind one set of verbs.
#[derive(Clone)]
pub enum Target {
    /// Child processes, owned by the [`supervisor`] actor.
    Process(supervisor::Handle),
    /// A sibling container, driven through the Docker API.
    #[cfg(feature = "docker")]
    Container(container::Handle),
}

/// What an `upgrade` switches to, resolved before anything stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upgrade {
    /// A nats-server binary, run with the same arguments.
    Program(PathBuf),
    /// An image the container is recreated from.
    Image(String),
}

impl Upgrade {
    /// Its name in the `upgraded` event when the server's version is unknown.
    pub fn describe(&self) -> String {
        match self {
            Upgrade::Program(path) => {
                crate::binaries::version_of_path(path).unwrap_or_else(|| path.display().to_string())
            }
            Upgrade::Image(image) => image.clone(),
        }
    }
}

impl Target {
    /// The current state.
    pub fn snapshot(&self) -> Snapshot {
        match self {
            Target::Process(h) => h.snapshot(),
            #[cfg(feature = "docker")]
            Target::Container(h) => h.snapshot(),
        }
    }

    /// A receiver that sees every state change.
    pub fn watch(&self) -> watch::Receiver<Snapshot> {
        match self {
            Target::Process(h) => h.watch(),
            #[cfg(feature = "docker")]
            Target::Container(h) => h.watch(),
        }
    }

    /// `stop`: down until `start`.
    pub async fn stop(&self, mode: StopMode, grace: Option<Duration>) -> Result<(), ReplyError> {
        match self {
            Target::Process(h) => h.stop(mode, grace).await,
            #[cfg(feature = "docker")]
            Target::Container(h) => h.stop(mode, grace).await,
        }
    }

    /// `start`: up again; ends a flap.
    pub async fn start(&self) -> Result<(), ReplyError> {
        match self {
            Target::Process(h) => h.start().await,
            #[cfg(feature = "docker")]
            Target::Container(h) => h.start().await,
        }
    }

    /// `restart`: down, then up.
    pub async fn restart(&self, mode: StopMode, grace: Option<Duration>) -> Result<(), ReplyError> {
        match self {
            Target::Process(h) => h.restart(mode, grace).await,
            #[cfg(feature = "docker")]
            Target::Container(h) => h.restart(mode, grace).await,
        }
    }

    /// Resolves an `upgrade`'s `to` (an installed version or binary path; for
    /// a container an image reference or tag); `not_installed` when missing.
    pub async fn resolve_upgrade(
        &self,
        to: &str,
        servers_dir: &Path,
    ) -> Result<Upgrade, ReplyError> {
        match self {
            Target::Process(_) => crate::binaries::resolve(to, servers_dir).map(Upgrade::Program),
            #[cfg(feature = "docker")]
            Target::Container(h) => h.resolve_image(to).await.map(Upgrade::Image),
        }
    }

    /// Whether `to` (a binary: `obj:NAME`) can replace what runs: only a
    /// child process can; a sibling container is upgraded by image.
    #[cfg_attr(not(feature = "docker"), allow(unused_variables))]
    pub fn runs_programs(&self, to: &str) -> Result<(), ReplyError> {
        match self {
            Target::Process(_) => Ok(()),
            #[cfg(feature = "docker")]
            Target::Container(_) => Err(ReplyError::new(
                geolb_proto::ErrorKind::InvalidArgument,
                format!(
                    "{to} is a binary, and this agent drives a container beside it (--container), \
                     which it upgrades by image: build an image holding the binary and give its tag, \
                     or run the agent inside the container with nats-server as its child"
                ),
            )),
        }
    }

    /// Drains, switches to `to` and starts again; health gating is the caller's.
    pub async fn upgrade(
        &self,
        to: Upgrade,
        drain: bool,
        grace: Option<Duration>,
    ) -> Result<(), ReplyError> {
        match (self, to) {
            (Target::Process(h), Upgrade::Program(path)) => {
                h.replace_program(path, drain, grace).await
            }
            #[cfg(feature = "docker")]
            (Target::Container(h), Upgrade::Image(image)) => {
                h.replace_image(image, drain, grace).await
            }
            (_, to) => Err(ReplyError::new(
                geolb_proto::ErrorKind::InvalidArgument,
                format!("{} does not fit what this agent supervises", to.describe()),
            )),
        }
    }

    /// `flap`: begins one; returns once it began.
    pub async fn flap(&self, plan: FlapPlan) -> Result<(), ReplyError> {
        match self {
            Target::Process(h) => h.flap(plan).await,
            #[cfg(feature = "docker")]
            Target::Container(h) => h.flap(plan).await,
        }
    }

    /// `flap` with `cancel`: ends it, the child up.
    pub async fn cancel_flap(&self) -> Result<(), ReplyError> {
        match self {
            Target::Process(h) => h.cancel_flap().await,
            #[cfg(feature = "docker")]
            Target::Container(h) => h.cancel_flap().await,
        }
    }

    /// `scale`: the number of replicas (a container is always one).
    pub async fn scale(&self, replicas: u32) -> Result<(), ReplyError> {
        match self {
            Target::Process(h) => h.scale(replicas).await,
            #[cfg(feature = "docker")]
            Target::Container(h) => h.scale(replicas).await,
        }
    }

    /// Passes a signal the agent received on.
    pub async fn forward(&self, signal: Signal) {
        match self {
            Target::Process(h) => h.forward(signal).await,
            #[cfg(feature = "docker")]
            Target::Container(h) => h.forward(signal).await,
        }
    }
}
