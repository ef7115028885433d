//! User-space WAN emulation for the nats-geolb lab.
//!
//! The kernel here has no `netem`, so every inter-region path (gateway connections and
//! client-to-server connections) goes through a [`Link`]: a TCP proxy that adds a
//! one-way delay per direction and jitter, and can be cut (a partition) or reset, all
//! changeable at run time. An [`Emulator`] is a named set of links.
//!
//! ```no_run
//! # async fn f(server: std::net::SocketAddr) -> Result<(), geolb_wan::Error> {
//! use std::time::Duration;
//! use geolb_wan::{Emulator, LinkConfig, LinkState};
//! let wan = Emulator::new();
//! let rtt = Duration::from_millis(105);
//! let addr = wan.add("lon-dfw", "127.0.0.1:0".parse().unwrap(), server, LinkConfig::symmetric(rtt)).await?;
//! // clients dial `addr`; later, partition the link:
//! wan.set("lon-dfw", LinkConfig::symmetric(rtt).with_state(LinkState::Cut))?;
//! # Ok(()) }
//! ```
//!
//! # How it works
//! - A link's accept loop spawns one task per connection. That task waits while the
//!   link is cut, dials the target, then runs both directions as futures of the same
//!   task (no thread, and no extra task, per connection).
//! - Each direction has a reader and a writer joined by a queue. The reader reads up to
//!   64 KiB, stamps the chunk `due = max(previous due, now + delay + uniform(0, jitter))`
//!   (so jitter never reorders), and pauses while 4 MiB are queued. The writer waits
//!   until `due`, and while the link is cut, then writes. EOF is forwarded as a
//!   half-close at its due time; an error on either side resets both.
//! - The configuration sits in a `watch` channel: a change applies to data read after
//!   it; a cut holds data (in order, then delivered one delay after the heal); a reset
//!   closes every connection with an RST (SO_LINGER 0) and resets new ones until the
//!   link is up again. Dropping a [`Link`] closes the channel, which stops everything.
//! - Delays run on one precise timer thread shared by the process ([`timer`]), because
//!   tokio timers round up to whole milliseconds; zero delays skip it.
//!
//! # Layout
//! - `LinkConfig` and `LinkState` (serde as milliseconds) are the wire
//!   protocol's, [`geolb_proto::wan`], re-exported here.
//! - [`link`]: `Link`, one listener and its connections; `LinkStats`.
//! - [`emulator`]: `Emulator`, links by name.
//! - [`timer`]: `sleep_until`, the precise timer.
//! - [`anycast`]: `Router`, one address served from every region (BGP or an edge proxy).
//! - [`check`]: the NATS health check and its up/down thresholds.
//! - `conn`, `pipe`: one connection, one direction.

pub mod anycast;
pub mod check;
mod conn;
pub mod emulator;
pub mod link;
mod pipe;
pub mod timer;

use std::net::SocketAddr;

pub use emulator::{Emulator, LinkInfo};
pub use geolb_proto::wan::{LinkConfig, LinkState};
pub use link::{Link, LinkStats};
pub use timer::sleep_until;

/// Errors of the emulator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address is taken or not local.
    #[error("cannot listen on {addr}: {source}; choose another address or port 0")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why it failed.
        source: std::io::Error,
    },
    /// No link has this name.
    #[error("no link named {0:?}; see Emulator::names()")]
    Unknown(String),
    /// A link with this name exists already.
    #[error("a link named {0:?} exists already; remove it first")]
    Duplicate(String),
    /// No site of the anycast router is in this region.
    #[error("no anycast site in region {0:?}; `state` lists the sites")]
    UnknownRegion(String),
    /// The anycast router's configuration cannot run.
    #[error("anycast configuration: {0}")]
    Config(String),
}
