//! `geolb-testkit`: what the tests of every crate share (the agent's, the
//! WAN emulator's and `geolb-tests`): free 127.0.0.1 ports, real
//! `nats-server` processes killed on `Drop`, guards for spawned processes,
//! and polling helpers instead of sleeps.
//!
//! ```no_run
//! use geolb_testkit::{default_version, NatsServer, ServerConfig};
//! let server = NatsServer::start(default_version(), ServerConfig::default());
//! let url = server.client_url();
//! ```
//!
//! # Layout
//! - [`tools`]: paths of the pinned nats-server binaries (`make tools`) and of our binaries.
//! - [`ports`]: `free_port`, never the same port twice in one process, never a lab's.
//! - [`wait`]: `wait_for` (poll with backoff), its blocking twin, and `with_timeout`.
//! - [`http`]: a tiny HTTP/1.0 GET for the monitoring endpoints.
//! - [`config`]: `ServerConfig`, rendered to nats-server config text.
//! - [`server`]: `NatsServer`, one process in its own temp folder.
//! - [`process`]: `ProcessGuard`, kills a spawned process tree on `Drop`.

pub mod config;
pub mod http;
pub mod ports;
pub mod process;
pub mod server;
pub mod tools;
pub mod wait;

pub use config::ServerConfig;
pub use ports::{free_addr, free_port};
pub use process::ProcessGuard;
pub use server::NatsServer;
pub use tools::{default_version, nats_server_bin, upgrade_version};
pub use wait::{wait_for, wait_for_blocking, with_timeout};
