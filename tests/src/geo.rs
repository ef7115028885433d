//! `GeoLab`: a super-cluster of real nats-servers whose every inter-region path goes
//! through an in-process WAN emulator ([`geolb_wan::Emulator`]), with faults to inject
//! and headless clients ([`client`]) to watch.
//!
//! ```no_run
//! # async fn f() {
//! use geolb_tests::geo::{ClientSpec, GeoLab, GeoSpec};
//! let lab = GeoLab::start(GeoSpec::default()).await;
//! let client = lab.spawn_client(ClientSpec::new("lon-c1", "lon").args(["--hold", "1s"])).unwrap();
//! client.wait_region("lon", std::time::Duration::from_secs(10)).await;
//! lab.partition("lon");
//! client.wait_region("ams", std::time::Duration::from_secs(10)).await;
//! # }
//! ```
//!
//! # How it works
//! - Regions (default `lon`, `ams`, `dfw`) of `per_region` servers (`<region>-<i>`)
//!   with direct routes inside a region (cluster `no_advertise`).
//! - Gateways: for each ordered pair of regions (R, R') and each server j of R', a
//!   link `gw:R->R'/j` to R'[j]'s gateway port, delaying RTT(R, R')/2 each way;
//!   the servers of R list those links as their URLs for R'. nats-server adds
//!   every gateway URL it hears of to its dial list, which would take paths around
//!   the matrix, in two ways: a server's own address (its `advertise`, else its
//!   listen address), so every server advertises `127.0.0.1:1`, where nothing
//!   listens (a refused URL is skipped at once); and the URLs a server has
//!   *configured* for third regions, gossiped to every gateway that connects to it
//!   (`gossipGatewaysToInboundGateway` then `processImplicitGateway`, which adds
//!   them to an explicit remote too), so dfw would learn lon's `gw:lon->ams` links
//!   and reach ams at 8 ms instead of 115. Gossip carries `host:port` only, and a
//!   server dialling a URL without credentials presents its own gateway
//!   credentials, so each region's gateways require a user and password of their
//!   own, carried only by the configured URLs: a gossiped link is refused at
//!   CONNECT and the server tries again.
//!   [`GeoLab::gateway_paths`] checks every outbound gateway connection.
//! - Clients: for each client region C and server S, a link `cl:C->S` to S's
//!   client port delaying RTT(C, region(S))/2 each way; [`GeoLab::servers_for`]
//!   lists them as `REGION=URL`, nearest region first.
//! - A partition of R cuts every link to a server of R and every gateway link out
//!   of R: the region's servers are unreachable, its clients (who live near R, not
//!   in it) still reach the other regions.
//!
//! One lab runs at a time in a process: [`GeoLab::start`] waits until the previous
//! one is dropped, so the tests of a file do not share two cores among two labs.
//! The servers run blocking setup code; it runs on tokio's blocking pool so the
//! emulator keeps forwarding meanwhile.

pub mod client;

pub use client::{ClientLog, ClientProc, ClientSpec};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use geolb_wan::{Emulator, LinkConfig, LinkState};
use nix::sys::signal::Signal;

use crate::cluster::Cluster;
use crate::ports::free_port;
use crate::supercluster::SuperCluster;
use crate::tools::default_version;
use crate::wait::wait_for;

/// The address every gateway advertises: nothing listens on port 1.
pub const DEAD_ADVERTISE: &str = "127.0.0.1:1";
/// Longest a blocking setup step (servers starting, routes and gateways forming) may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(90);

/// Only one lab at a time in this process.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What a lab looks like: regions, servers per region, round-trip times.
#[derive(Debug, Clone)]
pub struct GeoSpec {
    /// Region names, in start order.
    pub regions: Vec<String>,
    /// Servers in each region.
    pub per_region: usize,
    /// Round-trip times between two regions (either order).
    pub rtts: Vec<(String, String, Duration)>,
    /// Round-trip time inside a region.
    pub local_rtt: Duration,
    /// nats-server version.
    pub version: String,
    /// Enable JetStream on every server.
    pub jetstream: bool,
}

impl Default for GeoSpec {
    /// `lon`, `ams`, `dfw`, 3 servers each; lon-ams 8 ms, lon-dfw 105 ms, ams-dfw
    /// 115 ms, 0.5 ms inside a region.
    fn default() -> Self {
        let pair = |a: &str, b: &str, ms: u64| (a.into(), b.into(), Duration::from_millis(ms));
        GeoSpec {
            regions: ["lon", "ams", "dfw"].map(String::from).to_vec(),
            per_region: 3,
            rtts: vec![
                pair("lon", "ams", 8),
                pair("lon", "dfw", 105),
                pair("ams", "dfw", 115),
            ],
            local_rtt: Duration::from_micros(500),
            version: default_version().to_string(),
            jetstream: false,
        }
    }
}

