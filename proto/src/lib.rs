//! The nats-geolb back-channel wire protocol, defined once and shared by
//! `geolb-agent` and `geolb`.
//!
//! Every record is JSON with a version field `v` ([`PROTOCOL_VERSION`]).
//!
//! # How it works
//! - Each agent registers as the NATS micro service [`subject::SERVICE_NAME`]
//!   with one endpoint per [`Verb`] on `geolb.agent.<id>.<verb>`.
//! - A request body is a [`Command`] (an id and the verb's arguments); the
//!   answer is a [`Reply`]: the command id, ok or a typed [`ReplyError`], and
//!   the agent's resulting [`AgentStatus`].
//! - Agents publish a [`Heartbeat`] on `geolb.hb.<region>.<id>`, an [`Event`]
//!   on `geolb.evt.<region>.<id>` for every state change, and [`Metrics`] on
//!   `geolb.metrics.<region>.<id>`.
//!
//! # Layout
//! - [`subject`]: subject builders and name validation.
//! - [`duration`]: durations on the wire (`"1500ms"`, `"2s"` or milliseconds).
//! - [`client`]: what headless clients report, and the report channel.
//! - [`command`]: commands, verbs and their arguments.
//! - [`reply`]: replies and typed errors.
//! - [`status`]: the agent's state, shared by replies and heartbeats.
//! - [`event`]: heartbeats and events.
//! - [`metrics`]: process, host and nats-server metrics.
//! - [`scenario`]: a running scenario's progress (`geolb.scenario.<run id>`).
//! - [`wan`]: link behaviour and the WAN emulator's commands.
//! - [`objects`]: the Object Store buckets of binaries and payload files, and object names.
//! - [`elf`]: whether a file is an executable for an architecture (its ELF header).
//! - [`routing`]: the GeoDNS and the anycast router: configuration, faults, state, changes.
//! - `signing` (feature `signing`, implied by `connect`): signed commands (ed25519 nkeys), the envelope and its checks.
//! - `connect` (feature `connect`): control-plane URL and auth flags, as async-nats options.
//! - `logging` (feature `connect`): `--log-format` and the tracing set-up of both binaries.

pub mod client;
pub mod command;
#[cfg(feature = "connect")]
pub mod connect;
pub mod duration;
pub mod elf;
pub mod event;
#[cfg(feature = "connect")]
pub mod logging;
pub mod metrics;
pub mod objects;
pub mod reply;
pub mod routing;
pub mod scenario;
#[cfg(feature = "signing")]
pub mod signing;
pub mod status;
pub mod subject;
pub mod wan;

pub use command::{
    Command, FlapArgs, FlapMode, Request, ScaleArgs, StopArgs, StopMode, UpgradeArgs, Verb,
    MAX_REPLICAS,
};
pub use duration::WireDuration;
pub use event::{Event, EventKind, Heartbeat, OutboxStats};
pub use metrics::{GatewayMetric, HostMetrics, Metrics, ProcessMetrics, ServerMetrics};
pub use reply::{ErrorKind, Reply, ReplyError};
pub use status::{AgentStatus, ChildState, ExitInfo, FlapPhase, FlapStatus, ReplicaStatus, Role};

/// Version of every record on the wire; bumped on an incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// The nats-server version a lab, an image and the tests run unless told
/// otherwise; `make tools` installs it (the Makefile and the image build
/// read it from this line).
pub const DEFAULT_NATS_VERSION: &str = "2.12.8";

/// Milliseconds since the Unix epoch, the timestamp unit of every record.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Default value of the `v` field when a sender omitted it.
fn default_version() -> u32 {
    PROTOCOL_VERSION
}
