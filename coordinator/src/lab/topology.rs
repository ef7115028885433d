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

use super::config::LabConfig;
use geolb_proto::wan::{LinkConfig, LinkSpec};
use std::path::Path;

/// The dead address every server advertises for its gateway.
pub const DEAD_GATEWAY_ADVERTISE: &str = "127.0.0.1:1";

/// One nats-server of the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerPlan {
    /// Agent and server name, e.g. `lon-1`.
    pub id: String,
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
    /// How many.
    pub replicas: u32,
}

/// Everything the lab starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
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
}

impl Topology {
    /// Plans the lab of `config` (which must be valid).
    pub fn plan(config: &LabConfig) -> Topology {
        let mut next = config.ports_base;
        let mut port = || {
            let p = next;
            next += 1;
            p
        };
        let (control_port, control_http_port) = (port(), port());
        let mut servers = Vec::new();
        for region in &config.regions {
            for i in 1..=config.servers_per_region {
                servers.push(ServerPlan {
                    id: format!("{region}-{i}"),
                    region: region.clone(),
                    client_port: port(),
                    http_port: port(),
                    route_port: port(),
                    gateway_port: port(),
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
                    name,
                    port(),
                    to.gateway_port,
                    config.rtt(from, &to.region),
                ));
            }
        }
        for from in &config.regions {
            for to in &servers {
                links.push(link(
                    format!("cl:{from}->{}", to.id),
                    port(),
                    to.client_port,
                    config.rtt(from, &to.region),
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
                    })
            })
            .collect();
        Topology {
            control_port,
            control_http_port,
            servers,
            links,
            clients,
        }
    }

    /// The listen address of a link.
    pub fn link_addr(&self, name: &str) -> Option<&str> {
        self.links
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.listen.as_str())
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
            .map(|s| format!("\"nats-route://127.0.0.1:{}\"", s.route_port))
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
listen: "127.0.0.1:{client}"
http: "127.0.0.1:{http}"
lame_duck_duration: "30s"
lame_duck_grace_period: "1s"
jetstream {{
  store_dir: "{store}"
  max_memory_store: 64MB
  max_file_store: 256MB
}}
cluster {{
  name: "{region}"
  listen: "127.0.0.1:{route}"
  no_advertise: true
  routes: [{routes}]
}}
gateway {{
  name: "{region}"
  listen: "127.0.0.1:{gateway}"
  advertise: "{dead}"
  authorization {{ user: "{gw_user}", password: "{gw_password}" }}
  gateways: [
{gateways}
  ]
}}
"#,
            id = server.id,
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

fn link(name: String, listen: u16, target: u16, rtt: std::time::Duration) -> LinkSpec {
    LinkSpec {
        name,
        listen: format!("127.0.0.1:{listen}"),
        target: format!("127.0.0.1:{target}"),
        config: LinkConfig::symmetric(rtt),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::time::Duration;

    #[test]
    fn plans_the_default_lab() {
        let config = LabConfig::default();
        let t = Topology::plan(&config);
        assert_eq!(t.servers.len(), 9);
        assert_eq!(
            t.links.len(),
            3 * 6 + 3 * 9,
            "gateway links, then client links"
        );
        let mut ports: Vec<u16> = vec![t.control_port, t.control_http_port];
        for s in &t.servers {
            ports.extend([s.client_port, s.http_port, s.route_port, s.gateway_port]);
        }
        ports.extend(
            t.links
                .iter()
                .map(|l| l.listen.rsplit(':').next().unwrap().parse::<u16>().unwrap()),
        );
        assert_eq!(ports.len(), config.ports_needed());
        assert_eq!(
            ports.iter().collect::<HashSet<_>>().len(),
            ports.len(),
            "no port twice"
        );

        let lon_ams = t.links.iter().find(|l| l.name == "gw:lon->ams/0").unwrap();
        assert_eq!(lon_ams.config.rtt(), Duration::from_millis(8));
        let ams1 = t.servers.iter().find(|s| s.id == "ams-1").unwrap();
        assert_eq!(lon_ams.target, format!("127.0.0.1:{}", ams1.gateway_port));
        let cl = t.links.iter().find(|l| l.name == "cl:dfw->lon-2").unwrap();
        assert_eq!(cl.config.rtt(), Duration::from_millis(105));
        assert_eq!(t.client_servers("ams").len(), 9);
        assert_eq!(
            t.clients
                .iter()
                .map(|c| c.agent_id.as_str())
                .collect::<Vec<_>>(),
            [
                "lon-rtt",
                "lon-random",
                "ams-rtt",
                "ams-random",
                "dfw-rtt",
                "dfw-random"
            ]
        );
    }

    #[test]
    fn partition_cuts_every_path_to_the_region() {
        let t = Topology::plan(&LabConfig::default());
        let cut = t.partition_links("lon");
        assert!(cut.contains(&"gw:lon->ams/0".to_string()));
        assert!(cut.contains(&"gw:dfw->lon/2".to_string()));
        assert!(cut.contains(&"cl:ams->lon-3".to_string()));
        assert!(cut.contains(&"cl:lon->lon-1".to_string()));
        assert!(
            !cut.contains(&"cl:lon->ams-1".to_string()),
            "lon's clients can still leave"
        );
        assert!(!cut.contains(&"gw:ams->dfw/0".to_string()));
        assert_eq!(cut.len(), 6 + 6 + 9);
    }

    #[test]
    fn server_config_goes_through_the_emulator() {
        let config = LabConfig::default();
        let t = Topology::plan(&config);
        let text = t.server_config(&config, &t.servers[0], Path::new("/tmp/js"), "s3");
        assert!(text.contains("advertise: \"127.0.0.1:1\""));
        assert!(
            text.contains("authorization { user: \"gw-lon\", password: \"s3-lon\" }"),
            "{text}"
        );
        assert!(text.contains("no_advertise: true"));
        let via = t.link_addr("gw:lon->dfw/1").unwrap();
        assert!(
            text.contains(&format!("nats://gw-dfw:s3-dfw@{via}")),
            "{text}"
        );
        assert_eq!(text.matches("nats-route://").count(), 2);
    }
}