impl GeoSpec {
    /// The round-trip time between regions `a` and `b`; panics if the matrix lacks it.
    pub fn rtt(&self, a: &str, b: &str) -> Duration {
        if a == b {
            return self.local_rtt;
        }
        let found = self.rtts.iter().find(|(x, y, _)| {
            (x.as_str(), y.as_str()) == (a, b) || (x.as_str(), y.as_str()) == (b, a)
        });
        found
            .unwrap_or_else(|| panic!("no round-trip time between {a} and {b}"))
            .2
    }

    /// The regions other than `from`, nearest first.
    pub fn nearest(&self, from: &str) -> Vec<String> {
        let mut others: Vec<String> = self
            .regions
            .iter()
            .filter(|r| *r != from)
            .cloned()
            .collect();
        others.sort_by_key(|r| self.rtt(from, r));
        others
    }
}

/// Which path a link emulates.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Path {
    /// From region `from` to the gateway of `server`.
    Gateway { from: String },
    /// From clients living in `from` to the client port of `server`.
    Client { from: String },
}

/// One emulator link of the lab.
#[derive(Debug, Clone)]
struct LinkDesc {
    name: String,
    path: Path,
    /// The server the link leads to, and its region.
    server: String,
    region: String,
    listen: SocketAddr,
}

/// A running lab; dropping it kills every server and stops every link.
pub struct GeoLab {
    spec: GeoSpec,
    wan: Emulator,
    servers: Arc<Mutex<SuperCluster>>,
    links: Vec<LinkDesc>,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

/// Where every outbound gateway connection goes, from `/gatewayz`.
#[derive(Debug, Clone, Default)]
pub struct GatewayPaths {
    /// `(server, remote gateway, remote address)` of every outbound connection.
    pub outbound: Vec<(String, String, SocketAddr)>,
    /// Outbound connections whose remote address is not a `gw:` link of the lab.
    pub bypassing: Vec<(String, String, SocketAddr)>,
    /// Servers lacking an outbound connection to some other region.
    pub missing: Vec<(String, String)>,
    /// Open connections on each `gw:R->R'/*` link group, by `R->R'`.
    pub open_by_pair: Vec<(String, u64)>,
}

impl GatewayPaths {
    /// Every server has its outbound gateways, all through the emulator, and the
    /// links of each region pair carry at least one connection per server.
    pub fn all_through_emulator(&self, per_region: usize) -> bool {
        self.bypassing.is_empty()
            && self.missing.is_empty()
            && self
                .open_by_pair
                .iter()
                .all(|(_, n)| *n >= per_region as u64)
    }
}

impl GeoLab {
    /// Starts the links and the servers and waits until routes and gateways formed.
    pub async fn start(spec: GeoSpec) -> GeoLab {
        let turn = TURN.lock().await;
        let wan = Emulator::new();
        let gateway_ports: HashMap<(String, usize), u16> = spec
            .regions
            .iter()
            .flat_map(|r| (0..spec.per_region).map(move |i| (r.clone(), i)))
            .map(|key| (key, free_port()))
            .collect();
        let mut links = Vec::new();
        for from in &spec.regions {
            for to in spec.regions.iter().filter(|r| *r != from) {
                for j in 0..spec.per_region {
                    let target = local(gateway_ports[&(to.clone(), j)]);
                    let name = format!("gw:{from}->{to}/{j}");
                    let path = Path::Gateway { from: from.clone() };
                    let rtt = spec.rtt(from, to);
                    links.push(
                        add_link(&wan, name, path, server_name(to, j), to, target, rtt).await,
                    );
                }
            }
        }
        let table = gateway_table(&spec, &links);
        let servers = start_servers(spec.clone(), gateway_ports, table).await;
        let mut lab = GeoLab {
            spec,
            wan,
            servers: Arc::new(Mutex::new(servers)),
            links,
            _turn: turn,
        };
        lab.add_client_links().await;
        lab.wait_formed().await;
        lab
    }

