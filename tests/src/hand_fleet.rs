//! `HandFleet`: a fleet started by hand, the way an operator runs one on
//! their own hosts, with nothing of `geolb lab`: a control plane, servers
//! under agents (routes within a region, gateways between regions), `rtt`
//! clients under agents, and the geography from WAN links the test owns and
//! never registers on the control plane. With `front`, every server's
//! agent puts its client and gateway listeners behind its own links
//! (`geolb-agent run --front`), the only link control a scenario then has.
//!
//! ```text
//! clients of R ──cl:R->S (test's emulator, RTT R-region(S))──► front:S:client ──► S client port
//! server of R ──gw:R->R'/j (test's emulator)──► front:R'j:gateway ──► R'j gateway port
//! ```
//!
//! Every process is killed on `Drop`.

use crate::agent::{geolb_with, AgentBuilder, AgentServer};
use crate::config::ServerConfig;
use crate::ports::free_port;
use crate::process::ProcessGuard;
use crate::server::NatsServer;
use crate::tools::{agent_bin, default_version, geolb_bin};
use futures::StreamExt;
use geolb_proto::client::ClientRecord;
use geolb_proto::Metrics;
use geolb_wan::{Emulator, LinkConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;
use std::time::Duration;

/// The address every gateway advertises: nothing listens on port 1.
const DEAD_ADVERTISE: &str = "127.0.0.1:1";
/// Longest the fleet may take to form.
const FORM_TIMEOUT: Duration = Duration::from_secs(90);

/// What the fleet looks like.
#[derive(Debug, Clone)]
pub struct HandSpec {
    /// Region names.
    pub regions: Vec<String>,
    /// Servers per region.
    pub per_region: usize,
    /// Round trip between every two regions.
    pub rtt: Duration,
    /// Round trip inside a region.
    pub local_rtt: Duration,
    /// `rtt` clients per region (one client agent per region).
    pub clients: u32,
    /// Regions whose server agents get front links.
    pub front: Vec<String>,
    /// The agent binary (default: the debug build).
    pub agent: std::path::PathBuf,
    /// The coordinator binary (default: the debug build).
    pub geolb: std::path::PathBuf,
}

impl Default for HandSpec {
    /// `syd` and `sin` (names no default uses), two servers each, 90 ms
    /// apart, two `rtt` clients each, front links in `syd` only.
    fn default() -> Self {
        HandSpec {
            regions: vec!["syd".into(), "sin".into()],
            per_region: 2,
            rtt: Duration::from_millis(90),
            local_rtt: Duration::from_micros(500),
            clients: 2,
            front: vec!["syd".into()],
            agent: agent_bin(),
            geolb: geolb_bin(),
        }
    }
}

/// One server of the fleet.
struct Server {
    name: String,
    region: String,
    /// What clients and gateway peers dial: the front listener, or the server's own.
    client_addr: u16,
    gateway_addr: u16,
    _process: ProcessGuard,
    _server: AgentServer,
}

/// A running fleet.
pub struct HandFleet {
    /// The control plane (JetStream on).
    pub control: NatsServer,
    /// The test's own WAN links (never on the control plane).
    pub wan: Emulator,
    servers: Vec<Server>,
    clients: BTreeMap<String, ProcessGuard>,
    spec: HandSpec,
}

impl HandFleet {
    /// Starts everything and waits until servers are joined and clients connected.
    pub async fn start(spec: HandSpec) -> HandFleet {
        let control = NatsServer::start(default_version(), ServerConfig::default().jetstream());
        let wan = Emulator::new();
        let url = control.client_url();
        let names: Vec<(String, String)> = spec
            .regions
            .iter()
            .flat_map(|r| (1..=spec.per_region).map(move |i| (r.clone(), format!("{r}-{i}"))))
            .collect();
        let ports: BTreeMap<String, [u16; 5]> = names
            .iter()
            .map(|(_, n)| (n.clone(), [0; 5].map(|_| free_port())))
            .collect();
        // [client, route, gateway, front client, front gateway]
        let fronted = |region: &str| spec.front.iter().any(|r| r == region);
        let dialled = |region: &str, name: &str| {
            let p = ports[name];
            match fronted(region) {
                true => (p[3], p[4]),
                false => (p[0], p[2]),
            }
        };
        let rtt = |a: &str, b: &str| if a == b { spec.local_rtt } else { spec.rtt };
        // Gateway links: from every region to every server of every other region.
        let mut gateway_urls: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for from in &spec.regions {
            for (region, name) in names.iter().filter(|(r, _)| r != from) {
                let target = format!("127.0.0.1:{}", dialled(region, name).1);
                let link = format!("gw:{from}->{name}");
                let config = LinkConfig::symmetric(rtt(from, region));
                let addr = wan.add(&link, local(0), &target, config).await.unwrap();
                gateway_urls
                    .entry((from.clone(), region.clone()))
                    .or_default()
                    .push(format!("nats://{addr}"));
            }
        }
        let mut servers = Vec::new();
        for (region, name) in &names {
            let p = ports[name];
            let routes = names
                .iter()
                .filter(|(r, n)| r == region && n != name)
                .map(|(_, n)| format!("nats-route://127.0.0.1:{}", ports[n][1]))
                .collect();
            let gateways = spec
                .regions
                .iter()
                .filter(|r| *r != region)
                .map(|r| {
                    (
                        r.clone(),
                        gateway_urls[&(region.clone(), r.clone())].clone(),
                    )
                })
                .collect();
            let mut config = ServerConfig {
                port: p[0],
                ..ServerConfig::default()
            }
            .server_name(name)
            .jetstream()
            .cluster(region, p[1], routes)
            .gateway(region, p[2], gateways);
            config.gateway.as_mut().unwrap().advertise = Some(DEAD_ADVERTISE.into());
            let mut agent = AgentBuilder::new(name, region)
                .bin(&spec.agent)
                .control(&url)
                .quiet();
            if fronted(region) {
                agent = agent
                    .arg("--front")
                    .arg(format!("client=127.0.0.1:{}->127.0.0.1:{}", p[3], p[0]))
                    .arg("--front")
                    .arg(format!("gateway=127.0.0.1:{}->127.0.0.1:{}", p[4], p[2]));
            }
            let (process, server) = agent.server(default_version(), config);
            let (client_addr, gateway_addr) = dialled(region, name);
            servers.push(Server {
                name: name.clone(),
                region: region.clone(),
                client_addr,
                gateway_addr,
                _process: process,
                _server: server,
            });
        }
        let mut fleet = HandFleet {
            control,
            wan,
            servers,
            clients: BTreeMap::new(),
            spec,
        };
        for region in fleet.spec.regions.clone() {
            fleet.start_clients(&region).await;
        }
        fleet.wait_formed().await;
        fleet
    }

    /// The control plane's URL.
    pub fn control_url(&self) -> String {
        self.control.client_url()
    }

    /// The spec it was started from.
    pub fn spec(&self) -> &HandSpec {
        &self.spec
    }

    /// Server names of `region`.
    pub fn servers_of(&self, region: &str) -> Vec<String> {
        self.servers
            .iter()
            .filter(|s| s.region == region)
            .map(|s| s.name.clone())
            .collect()
    }

    /// Every server name.
    pub fn server_names(&self) -> Vec<String> {
        self.servers.iter().map(|s| s.name.clone()).collect()
    }

    /// Where the gateway of `server` is dialled (its front, if it has one).
    pub fn gateway_port(&self, server: &str) -> Option<u16> {
        self.servers
            .iter()
            .find(|s| s.name == server)
            .map(|s| s.gateway_addr)
    }

    /// Starts the client agent `<region>-rtt`: `clients` rtt clients, each
    /// given every server through the test's links from `region`.
    async fn start_clients(&mut self, region: &str) {
        let mut args: Vec<String> = vec![
            self.spec.agent.display().to_string(),
            "client".into(),
            "--id".into(),
            format!("{region}-rtt"),
            "--region".into(),
            region.into(),
            "--strategy".into(),
            "rtt".into(),
            "--rate".into(),
            "10".into(),
        ];
        for s in &self.servers {
            let link = format!("cl:{region}->{}", s.name);
            let rtt = if s.region == region {
                self.spec.local_rtt
            } else {
                self.spec.rtt
            };
            let target = format!("127.0.0.1:{}", s.client_addr);
            let addr = self
                .wan
                .add(&link, local(0), &target, LinkConfig::symmetric(rtt))
                .await
                .unwrap();
            args.extend(["--server".into(), format!("{}=nats://{addr}", s.region)]);
        }
        let id = format!("{region}-rtt");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let guard = AgentBuilder::new(&id, region)
            .bin(&self.spec.agent)
            .control(&self.control_url())
            .arg("--role")
            .arg("client")
            .arg("--replicas")
            .arg(self.spec.clients.to_string())
            .quiet()
            .spawn(&args);
        self.clients.insert(id, guard);
    }

    /// Kills the agent `id` (and what it supervises) with SIGKILL: a host lost.
    pub fn kill_agent(&mut self, id: &str) {
        if let Some(guard) = self.clients.remove(id) {
            drop(guard);
        } else if let Some(i) = self.servers.iter().position(|s| s.name == id) {
            drop(self.servers.remove(i));
        }
    }

    /// Runs `geolb --control <control plane> ARGS`.
    pub fn geolb(&self, args: &[&str]) -> Output {
        geolb_with(&self.spec.geolb, &self.control_url(), args)
    }

    /// Waits until every server reports itself joined and every client a server.
    async fn wait_formed(&self) {
        let client = async_nats::connect(self.control_url()).await.unwrap();
        let mut metrics = client.subscribe("geolb.metrics.>").await.unwrap();
        let mut reports = client.subscribe("geolb.client.>").await.unwrap();
        let want_gateways = self.spec.regions.len() - 1;
        let want_routes = self.spec.per_region as u32 - 1;
        let servers: BTreeSet<String> = self.server_names().into_iter().collect();
        let clients = self.spec.clients as usize * self.spec.regions.len();
        let mut joined = BTreeSet::new();
        let mut connected = BTreeSet::new();
        let deadline = tokio::time::Instant::now() + FORM_TIMEOUT;
        while joined.len() < servers.len() || connected.len() < clients {
            tokio::select! {
                Some(m) = metrics.next() => {
                    let Ok(m) = serde_json::from_slice::<Metrics>(&m.payload) else { continue };
                    if let Some(s) = m.server {
                        let gateways = s.gateways.iter().filter(|g| g.outbound).count();
                        if s.healthy && s.routes >= want_routes && gateways >= want_gateways {
                            joined.insert(m.agent);
                        }
                    }
                }
                Some(r) = reports.next() => {
                    if let Ok(ClientRecord::Status(s)) = ClientRecord::decode(&r.payload) {
                        if s.server.as_ref().is_some_and(|srv| srv.region == s.region) {
                            connected.insert(s.client);
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline) => panic!(
                    "the hand-started fleet did not form in {FORM_TIMEOUT:?}: servers joined {joined:?} of {servers:?}, \
                     {} of {clients} clients at home",
                    connected.len()
                ),
            }
        }
    }
}

fn local(port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], port))
}
