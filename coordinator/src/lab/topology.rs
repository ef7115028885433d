//! The lab's plan, computed from its configuration alone: every port,
//! every server's nats-server configuration, every emulator link, and the
//! client agents. Pure, so it is tested without starting anything.
//!
//! Paths through the WAN emulator:
//! - gateways: servers of region R dial region R' only through the links
//!   `gw:R->R'/j` (one per server j of R'), delayed by the R-R' round trip;
//!   nats-server adds every gateway URL it hears of to its dial list, in two
//!   ways: a server's own address, so every server advertises the dead
//!   address `127.0.0.1:1` (a refused URL is skipped at once); and the URLs a
//!   server has configured for third regions (dfw would learn lon's
//!   `gw:lon->ams` links and reach ams at 8 ms instead of 115). Gossip carries
//!   `host:port` only, and a server dialling a URL without credentials
//!   presents its own, so each region's gateways require a user and password
//!   of their own, carried only by the configured URLs: a gossiped link is
//!   refused at CONNECT and the server tries another;
//! - clients: a client living in region C reaches server S only through
//!   `cl:C->S`, delayed by the C-region(S) round trip.
//!
//! Routes inside a region go direct (`no_advertise`, so clients learn no
//! server addresses either).
//!
//! The same plan serves both placements: processes on loopback (every
//! listener on its own 127.0.0.1 port) and containers (`lab up --docker`:
//! each server on the standard ports of its own container, reached by its
//! name on its region's network; the emulator container is `wan` on every
//! region's network and listens on all interfaces).

use super::config::LabConfig;
use geolb_proto::wan::{Carries, LinkConfig, LinkPath, LinkSpec};
use std::collections::BTreeMap;
use std::path::Path;

/// The dead address every server advertises for its gateway.
pub const DEAD_GATEWAY_ADVERTISE: &str = "127.0.0.1:1";

/// Where the lab's processes run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// Processes on this machine, on 127.0.0.1.
    #[default]
    Processes,
    /// Containers of the local Docker engine, one network per region.
    Containers,
}

impl Placement {
    /// The address listeners bind: loopback for processes, every interface
    /// of its own container for containers.
    pub fn bind(self) -> &'static str {
        match self {
            Placement::Processes => "127.0.0.1",
            Placement::Containers => "0.0.0.0",
        }
    }
}

/// The emulator's name on every region's network (containers only).
pub const WAN_HOST: &str = "wan";
/// The control plane's name on the control network (containers only).
pub const CONTROL_HOST: &str = "control";

/// One nats-server of the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerPlan {
    /// Agent and server name, e.g. `lon-1`.
    pub id: String,
    /// The host its peers dial: 127.0.0.1, or its container's name.
    pub host: String,
    /// Region (cluster and gateway name).
    pub region: String,
    /// Client port.
    pub client_port: u16,
    /// Monitoring port.
    pub http_port: u16,
    /// Route port.
    pub route_port: u16,
    /// Gateway port.
    pub gateway_port: u16,
}

/// One client agent: `replicas` clients of one strategy in one region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientGroup {
    /// Agent id, e.g. `lon-rtt`; its clients are `lon-rtt-0`, `lon-rtt-1`, ...
    pub agent_id: String,
    /// Where the clients live.
    pub region: String,
    /// rtt, random or ordered.
    pub strategy: String,
    /// How many clients.
    pub replicas: u32,
    /// Clients in one process (`client --count`); `replicas` is a multiple of it.
    pub per_process: u32,
    /// The strategy's own client arguments (`dns`: `--target` and
    /// `--resolver`, maybe `--dns-keep-stale`; `anycast`: `--target`);
    /// empty for rtt, random and ordered, which get every server instead.
    pub args: Vec<String>,
}

/// Everything the lab starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// Processes or containers.
    pub placement: Placement,
    /// Control-plane client port.
    pub control_port: u16,
    /// Control-plane monitoring port.
    pub control_http_port: u16,
    /// The servers, region by region.
    pub servers: Vec<ServerPlan>,
    /// The emulator's links.
    pub links: Vec<LinkSpec>,
    /// The client agents.
    pub clients: Vec<ClientGroup>,
    /// The GeoDNS and the anycast router, when the lab has their clients.
    pub routing: super::routing::RoutingPlan,
}