    /// Adds a `cl:C->S` link for every client region C and server S.
    async fn add_client_links(&mut self) {
        let targets: Vec<(String, String, SocketAddr)> = self
            .lock()
            .regions()
            .iter()
            .flat_map(|c| {
                c.servers().iter().map(|s| {
                    (
                        c.name().to_string(),
                        s.name().to_string(),
                        local(s.client_port()),
                    )
                })
            })
            .collect();
        for from in self.spec.regions.clone() {
            for (region, server, target) in &targets {
                let name = format!("cl:{from}->{server}");
                let path = Path::Client { from: from.clone() };
                let rtt = self.spec.rtt(&from, region);
                let link =
                    add_link(&self.wan, name, path, server.clone(), region, *target, rtt).await;
                self.links.push(link);
            }
        }
    }

    /// The lab's shape.
    pub fn spec(&self) -> &GeoSpec {
        &self.spec
    }

    /// The emulator holding every link.
    pub fn emulator(&self) -> &Emulator {
        &self.wan
    }

    /// The servers, locked (to read ports or logs, or to act on one directly).
    pub fn lock(&self) -> MutexGuard<'_, SuperCluster> {
        self.servers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Server names of `region`, in index order.
    pub fn server_names(&self, region: &str) -> Vec<String> {
        (0..self.spec.per_region)
            .map(|i| server_name(region, i))
            .collect()
    }

    /// The region of server `name` (`<region>-<i>`), if it is one of the lab's.
    pub fn region_of(&self, name: &str) -> Option<String> {
        let region = name.rsplit_once('-')?.0;
        self.spec
            .regions
            .iter()
            .any(|r| r == region)
            .then(|| region.to_string())
    }

    /// `REGION=URL` for every server as seen from clients living in `client_region`,
    /// the client's own region first, then the nearest regions; index order inside one.
    pub fn servers_for(&self, client_region: &str) -> Vec<String> {
        let mut order = vec![client_region.to_string()];
        order.extend(self.spec.nearest(client_region));
        let mut out = Vec::new();
        for region in &order {
            for link in self.client_links(client_region, region) {
                out.push(format!("{region}=nats://{}", link.listen));
            }
        }
        out
    }

    /// The address clients of `client_region` dial for server `name`.
    pub fn client_addr(&self, client_region: &str, name: &str) -> Option<SocketAddr> {
        let from = Path::Client {
            from: client_region.to_string(),
        };
        let found = self
            .links
            .iter()
            .find(|l| l.path == from && l.server == name);
        found.map(|l| l.listen)
    }

    fn client_links<'a>(
        &'a self,
        from: &'a str,
        region: &'a str,
    ) -> impl Iterator<Item = &'a LinkDesc> + 'a {
        self.links.iter().filter(move |l| {
            l.path
                == Path::Client {
                    from: from.to_string(),
                }
                && l.region == region
        })
    }

    /// Sends `sig` to server `i` of `region`; panics if it is not running.
    pub fn signal(&self, region: &str, i: usize, sig: Signal) {
        let sc = self.lock();
        let server = sc.region(region).server(i);
        server
            .signal(sig)
            .unwrap_or_else(|e| panic!("{sig} to {}: {e}", server.label()));
    }

    /// SIGKILLs server `i` of `region` and reaps it.
    pub fn kill(&self, region: &str, i: usize) {
        self.lock().region_mut(region).server_mut(i).kill();
    }

    /// SIGKILLs every server of `region` at once, then reaps them.
    pub fn kill_region(&self, region: &str) {
        let mut sc = self.lock();
        let cluster = sc.region_mut(region);
        for server in cluster.servers() {
            let _ = server.signal(Signal::SIGKILL);
        }
        for i in 0..cluster.servers().len() {
            cluster.server_mut(i).kill();
        }
    }

    /// SIGSTOPs server `i` of `region`: a grey failure, TCP open and nothing answering.
    pub fn pause(&self, region: &str, i: usize) {
        self.signal(region, i, Signal::SIGSTOP);
    }

    /// SIGCONTs server `i` of `region`.
    pub fn resume(&self, region: &str, i: usize) {
        self.signal(region, i, Signal::SIGCONT);
    }

    /// SIGUSR2s server `i` of `region`: lame-duck mode (30 s, 1 s grace).
    pub fn lame_duck(&self, region: &str, i: usize) {
        self.signal(region, i, Signal::SIGUSR2);
    }

