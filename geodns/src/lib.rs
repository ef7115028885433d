//! The lab's GeoDNS: a real authoritative DNS server (hickory-server) on
//! UDP and TCP that answers one name per client region, as GeoDNS
//! services with health checks do (Route 53 latency records, Cloudflare
//! load balancing, Fly's `top1.nearest.of.<app>.internal`).
//!
//! ```no_run
//! # async fn f(config: geolb_proto::routing::dns::DnsConfig) -> Result<(), geolb_geodns::Error> {
//! let dns = geolb_geodns::GeoDns::start(config).await?;
//! let lon = dns.listener("lon").unwrap(); // lon's resolvers ask here
//! println!("{:?}", dns.state().answers);
//! # Ok(()) }
//! ```
//!
//! # How it works
//! - One listener (UDP and TCP on one address) per region: a client of
//!   region R uses R's listener as its resolver, which stands for the
//!   client's location (a resolver passing its client's subnet, or the
//!   resolver itself being in R).
//! - An answer lists A records of the addresses clients of that region
//!   dial (A records carry no port: all share the name's port), chosen by
//!   the [`policy`]: `nearest-only` (the healthy servers of the nearest
//!   region that has any) or `nearest-first` (every healthy server,
//!   nearest region first); nothing healthy: all of them (fail-open), with
//!   the TTL. A TXT query for the same name answers
//!   `"geolb-version=<serial>"`, the version of the answers (also the SOA
//!   serial), which changes whenever any answer changes. SOA and NS make it
//!   authoritative for the zone (the name's parent); other names in the
//!   zone are NXDOMAIN, names outside REFUSED. Malformed requests are
//!   answered FORMERR or dropped by hickory-server.
//! - The health [`checker`] probes every server with a NATS check through
//!   its check addresses every `interval`; `threshold` failed rounds mark it
//!   down, `recovery` passed rounds up (Route 53: 10 s fast checks, a
//!   failure threshold of 3 that works both ways).
//! - Faults, settable at run time ([`GeoDns::set_faults`]): the checker
//!   `slow` or `stopped`, the server `unreachable` (queries dropped on
//!   every listener), `wrong_region` (every region answered as one region,
//!   as behind a resolver that passes no client subnet).
//!
//! # Layout
//! - [`policy`]: which servers an answer lists (pure).
//! - [`answers`]: the answer table and its serial.
//! - `handler`: one DNS request.
//! - `checker`: the health checker.

pub mod answers;
mod checker;
mod handler;
pub mod policy;

use answers::Table;
use geolb_proto::routing::dns::{DnsConfig, DnsFaults, DnsState, ServerHealth};
use geolb_proto::routing::RoutingChange;
use geolb_wan::check::Tracker;
use hickory_server::proto::rr::Name;
use hickory_server::Server;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// Errors of the GeoDNS.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot run.
    #[error("GeoDNS configuration: {0}")]
    Config(String),
    /// A listener's address is taken or not local.
    #[error("cannot listen on {addr} ({proto}): {source}; choose another address or port")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// UDP or TCP.
        proto: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// A fault names something the GeoDNS does not know.
    #[error("{0}")]
    Fault(String),
}

/// A running GeoDNS; dropping it stops its listeners and checker.
pub struct GeoDns {
    inner: Arc<Inner>,
    listeners: Vec<(String, SocketAddr)>,
    servers: Vec<Server<handler::Handler>>,
}

/// What the listeners and the checker share.
pub struct Inner {
    config: DnsConfig,
    name: Name,
    zone: Name,
    ns: Name,
    hostmaster: Name,
    listen_ips: Vec<Ipv4Addr>,
    unreachable: AtomicBool,
    queries: AtomicU64,
    dropped: AtomicU64,
    faults: watch::Sender<DnsFaults>,
    state: Mutex<Health>,
    changes: broadcast::Sender<RoutingChange>,
}

/// Health and the answers it gives.
struct Health {
    servers: Vec<Tracker>,
    details: Vec<Option<String>>,
    table: Table,
}