impl Topology {
    /// The emulators and the links each serves: in containers one, `wan`
    /// (the name on every region network); as processes one per region of
    /// the diallers, `wan-<region>`, so that no emulator holds more
    /// connections than one process may open (each is two descriptors there).
    pub fn emulators(&self) -> Vec<(String, Vec<LinkSpec>)> {
        if self.placement == Placement::Containers {
            return vec![(WAN_HOST.to_string(), self.links.clone())];
        }
        let mut by_region: BTreeMap<String, Vec<LinkSpec>> = BTreeMap::new();
        for link in &self.links {
            let from = link.path.as_ref().and_then(|p| p.from.clone());
            let id = format!("{WAN_HOST}-{}", from.as_deref().unwrap_or("any"));
            by_region.entry(id).or_default().push(link.clone());
        }
        by_region.into_iter().collect()
    }

    /// Plans the lab of `config` (which must be valid) as processes.
    pub fn plan(config: &LabConfig) -> Topology {
        Topology::plan_for(config, Placement::Processes)
    }

    /// Plans the lab of `config` for `placement`, its ports one after
    /// another from `ports_base`.
    pub fn plan_for(config: &LabConfig, placement: Placement) -> Topology {
        let mut next = config.ports_base;
        Topology::plan_with(config, placement, || {
            let p = next;
            next += 1;
            p
        })
    }

    /// Plans the lab of `config` for `placement`, each port from `port`
    /// (a test's fixture takes free ports instead of a range).
    pub fn plan_with(
        config: &LabConfig,
        placement: Placement,
        mut port: impl FnMut() -> u16,
    ) -> Topology {
        let (control_port, control_http_port) = (port(), port());
        let mut servers = Vec::new();
        for region in &config.regions {
            for i in 1..=config.servers_per_region {
                let id = format!("{region}-{i}");
                servers.push(match placement {
                    Placement::Processes => ServerPlan {
                        host: "127.0.0.1".into(),
                        client_port: port(),
                        http_port: port(),
                        route_port: port(),
                        gateway_port: port(),
                        id,
                        region: region.clone(),
                    },
                    Placement::Containers => ServerPlan {
                        host: id.clone(),
                        client_port: 4222,
                        http_port: 8222,
                        route_port: 6222,
                        gateway_port: 7222,
                        id,
                        region: region.clone(),
                    },
                });
            }
        }
        let mut links = Vec::new();
        for from in &config.regions {
            for to in servers.iter().filter(|s| &s.region != from) {
                // Index of `to` within its region, from 0.
                let index = to
                    .id
                    .rsplit('-')
                    .next()
                    .and_then(|n| n.parse::<u32>().ok())
                    .unwrap_or(1)
                    - 1;
                let name = format!("gw:{from}->{}/{index}", to.region);
                links.push(link(
                    placement,
                    name,
                    port(),
                    (&to.host, to.gateway_port),
                    config.rtt(from, &to.region),
                    path(Carries::Gateway, from, to),
                ));
            }
        }
        for from in &config.regions {
            for to in &servers {
                links.push(link(
                    placement,
                    format!("cl:{from}->{}", to.id),
                    port(),
                    (&to.host, to.client_port),
                    config.rtt(from, &to.region),
                    path(Carries::Client, from, to),
                ));
            }
        }
        let clients = config
            .regions
            .iter()
            .flat_map(|region| {
                let c = &config.clients;
                [("rtt", c.rtt), ("random", c.random), ("ordered", c.ordered)]
                    .into_iter()
                    .filter(|(_, n)| *n > 0)
                    .map(move |(strategy, replicas)| ClientGroup {
                        agent_id: format!("{region}-{strategy}"),
                        region: region.clone(),
                        strategy: strategy.to_string(),
                        replicas,
                        per_process: c.per_process.min(replicas),
                        args: Vec::new(),
                    })
            })
            .collect::<Vec<_>>();
        let routing = super::routing::plan(config, placement, &servers, &mut links, &mut port);
        let mut clients = clients;
        clients.extend(super::routing::client_groups(config, &routing));
        Topology {
            placement,
            control_port,
            control_http_port,
            servers,
            links,
            clients,
            routing,
        }
    }

    /// The address that dials a link: its listen address, or for
    /// containers the emulator's name and the link's port.
    pub fn link_addr(&self, name: &str) -> Option<String> {
        let listen = &self.links.iter().find(|l| l.name == name)?.listen;
        match self.placement {
            Placement::Processes => Some(listen.clone()),
            Placement::Containers => {
                let port = listen.rsplit(':').next()?;
                Some(format!("{WAN_HOST}:{port}"))
            }
        }
    }

