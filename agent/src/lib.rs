//! `geolb-agent`: the sidecar that supervises a nats-server or a test client
//! and obeys the back channel on the control-plane NATS.
//!
//! # How it works
//! `run` starts the [`supervisor`] actor around the child, forwards OS
//! signals to it, and (given `--control`) registers the agent as the NATS
//! micro service `geolb-agent` whose endpoints are the verbs in
//! [`commands`]. Events wait in a bounded outbox while the control plane is
//! away; heartbeats and metrics go out every interval.
//!
//! # Layout
//! - [`cli`]: flags (each with a `GEOLB_*` variable).
//! - [`run`]: wiring and the exit code.
//! - [`supervisor`]: the actor owning the child processes (spawn, reap,
//!   restart, stop modes, flap, scale).
//! - [`drain`]: the lame-duck drain policy of both, one pure step function.
//! - [`container`]: `run --container`, a sibling container driven through
//!   the Docker API with the same verbs and events.
//! - [`target`]: the process or container behind one set of verbs.
//! - [`signals`]: OS signals as one enum.
//! - [`commands`]: one function per verb, and the dispatch of admitted requests.
//! - [`admission`]: what a request passes first: decoding, signature checks
//!   (`--trust`), the rate limit and in-flight cap, the memory of command ids.
//! - [`control`]: connection, micro service, outbox, heartbeats, metrics.
//! - [`monitor`]: the nats-server monitoring endpoints.
//! - [`binaries`]: finding installed nats-server versions.
//! - [`objects`]: binaries and payloads fetched from the control plane's Object Store.
//! - [`identity`]: id, region, role, host.
//! - [`wan`]: `geolb-agent wan`, the WAN emulator process.
//! - [`links`]: the `geolb-wan` service over a set of links (the emulator's, the agent's front links).
//! - [`front`]: `run --front`, the child's listeners behind the agent's own links.
//! - `client` is the `geolb-client` crate (`geolb-agent client`, the headless NATS test client).
//! - [`fly`]: `geolb-agent fly-server`, nats-server configured from Fly.io's private DNS.
//! - [`prometheus`]: `--prometheus-listen`, the agent's figures as Prometheus text.
//! - [`geodns`]: `geolb-agent geodns`, the lab's GeoDNS process.
//! - [`anycast`]: `geolb-agent anycast`, the lab's anycast router process.
//! - [`routing`]: what those two share (config file, service, published changes).

pub mod admission;
pub mod anycast;
pub mod binaries;
pub mod cli;
pub mod commands;
#[cfg(feature = "docker")]
pub mod container;
pub mod control;
pub mod drain;
pub mod fly;
pub mod front;
pub mod geodns;
pub mod identity;
pub mod links;
pub mod monitor;
pub mod objects;
pub mod prometheus;
pub mod routing;
pub mod run;
pub mod signals;
pub mod supervisor;
pub mod target;
pub mod wan;