/// How long a TCP connection may stay idle before the server closes it.
const TCP_IDLE: Duration = Duration::from_secs(10);

impl GeoDns {
    /// Binds every listener (UDP and TCP), starts the checker (every server
    /// is believed healthy until checked), and answers.
    pub async fn start(config: DnsConfig) -> Result<GeoDns, Error> {
        config.validate().map_err(Error::Config)?;
        let name = parse_name(&config.name)?;
        let zone = name.base_name();
        let ns = parse_name(&format!("ns.{zone}"))?;
        let hostmaster = parse_name(&format!("hostmaster.{zone}"))?;
        let mut bound = Vec::new();
        for l in &config.listeners {
            let addr: SocketAddr = l.listen.parse().map_err(|e| {
                Error::Config(format!("listener {}: {:?}: {e}", l.region, l.listen))
            })?;
            bound.push((l.region.clone(), bind(addr).await?));
        }
        let listen_ips = bound
            .iter()
            .map(|(_, (udp, _))| match udp.local_addr().map(|a| a.ip()) {
                Ok(IpAddr::V4(ip)) => ip,
                _ => Ipv4Addr::LOCALHOST,
            })
            .collect();
        let servers: Vec<Tracker> = config
            .servers
            .iter()
            .map(|_| Tracker::new(true, config.health.threshold, config.health.recovery))
            .collect();
        let faults = DnsFaults::default();
        let table = Table {
            serial: 1,
            answers: Table::compute(&config, &servers, &faults),
        };
        let inner = Arc::new(Inner {
            name,
            zone,
            ns,
            hostmaster,
            listen_ips,
            unreachable: AtomicBool::new(false),
            queries: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            faults: watch::Sender::new(faults),
            state: Mutex::new(Health {
                details: vec![None; servers.len()],
                servers,
                table,
            }),
            changes: broadcast::channel(1024).0,
            config,
        });
        let mut listeners = Vec::new();
        let mut running = Vec::new();
        for (index, (region, (udp, tcp))) in bound.into_iter().enumerate() {
            let local = udp.local_addr().map_err(|source| Error::Bind {
                addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                proto: "UDP",
                source,
            })?;
            let mut server = Server::new(handler::Handler {
                inner: inner.clone(),
                region: index,
            });
            server.register_socket(udp);
            server.register_listener(tcp, TCP_IDLE, 64);
            running.push(server);
            listeners.push((region, local));
        }
        for index in 0..inner.config.servers.len() {
            let faults = inner.faults.subscribe();
            tokio::spawn(checker::run(Arc::downgrade(&inner), index, faults));
        }
        tracing::info!(name = %inner.config.name, listeners = ?listeners, "GeoDNS answering");
        Ok(GeoDns {
            inner,
            listeners,
            servers: running,
        })
    }

    /// Every listener: its region and address (UDP and TCP).
    pub fn listeners(&self) -> &[(String, SocketAddr)] {
        &self.listeners
    }

