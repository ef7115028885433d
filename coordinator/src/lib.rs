//! `geolb`, the nats-geolb coordinator: it sees the fleet of agents through
//! their heartbeats and drives them with commands, all over the control plane.
//!
//! # How it works
//! - [`control::Control`] is one NATS connection to the control plane;
//!   [`Control::request`] sends a [`geolb_proto::Command`] to
//!   `geolb.agent.<id>.<verb>`, the endpoint of the agent's `geolb-agent`
//!   micro service, and decodes its [`geolb_proto::Reply`].
//! - [`fleet::list`] reads every agent's last heartbeat from the JetStream
//!   stream `GEOLB_HEARTBEATS` (created when missing) and classifies it
//!   `live`, `stale` or `lost` by its age ([`liveness`]).
//! - [`cmd::fan_out`] sends one request to many agents at once; a
//!   [`selector::Selector`] names them.
//! - [`watch`] follows the agents' events.
//!
//! # Layout
//! - [`cli`]: the command line and the dispatch to one module per subcommand.
//! - [`control`]: connection and the command request path (commands signed with `--signing-key`).
//! - [`control_plane`]: the least-privilege layout (nkeys, permissions) and `control-plane init`.
//! - [`fleet`]: `fleet ls`, the heartbeat stream and the listing.
//! - [`liveness`]: live, stale or lost, from a heartbeat's age (pure).
//! - [`selector`]: `SELECTOR`: an id, `region=R`, `role=R` or `all` (pure).
//! - [`cmd`]: `cmd VERB SELECTOR`, its flags, the fan-out and its output.
//! - [`watch`]: `watch`, the event stream.
//! - [`live`]: the fleet followed live from the control plane (agents, server health, clients).
//! - [`geography`]: region-to-region round trips as the clients measure them (pure).
//! - [`links`]: link controls registered on the control plane (emulators, agents' front links).
//! - [`scenario`]: `scenario run`, the four failure scenarios on any fleet.
//! - [`report`]: scenario reports, their history in JetStream, `report ls|show|summary`.
//! - [`lab`]: the local lab (processes or containers): `lab init|up|status|down`.
//! - [`dashboard`]: `geolb dashboard`, the fleet and the runs in a browser (axum, SSE, SVG).
//! - [`fly`]: `fly scale` and `fly deploy`, the one place that builds flyctl command lines.
//! - [`objects`]: `binary` and `data`, files kept in the control plane's Object Store buckets.
//! - [`archive`]: `archive` and `report export`: telemetry and reports to S3.
//! - [`table`]: aligned text columns (pure).

pub mod archive;
pub mod cli;
pub mod cmd;
pub mod control;
pub mod control_plane;
pub mod dashboard;
pub mod fleet;
pub mod fly;
pub mod geography;
pub mod lab;
pub mod links;
pub mod live;
pub mod liveness;
pub mod objects;
pub mod report;
pub mod scenario;
pub mod selector;
pub mod table;
pub mod watch;

pub use control::{Control, ControlError, RequestFailure};

use std::io::Write;

/// Bad command-line input found before anything was sent (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Writes `text` to stdout and flushes, returning an error (not panicking) on a closed pipe.
pub fn emit(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}
