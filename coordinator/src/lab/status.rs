//! `geolb lab status [--json]`: the control-plane URL, every server (id,
//! region, client URL, monitoring URL, version, healthy) and every client
//! (id, region, strategy, current server and region), from the back
//! channel, so other NATS tools can be pointed at the lab.

use super::state::LabState;
use super::topology::Topology;
use crate::control::Control;
use futures::StreamExt;
use geolb_proto::client::ClientRecord;
use geolb_proto::{subject, Metrics};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// One server of the lab.
#[derive(Debug, Clone, Serialize)]
pub struct ServerRow {
    /// Agent and server name.
    pub id: String,
    /// Region.
    pub region: String,
    /// Direct client URL (not through the emulator).
    pub client_url: String,
    /// Monitoring URL.
    pub monitor_url: String,
    /// nats-server version, when known.
    pub version: Option<String>,
    /// `/healthz` answered 200 in its last metrics.
    pub healthy: bool,
}

/// One client of the lab.
#[derive(Debug, Clone, Serialize)]
pub struct ClientRow {
    /// Client id.
    pub id: String,
    /// Where it lives.
    pub region: String,
    /// rtt, random or ordered.
    pub strategy: String,
    /// The server it is on.
    pub server: Option<String>,
    /// That server's region.
    pub server_region: Option<String>,
}

/// The whole status.
#[derive(Debug, Clone, Serialize)]
pub struct LabStatus {
    /// Lab directory.
    pub dir: String,
    /// Control-plane URL.
    pub control_url: String,
    /// The lab's dashboard, if it runs one.
    pub dashboard_url: Option<String>,
    /// Whether `lab up` finished.
    pub ready: bool,
    /// Processes alive / started.
    pub processes: String,
    /// The servers.
    pub servers: Vec<ServerRow>,
    /// The clients.
    pub clients: Vec<ClientRow>,
    /// The control plane's identities and their seed files, so other NATS
    /// tools can connect as any of them (`nats --nkey FILE`).
    pub identities: Vec<super::state::LabIdentity>,
    /// The GeoDNS: the name clients resolve and each region's listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsRow>,
    /// The anycast router: its mode and every vantage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anycast: Option<AnycastRow>,
}

/// The lab's GeoDNS.
#[derive(Debug, Clone, Serialize)]
pub struct DnsRow {
    /// Its id on the control plane (`geolb.dns.<id>.state`).
    pub id: String,
    /// The name clients resolve.
    pub name: String,
    /// The port of every answer.
    pub port: u16,
    /// The URL `dns` clients are given.
    pub target: String,
    /// The TTL of its answers, in seconds.
    pub ttl_s: u32,
    /// Its policy.
    pub policy: String,
    /// Each region's listener (UDP and TCP): `--resolver` for that region's clients.
    pub listeners: Vec<geolb_proto::routing::dns::DnsListener>,
}

/// The lab's anycast router.
#[derive(Debug, Clone, Serialize)]
pub struct AnycastRow {
    /// Its id on the control plane (`geolb.anycast.<id>.state`).
    pub id: String,
    /// bgp or proxy.
    pub mode: String,
    /// Each vantage: the address its region's `anycast` clients dial.
    pub vantages: Vec<geolb_proto::routing::anycast::Vantage>,
}

/// How long status listens to metrics and client reports (both every second).
const LISTEN: Duration = Duration::from_millis(1500);

/// Reads the lab's status from its control plane.
pub async fn status(state: &LabState, control: &Control) -> anyhow::Result<LabStatus> {
    let t = Topology::plan_for(&state.config, state.backend.placement());
    let mut metrics = control.client().subscribe(subject::METRICS_ALL).await?;
    let mut reports = control.client().subscribe(subject::CLIENTS_ALL).await?;
    let mut servers: BTreeMap<String, (Option<String>, bool)> = BTreeMap::new();
    let mut clients: BTreeMap<String, ClientRow> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + LISTEN;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            Some(m) = metrics.next() => {
                if let Ok(Metrics { agent, server: Some(s), .. }) = serde_json::from_slice(&m.payload) {
                    servers.insert(agent, (Some(s.version).filter(|v| !v.is_empty()), s.healthy));
                }
            }
            Some(m) = reports.next() => {
                if let Ok(ClientRecord::Status(s)) = ClientRecord::decode(&m.payload) {
                    clients.insert(s.client.clone(), ClientRow {
                        id: s.client, region: s.region, strategy: s.strategy,
                        server: s.server.as_ref().map(|r| r.name.clone()),
                        server_region: s.server.map(|r| r.region),
                    });
                }
            }
        }
    }
    Ok(LabStatus {
        dir: state.dir.display().to_string(),
        control_url: state.control_url.clone(),
        dashboard_url: state.dashboard_url.clone(),
        ready: state.ready,
        processes: format!("{}/{}", state.running().await?, state.started()),
        servers: t
            .servers
            .iter()
            .map(|s| {
                let (version, healthy) = servers.get(&s.id).cloned().unwrap_or((None, false));
                ServerRow {
                    id: s.id.clone(),
                    region: s.region.clone(),
                    client_url: format!("nats://{}:{}", s.host, s.client_port),
                    monitor_url: format!("http://{}:{}", s.host, s.http_port),
                    version,
                    healthy,
                }
            })
            .collect(),
        clients: clients.into_values().collect(),
        identities: state.identities.clone(),
        dns: t.routing.dns.as_ref().map(|d| DnsRow {
            id: super::routing_up::DNS_ID.into(),
            name: d.config.name.clone(),
            port: d.port,
            target: d.target(),
            ttl_s: d.config.ttl_s,
            policy: d.config.policy.to_string(),
            listeners: d.config.listeners.clone(),
        }),
        anycast: t.routing.anycast.as_ref().map(|a| AnycastRow {
            id: super::routing_up::ANYCAST_ID.into(),
            mode: a.mode.to_string(),
            vantages: a.vantages.clone(),
        }),
    })
}