    /// Kills server `i` of `region` if running, starts it again on the same ports and
    /// waits until it answers `/healthz` (not for its routes: see [`GeoLab::wait_formed`]).
    pub async fn restart(&self, region: &str, i: usize) {
        let (region, servers) = (region.to_string(), self.servers.clone());
        blocking(move || {
            let mut sc = servers.lock().unwrap_or_else(|e| e.into_inner());
            sc.region_mut(&region).server_mut(i).restart();
        })
        .await;
    }

    /// Restarts every server of `region` (each waits for `/healthz`), then waits
    /// until routes and gateways formed again.
    pub async fn restart_region(&self, region: &str) {
        for i in 0..self.spec.per_region {
            self.restart(region, i).await;
        }
        self.wait_formed().await;
    }

    /// Waits until every region's routes and every server's gateways formed.
    pub async fn wait_formed(&self) {
        let servers = self.servers.clone();
        blocking(move || {
            let sc = servers.lock().unwrap_or_else(|e| e.into_inner());
            sc.regions().iter().for_each(Cluster::wait_routes);
            sc.wait_gateways();
        })
        .await;
        // A gossiped path may be registered for a moment before it is refused.
        let per_region = self.spec.per_region;
        wait_for(
            "every gateway through its own links",
            SETUP_TIMEOUT,
            || async {
                let paths = self.gateway_paths().await;
                paths.all_through_emulator(per_region).then_some(())
            },
        )
        .await;
    }

    /// Cuts every link to a server of `region` and every gateway link out of it.
    pub fn partition(&self, region: &str) {
        self.set_state(region, LinkState::Cut);
    }

    /// Brings the links [`GeoLab::partition`] cut back up.
    pub fn heal(&self, region: &str) {
        self.set_state(region, LinkState::Up);
    }

    fn set_state(&self, region: &str, state: LinkState) {
        let touches = |l: &&LinkDesc| {
            l.region == region
                || l.path
                    == Path::Gateway {
                        from: region.to_string(),
                    }
        };
        for link in self.links.iter().filter(touches) {
            let config = self.wan.get(&link.name).expect("the lab's link").config;
            self.wan
                .set(&link.name, config.with_state(state))
                .expect("the lab's link");
        }
    }

    /// Sets the round-trip time from clients of `client_region` to the servers of
    /// `server_region` (delays split evenly, no jitter; the state is kept).
    pub fn set_client_rtt(&self, client_region: &str, server_region: &str, rtt: Duration) {
        self.set_client_link(client_region, server_region, LinkConfig::symmetric(rtt));
    }

    /// Sets delays and jitter of the links from clients of `client_region` to the
    /// servers of `server_region`, keeping each link's state.
    pub fn set_client_link(&self, client_region: &str, server_region: &str, config: LinkConfig) {
        for link in self.client_links(client_region, server_region) {
            let state = self
                .wan
                .get(&link.name)
                .expect("the lab's link")
                .config
                .state;
            self.wan
                .set(&link.name, config.with_state(state))
                .expect("the lab's link");
        }
    }

    /// Reads every server's `/gatewayz` and the `gw:` links' counters.
    pub async fn gateway_paths(&self) -> GatewayPaths {
        let servers = self.servers.clone();
        let regions = self.spec.regions.clone();
        let outbound = blocking(move || {
            let sc = servers.lock().unwrap_or_else(|e| e.into_inner());
            let mut out = Vec::new();
            for server in sc.servers() {
                let own = server
                    .config()
                    .gateway
                    .as_ref()
                    .map(|g| g.name.clone())
                    .unwrap_or_default();
                let gatewayz = server.monitor("gatewayz").unwrap_or_default();
                for remote in regions.iter().filter(|r| **r != own) {
                    let conn = &gatewayz["outbound_gateways"][remote]["connection"];
                    let addr = conn["ip"]
                        .as_str()
                        .zip(conn["port"].as_u64())
                        .and_then(|(ip, port)| format!("{ip}:{port}").parse().ok());
                    out.push((server.name().to_string(), own.clone(), remote.clone(), addr));
                }
            }
            out
        })
        .await;
        let mut paths = GatewayPaths::default();
        for (server, own, remote, addr) in outbound {
            let Some(addr) = addr else {
                paths.missing.push((server, remote));
                continue;
            };
            let via_link = self.links.iter().any(|l| {
                l.path == Path::Gateway { from: own.clone() }
                    && l.region == remote
                    && l.listen == addr
            });
            if !via_link {
                paths.bypassing.push((server.clone(), remote.clone(), addr));
            }
            paths.outbound.push((server, remote, addr));
        }
        let mut open: HashMap<String, u64> = HashMap::new();
        for info in self
            .wan
            .list()
            .into_iter()
            .filter(|i| i.name.starts_with("gw:"))
        {
            let pair = info
                .name
                .trim_start_matches("gw:")
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string();
            *open.entry(pair).or_default() += info.stats.open;
        }
        let mut open: Vec<(String, u64)> = open.into_iter().collect();
        open.sort();
        paths.open_by_pair = open;
        paths
    }

