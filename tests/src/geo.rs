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
//! The lab's own plan ([`geolb::lab::topology::Topology`], the one `geolb lab
//! up` runs) decides everything: regions (default `lon`, `ams`, `dfw`) of
//! `per_region` servers (`<region>-<i>`, from 1) with direct routes inside a
//! region; a `gw:R->R'/j` link for every ordered pair of regions and server
//! j of R', which the servers of R list as their gateway URLs for R'; a
//! `cl:C->S` link from clients living in C to server S; every server's
//! configuration, with the dead gateway advertise and the per-region
//! gateway credentials that keep gossiped gateway URLs from going around
//! the emulator (see that module). Only the ports differ: free ones, rather
//! than a range, and the links run in this process's emulator.
//! [`GeoLab::gateway_paths`] checks every outbound gateway connection.
//!
//! A partition of R cuts every link into R and its gateway links out: the
//! region's servers are unreachable, its clients (who live near R, not in
//! it) still reach the other regions.
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

use geolb::lab::config::LabConfig;
use geolb::lab::topology::{Placement, Topology};
use geolb_proto::wan::{Carries, LinkPath};
use geolb_wan::{Emulator, LinkConfig, LinkState};
use nix::sys::signal::Signal;

use crate::cluster::Cluster;
use crate::config::{GatewayBlock, ServerConfig};
use crate::ports::free_port;
use crate::supercluster::SuperCluster;
use crate::tools::default_version;
use crate::wait::wait_for;

/// The secret of this fixture's gateway passwords.
const GATEWAY_SECRET: &str = "through-the-wan";
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

    /// The lab configuration of this shape.
    pub fn lab_config(&self) -> LabConfig {
        let mut config = LabConfig {
            regions: self.regions.clone(),
            servers_per_region: self.per_region as u32,
            nats_version: self.version.clone(),
            ..LabConfig::default()
        };
        config.latency.intra_region = geolb_proto::WireDuration(self.local_rtt);
        config.latency.pairs = self
            .rtts
            .iter()
            .map(|(a, b, rtt)| (format!("{a}-{b}"), geolb_proto::WireDuration(*rtt)))
            .collect();
        config
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

/// One emulator link of the lab.
#[derive(Debug, Clone)]
struct LinkDesc {
    name: String,
    path: LinkPath,
    listen: SocketAddr,
}

impl LinkDesc {
    fn is(&self, carries: Carries, from: &str, to: &str) -> bool {
        self.path.carries == carries
            && self.path.from.as_deref() == Some(from)
            && self.path.to == to
    }

    fn server(&self) -> &str {
        self.path.server.as_deref().unwrap_or_default()
    }
}

/// A running lab; dropping it kills every server and stops every link.
pub struct GeoLab {
    spec: GeoSpec,
    plan: Topology,
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
    /// Starts the links and the servers of the lab's plan for `spec` and
    /// waits until routes and gateways formed.
    pub async fn start(spec: GeoSpec) -> GeoLab {
        let turn = TURN.lock().await;
        let config = spec.lab_config();
        let plan = Topology::plan_with(&config, Placement::Processes, free_port);
        let wan = Emulator::new();
        let mut links = Vec::new();
        for link in &plan.links {
            let listen: SocketAddr = link.listen.parse().expect("a plan's listen address");
            wan.add(&link.name, listen, &link.target, link.config)
                .await
                .unwrap_or_else(|e| panic!("link {}: {e}", link.name));
            links.push(LinkDesc {
                name: link.name.clone(),
                path: link.path.clone().expect("every planned link has a path"),
                listen,
            });
        }
        let servers = start_servers(&spec, &config, &plan).await;
        let lab = GeoLab {
            spec,
            plan,
            wan,
            servers: Arc::new(Mutex::new(servers)),
            links,
            _turn: turn,
        };
        lab.wait_formed().await;
        lab
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
        self.plan
            .servers
            .iter()
            .filter(|s| s.region == region)
            .map(|s| s.id.clone())
            .collect()
    }

    /// The region of server `name`, if it is one of the lab's.
    pub fn region_of(&self, name: &str) -> Option<String> {
        let server = self.plan.servers.iter().find(|s| s.id == name)?;
        Some(server.region.clone())
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
        let region = self.region_of(name)?;
        let found = self
            .client_links(client_region, &region)
            .find(|l| l.server() == name);
        found.map(|l| l.listen)
    }

    fn client_links<'a>(
        &'a self,
        from: &'a str,
        region: &'a str,
    ) -> impl Iterator<Item = &'a LinkDesc> + 'a {
        self.links
            .iter()
            .filter(move |l| l.is(Carries::Client, from, region))
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
        let touches = |l: &&LinkDesc| l.path.into_or_out_of(region);
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
            let via_link = self
                .links
                .iter()
                .any(|l| l.is(Carries::Gateway, &own, &remote) && l.listen == addr);
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

    /// The index of server `name` in its region (`lon-1` -> 0); panics on another name.
    pub fn index(&self, name: &str) -> usize {
        let region = self
            .region_of(name)
            .unwrap_or_else(|| panic!("{name} is not a lab server name"));
        let names = self.server_names(&region);
        names
            .iter()
            .position(|n| n == name)
            .expect("a name of its region")
    }
}

/// Starts every server of `plan` from the plan's own configuration, on
/// the blocking pool.
async fn start_servers(spec: &GeoSpec, config: &LabConfig, plan: &Topology) -> SuperCluster {
    let mut regions = Vec::new();
    for region in &spec.regions {
        let configs: Vec<ServerConfig> = plan
            .servers
            .iter()
            .filter(|s| &s.region == region)
            .map(|server| {
                let store = store_dir(&server.id);
                ServerConfig {
                    server_name: server.id.clone(),
                    port: server.client_port,
                    http_port: server.http_port,
                    gateway: Some(GatewayBlock {
                        name: region.clone(),
                        ..GatewayBlock::default()
                    }),
                    text: Some(plan.server_config(config, server, &store, GATEWAY_SECRET)),
                    ..ServerConfig::default()
                }
            })
            .collect();
        regions.push((region.clone(), configs));
    }
    let version = spec.version.clone();
    blocking(move || {
        let clusters = regions
            .into_iter()
            .map(|(region, configs)| Cluster::spawn(&region, &version, configs))
            .collect();
        SuperCluster::from_clusters(clusters)
    })
    .await
}

/// Where server `id` keeps its JetStream store (the plan enables JetStream).
fn store_dir(id: &str) -> std::path::PathBuf {
    std::env::temp_dir()
        .join("geolb-tests")
        .join(format!("{}-geo-{id}", std::process::id()))
}

impl Drop for GeoLab {
    fn drop(&mut self) {
        // The servers go first (SuperCluster's own drop), then their stores.
        if let Ok(mut servers) = self.servers.lock() {
            *servers = SuperCluster::from_clusters(Vec::new());
        }
        if !std::thread::panicking() {
            for server in &self.plan.servers {
                let _ = std::fs::remove_dir_all(store_dir(&server.id));
            }
        }
    }
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