    /// `--server REGION=URL` values for a client living in `region`: every
    /// server, through the emulator.
    pub fn client_servers(&self, region: &str) -> Vec<String> {
        self.servers
            .iter()
            .filter_map(|s| {
                let addr = self.link_addr(&format!("cl:{region}->{}", s.id))?;
                Some(format!("{}=nats://{addr}", s.region))
            })
            .collect()
    }

    /// Link patterns that cut `region` off: every path to its servers
    /// (clients of every region, gateways from other regions) and its own
    /// gateways out. Its clients can still reach other regions.
    pub fn partition_links(&self, region: &str) -> Vec<String> {
        vec![
            format!("gw:{region}->*"),
            format!("gw:*->{region}/"),
            format!("cl:*->{region}-"),
            format!("dns:*->{region}-"),
        ]
        .into_iter()
        .flat_map(|pattern| self.matching(&pattern))
        .collect()
    }

    fn matching(&self, pattern: &str) -> Vec<String> {
        let (head, tail) = pattern.split_once('*').unwrap_or((pattern, ""));
        self.links
            .iter()
            .filter(|l| l.name.starts_with(head) && (tail.is_empty() || l.name.contains(tail)))
            .map(|l| l.name.clone())
            .collect()
    }

    /// The nats-server configuration of `server`; `secret` makes the
    /// gateway passwords of this lab.
    pub fn server_config(
        &self,
        config: &LabConfig,
        server: &ServerPlan,
        store_dir: &Path,
        secret: &str,
    ) -> String {
        let routes: Vec<String> = self
            .servers
            .iter()
            .filter(|s| s.region == server.region && s.id != server.id)
            .map(|s| format!("\"nats-route://{}:{}\"", s.host, s.route_port))
            .collect();
        let gateways: Vec<String> = config
            .regions
            .iter()
            .filter(|r| **r != server.region)
            .map(|r| {
                let urls: Vec<String> = (0..config.servers_per_region)
                    .filter_map(|j| self.link_addr(&format!("gw:{}->{r}/{j}", server.region)))
                    .map(|addr| {
                        format!(
                            "\"nats://{}@{addr}\"",
                            gateway_credentials(r, secret).join(":")
                        )
                    })
                    .collect();
                format!("    {{ name: \"{r}\", urls: [{}] }}", urls.join(", "))
            })
            .collect();
        format!(
            r#"# Written by `geolb lab up`; do not edit: the next `lab up` rewrites it.
server_name: "{id}"
listen: "{bind}:{client}"
http: "{bind}:{http}"
lame_duck_duration: "30s"
lame_duck_grace_period: "1s"
jetstream {{
  store_dir: "{store}"
  max_memory_store: 64MB
  max_file_store: 256MB
}}
cluster {{
  name: "{region}"
  listen: "{bind}:{route}"
  no_advertise: true
  routes: [{routes}]
}}
gateway {{
  name: "{region}"
  listen: "{bind}:{gateway}"
  advertise: "{dead}"
  authorization {{ user: "{gw_user}", password: "{gw_password}" }}
  gateways: [
{gateways}
  ]
}}
"#,
            id = server.id,
            bind = self.placement.bind(),
            client = server.client_port,
            http = server.http_port,
            store = store_dir.display(),
            region = server.region,
            route = server.route_port,
            routes = routes.join(", "),
            gateway = server.gateway_port,
            dead = DEAD_GATEWAY_ADVERTISE,
            gateways = gateways.join(",\n"),
            gw_user = gateway_credentials(&server.region, secret)[0],
            gw_password = gateway_credentials(&server.region, secret)[1],
        )
    }
}

/// The user and password the gateways of `region` require.
pub fn gateway_credentials(region: &str, secret: &str) -> [String; 2] {
    [format!("gw-{region}"), format!("{secret}-{region}")]
}

fn link(
    placement: Placement,
    name: String,
    listen: u16,
    (host, port): (&str, u16),
    rtt: std::time::Duration,
    path: LinkPath,
) -> LinkSpec {
    LinkSpec {
        name,
        listen: format!("{}:{listen}", placement.bind()),
        target: format!("{host}:{port}"),
        config: LinkConfig::symmetric(rtt),
        path: Some(path),
    }
}

/// The path of a link from region `from` to `to`.
fn path(carries: Carries, from: &str, to: &ServerPlan) -> LinkPath {
    LinkPath {
        carries,
        from: Some(from.to_string()),
        to: to.region.clone(),
        server: Some(to.id.clone()),
    }
}

#[cfg(test)]
#[path = "topology_tests.rs"]
mod tests;
