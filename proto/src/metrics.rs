//! Metrics an agent publishes: its child's and the host's CPU and memory
//! and, for a server, the useful fields of the monitoring endpoints.

use crate::status::Role;
use serde::{Deserialize, Serialize};

/// CPU and memory of one process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessMetrics {
    /// Replica index, or `None` for the agent itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<u32>,
    /// Process id.
    pub pid: u32,
    /// CPU use in percent of one core.
    pub cpu_pct: f32,
    /// Resident memory in bytes.
    pub rss_bytes: u64,
}

/// CPU and memory of the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostMetrics {
    /// CPU use over all cores, in percent.
    pub cpu_pct: f32,
    /// Number of logical CPUs.
    pub cpus: u32,
    /// Memory in use, bytes.
    pub mem_used_bytes: u64,
    /// Total memory, bytes.
    pub mem_total_bytes: u64,
    /// One-minute load average.
    pub load1: f64,
}

/// One gateway as `/gatewayz` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayMetric {
    /// Remote gateway (region cluster) name.
    pub name: String,
    /// Whether the outbound connection is up.
    pub outbound: bool,
    /// Number of inbound connections from it.
    pub inbound: u32,
}

/// The useful fields of a nats-server's `/varz`, `/routez`, `/gatewayz` and `/healthz`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ServerMetrics {
    /// `/healthz` answered 200.
    pub healthy: bool,
    /// `/healthz` HTTP status (0 when unreachable).
    pub healthz_status: u16,
    /// Why the monitor could not be read, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// nats-server version.
    #[serde(default)]
    pub version: String,
    /// Server id.
    #[serde(default)]
    pub server_id: String,
    /// Server name.
    #[serde(default)]
    pub server_name: String,
    /// Cluster name.
    #[serde(default)]
    pub cluster: String,
    /// Current client connections.
    #[serde(default)]
    pub connections: u64,
    /// Messages in.
    #[serde(default)]
    pub in_msgs: u64,
    /// Messages out.
    #[serde(default)]
    pub out_msgs: u64,
    /// Bytes in.
    #[serde(default)]
    pub in_bytes: u64,
    /// Bytes out.
    #[serde(default)]
    pub out_bytes: u64,
    /// Slow consumers seen.
    #[serde(default)]
    pub slow_consumers: u64,
    /// Subscriptions.
    #[serde(default)]
    pub subscriptions: u64,
    /// Distinct route peers connected (a pooled peer counts once).
    #[serde(default)]
    pub routes: u32,
    /// Route peers the configuration names (from `/varz` cluster urls).
    #[serde(default)]
    pub routes_configured: u32,
    /// Gateway name of this server's cluster.
    #[serde(default)]
    pub gateway_name: String,
    /// Remote gateways.
    #[serde(default)]
    pub gateways: Vec<GatewayMetric>,
    /// Server RSS as it reports it.
    #[serde(default)]
    pub mem_bytes: u64,
    /// Server CPU as it reports it.
    #[serde(default)]
    pub cpu_pct: f64,
}

/// Published every interval on `geolb.metrics.<region>.<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Protocol version.
    #[serde(default = "crate::default_version")]
    pub v: u32,
    /// When they were taken (ms since epoch).
    pub at_ms: u64,
    /// Agent id.
    pub agent: String,
    /// Agent region.
    pub region: String,
    /// Agent role.
    pub role: Role,
    /// The host.
    pub host: HostMetrics,
    /// The agent process.
    pub agent_process: Option<ProcessMetrics>,
    /// Each running replica.
    pub children: Vec<ProcessMetrics>,
    /// For a server, its monitoring endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerMetrics>,
    /// For a client, what the client last reported (free form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<serde_json::Value>,
}