    /// The listener of `region`.
    pub fn listener(&self, region: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(r, _)| r == region)
            .map(|(_, a)| *a)
    }

    /// The changes as they happen (health, answers, faults).
    pub fn changes(&self) -> broadcast::Receiver<RoutingChange> {
        self.inner.changes.subscribe()
    }

    /// Replaces every fault; a `wrong_region` must be one of the listeners'.
    pub fn set_faults(&self, faults: DnsFaults) -> Result<DnsState, Error> {
        if let Some(region) = &faults.wrong_region {
            if !self.listeners.iter().any(|(r, _)| r == region) {
                return Err(Error::Fault(format!(
                    "wrong_region {region:?} is not a region of this GeoDNS; `state` lists them"
                )));
            }
        }
        if !(faults.slow_factor >= 1.0 && faults.slow_factor <= 1000.0) {
            return Err(Error::Fault(format!(
                "slow_factor {}: use 1 to 1000",
                faults.slow_factor
            )));
        }
        self.inner
            .unreachable
            .store(faults.unreachable, Ordering::Relaxed);
        self.inner.faults.send_replace(faults.clone());
        self.inner.publish(RoutingChange::Faults { faults });
        self.inner.recompute(&mut self.inner.lock());
        Ok(self.state())
    }

    /// The state now: health, answers, faults, counters.
    pub fn state(&self) -> DnsState {
        let inner = &self.inner;
        let health = inner.lock();
        DnsState {
            name: inner.config.name.clone(),
            ttl_s: inner.config.ttl_s,
            policy: inner.config.policy,
            serial: health.table.serial,
            health: inner.config.health.clone(),
            faults: inner.faults.borrow().clone(),
            servers: inner
                .config
                .servers
                .iter()
                .zip(&health.servers)
                .zip(&health.details)
                .map(|((s, t), detail)| ServerHealth {
                    id: s.id.clone(),
                    region: s.region.clone(),
                    healthy: t.healthy,
                    failures: t.failures,
                    passes: t.passes,
                    detail: detail.clone(),
                })
                .collect(),
            answers: health.table.answers.clone(),
            queries: inner.queries.load(Ordering::Relaxed),
            dropped: inner.dropped.load(Ordering::Relaxed),
        }
    }

    /// Stops every listener and waits until they closed.
    pub async fn stop(mut self) {
        for server in &mut self.servers {
            let _ = server.shutdown_gracefully().await;
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Health> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, change: RoutingChange) {
        tracing::info!(kind = change.kind(), ?change, "GeoDNS changed");
        let _ = self.changes.send(change);
    }

    /// The version of the answers now.
    fn serial(&self) -> u32 {
        self.lock().table.serial
    }

    /// The A records of listener `region` now.
    fn answer(&self, region: usize) -> Vec<Ipv4Addr> {
        self.lock().table.answers[region].addrs.clone()
    }

    fn listener_ip(&self, region: usize) -> Ipv4Addr {
        self.listen_ips[region]
    }

    /// Records one round of checks of server `index`.
    fn record(&self, index: usize, pass: bool, detail: String) {
        let mut health = self.lock();
        health.details[index] = Some(detail.clone());
        if let Some(healthy) = health.servers[index].record(pass) {
            let server = &self.config.servers[index];
            self.publish(RoutingChange::Health {
                server: server.id.clone(),
                region: server.region.clone(),
                healthy,
                detail,
            });
            self.recompute(&mut health);
        }
    }

    /// Recomputes every answer and publishes the ones that changed.
    fn recompute(&self, health: &mut Health) {
        let faults = self.faults.borrow().clone();
        let answers = Table::compute(&self.config, &health.servers, &faults);
        for change in health.table.update(answers) {
            self.publish(change);
        }
    }
}

fn parse_name(name: &str) -> Result<Name, Error> {
    let fqdn = format!("{}.", name.trim_end_matches('.'));
    Name::from_ascii(&fqdn)
        .map(|n| n.to_lowercase())
        .map_err(|e| Error::Config(format!("name {name:?}: {e}")))
}

/// UDP and TCP on the same address (with port 0, a few tries at a port free for both).
async fn bind(addr: SocketAddr) -> Result<(tokio::net::UdpSocket, tokio::net::TcpListener), Error> {
    let mut last = None;
    for _ in 0..20 {
        let udp = tokio::net::UdpSocket::bind(addr)
            .await
            .map_err(|source| Error::Bind {
                addr,
                proto: "UDP",
                source,
            })?;
        let port = udp.local_addr().map(|a| a.port()).unwrap_or(addr.port());
        match tokio::net::TcpListener::bind(SocketAddr::new(addr.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(source) if addr.port() == 0 => last = Some(source),
            Err(source) => {
                return Err(Error::Bind {
                    addr,
                    proto: "TCP",
                    source,
                })
            }
        }
    }
    Err(Error::Bind {
        addr,
        proto: "TCP",
        source: last.unwrap_or_else(|| std::io::Error::other("no free port")),
    })
}
