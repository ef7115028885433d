//! Testkit for nats-geolb: real `nats-server` processes (single, cluster, super-cluster)
//! on free 127.0.0.1 ports, guards for the processes tests spawn, and polling helpers.
//!
//! Every server runs from a config file generated in its own temp folder, logs there,
//! and is SIGKILLed, reaped and deleted on `Drop` (the folder is kept, and its path
//! printed, when the test is panicking). Servers are set up synchronously: `start`
//! returns once `/healthz` answers 200 and routes and gateways have formed.
//!
//! ```no_run
//! use geolb_tests::{default_version, SuperCluster};
//! let sc = SuperCluster::start(&["lon", "ams"], 2, default_version());
//! let url = sc.region("lon").server(0).client_url();
//! ```
//!
//! # Layout
//! - [`tools`], [`ports`], [`wait`], [`http`], [`config`], [`server`] and
//!   [`process`] are the [`geolb_testkit`] crate's (binaries, free ports,
//!   polling, `ServerConfig`, `NatsServer`, `ProcessGuard`), re-exported
//!   here; the agent's and the WAN emulator's tests use that crate directly.
//! - [`lab_dir`]: `LabDir`, a `geolb lab` directory brought down on `Drop`.
//! - [`cluster`]: `Cluster`, servers joined by routes.
//! - [`supercluster`]: `SuperCluster`, clusters joined by gateways.
//! - [`browser`]: `Browser`, a headless Chromium through chromedriver (fantoccini), with screenshots.
//! - [`dashboard`]: `DashboardProc`, a `geolb dashboard` on a free port, and sample reports.
//! - [`agent`]: `geolb-agent run` around a server or command, and `geolb` runs.
//! - [`procfs`]: process state, children, zombies and leftovers, read from `/proc`.
//! - [`pki`]: `Pki`, a CA with server and client certificates (rcgen), for TLS tests.
//! - [`secure`]: `SecureControlPlane`, a least-privilege control plane (nkeys, signing key).
//! - [`objects`]: `geolb` as a control plane's coordinator, raw object puts, a corrupted chunk.
//! - [`docker`]: whether the engine and images are there (skip by name), `Cleanup` by label.
//! - [`dns`]: `DnsServer`, A and AAAA records a test changes at run time, per client if need be.
//! - [`netns`]: `Lan`, network namespaces on a bridge, each a host with an IPv6 address of its own.
//! - [`hand_fleet`]: `HandFleet`, a fleet started by hand (no `geolb lab`), optionally behind agents' front links.
//! - [`archive`]: `geolb archive` as a child, and the archive read back and checked.
//! - [`s3`]: `S3Server`, SeaweedFS's S3 gateway on loopback (skip by name, or fail under
//!   `GEOLB_REQUIRE_S3=1`), stopped and started again for outages.
//! - [`geo`]: `GeoLab`, a super-cluster behind the WAN emulator, with faults, and
//!   `ClientProc`, a headless client whose records are read as they come.

pub mod agent;
pub mod archive;
pub mod browser;
pub mod cluster;
pub mod dashboard;
pub mod dns;
pub mod docker;
pub mod geo;
pub mod hand_fleet;
pub mod lab_dir;
pub mod netns;
pub mod objects;
pub mod pki;
pub mod procfs;
pub mod s3;
pub mod secure;
pub mod supercluster;

pub use geolb_testkit::{config, http, ports, process, server, tools, wait};

pub use cluster::Cluster;
pub use config::ServerConfig;
pub use ports::free_port;
pub use process::ProcessGuard;
pub use server::NatsServer;
pub use supercluster::SuperCluster;
pub use tools::{
    agent_bin, default_version, geolb_bin, nats_server_bin, release_bin, upgrade_version,
};
pub use wait::{wait_for, with_timeout};
