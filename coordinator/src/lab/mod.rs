//! The lab: a control plane, a super-cluster and clients on one machine,
//! with emulated WAN latency, started and stopped by `geolb lab`.

pub mod cli;
pub mod config;
pub mod dashboard;
pub mod docker;
pub mod down;
pub mod latency;
pub mod launch;
pub mod process;
pub mod ready;
pub mod routing;
pub mod routing_config;
pub mod routing_up;
pub mod state;
pub mod status;
pub mod topology;
pub mod up;