    /// Spawns a headless client living in `spec.region`, dialling every server
    /// through the region's client links.
    pub fn spawn_client(&self, spec: ClientSpec) -> std::io::Result<ClientProc> {
        let servers = self.servers_for(&spec.region);
        let regions: HashMap<String, String> = self
            .spec
            .regions
            .iter()
            .flat_map(|r| {
                self.server_names(r)
                    .into_iter()
                    .map(move |n| (n, r.clone()))
            })
            .collect();
        ClientProc::spawn(spec, &servers, regions)
    }

    /// The index of server `name` in its region (`lon-2` -> 2); panics on another name.
    pub fn index(&self, name: &str) -> usize {
        let index = name.rsplit_once('-').and_then(|(_, i)| i.parse().ok());
        index.unwrap_or_else(|| panic!("{name} is not a lab server name"))
    }
}

/// The user and password the gateways of `region` require.
fn gateway_credentials(region: &str) -> [String; 2] {
    [format!("gw-{region}"), format!("{region}-through-the-wan")]
}

/// `<region>-<i>`, as [`Cluster::configs`] names servers.
fn server_name(region: &str, i: usize) -> String {
    format!("{region}-{i}")
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Starts one link; panics if it cannot listen.
async fn add_link(
    wan: &Emulator,
    name: String,
    path: Path,
    server: String,
    region: &str,
    target: SocketAddr,
    rtt: Duration,
) -> LinkDesc {
    let any = local(0);
    let listen = wan
        .add(&name, any, target, LinkConfig::symmetric(rtt))
        .await
        .unwrap_or_else(|e| panic!("link {name}: {e}"));
    LinkDesc {
        name,
        path,
        server,
        region: region.to_string(),
        listen,
    }
}

/// For each region, `(remote region, URLs of the gw: links to it)`.
fn gateway_table(
    spec: &GeoSpec,
    links: &[LinkDesc],
) -> HashMap<String, Vec<(String, Vec<String>)>> {
    let mut table = HashMap::new();
    for from in &spec.regions {
        let remotes = spec.regions.iter().filter(|r| *r != from).map(|to| {
            let urls = links
                .iter()
                .filter(|l| l.path == Path::Gateway { from: from.clone() } && l.region == *to)
                .map(|l| format!("nats://{}@{}", gateway_credentials(to).join(":"), l.listen))
                .collect();
            (to.clone(), urls)
        });
        table.insert(from.clone(), remotes.collect());
    }
    table
}

/// Starts the super-cluster on the blocking pool; gateways dial the `gw:` links.
async fn start_servers(
    spec: GeoSpec,
    gateway_ports: HashMap<(String, usize), u16>,
    table: HashMap<String, Vec<(String, Vec<String>)>>,
) -> SuperCluster {
    blocking(move || {
        let regions: Vec<&str> = spec.regions.iter().map(String::as_str).collect();
        SuperCluster::start_with(
            &regions,
            spec.per_region,
            &spec.version,
            |region, i, cfg| {
                let gateway = cfg
                    .gateway
                    .as_mut()
                    .expect("SuperCluster sets a gateway block");
                gateway.port = gateway_ports[&(region.to_string(), i)];
                gateway.gateways = table[region].clone();
                gateway.advertise = Some(DEAD_ADVERTISE.to_string());
                let [user, password] = gateway_credentials(region);
                gateway.authorization = Some((user, password));
                cfg.jetstream = spec.jetstream;
                cfg.lame_duck_duration = Some(Duration::from_secs(30));
                cfg.lame_duck_grace_period = Some(Duration::from_secs(1));
            },
        )
    })
    .await
}

/// Runs blocking setup code off the runtime's threads, within [`SETUP_TIMEOUT`].
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let task = tokio::task::spawn_blocking(f);
    match tokio::time::timeout(SETUP_TIMEOUT, task).await {
        Ok(Ok(value)) => value,
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Ok(Err(e)) => panic!("lab setup task failed: {e}"),
        Err(_) => panic!("lab setup took longer than {SETUP_TIMEOUT:?}"),
    }
}
