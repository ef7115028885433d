//! The lab's plan for the routing that operators deploy: the GeoDNS (its
//! listeners, its answers and the emulator links they lead through) and
//! the anycast router (a vantage per `anycast` client agent), and the
//! `dns` and `anycast` client groups with their arguments. Pure, like the
//! rest of the plan.
//!
//! A records carry no port, so every server a `dns` client may be given
//! needs an address of its own with one common port: the links
//! `dns:<region>-><server>` listen on `127.<20+r>.<s>.1:<port>` (r the
//! client region's index, s the server's; every 127/8 address is local on
//! Linux), delayed by the region-to-server round trip and cut by a
//! partition like every client link. The GeoDNS's checker probes each
//! server through its links from every region, as Route 53's checkers
//! probe from around the world. The anycast router forwards each vantage's
//! connections through the client links `cl:<region>-><server>`.

use super::config::LabConfig;
use super::topology::{ClientGroup, Placement, ServerPlan};
use geolb_proto::routing::anycast::{self, AnycastConfig, AnycastServer, Vantage};
use geolb_proto::routing::dns::{DnsConfig, DnsListener, DnsServer};
use geolb_proto::routing::{HealthCheck, RttMatrix};
use geolb_proto::wan::{Carries, LinkConfig, LinkPath, LinkSpec};
use geolb_proto::WireDuration;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The GeoDNS's part of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct DnsPlan {
    /// Its configuration file.
    pub config: DnsConfig,
    /// The port of every answer address.
    pub port: u16,
}

impl DnsPlan {
    /// The listener of `region` (`IP:PORT`, UDP and TCP).
    pub fn listener(&self, region: &str) -> Option<&str> {
        let l = self.config.listeners.iter().find(|l| l.region == region)?;
        Some(&l.listen)
    }

    /// The URL `dns` clients are given: the name and the common port.
    pub fn target(&self) -> String {
        format!("nats://{}:{}", self.config.name, self.port)
    }
}

/// The routing part of the plan.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RoutingPlan {
    /// The GeoDNS (every lab of processes runs one, with or without `dns` clients).
    pub dns: Option<DnsPlan>,
    /// The anycast router (every lab of processes, with a vantage per region).
    pub anycast: Option<AnycastConfig>,
}

/// The address region `r` is given for server `s` (indices from 0).
pub fn answer_ip(r: usize, s: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 20 + r as u8, s as u8, 1)
}

/// Plans the GeoDNS and the router; adds the `dns:` links to `links`.
/// Takes its ports from `port` whether or not they run, so the other
/// ports of the lab never move.
pub fn plan(
    config: &LabConfig,
    placement: Placement,
    servers: &[ServerPlan],
    links: &mut Vec<LinkSpec>,
    mut port: impl FnMut() -> u16,
) -> RoutingPlan {
    let common = port();
    let listeners: Vec<DnsListener> = config
        .regions
        .iter()
        .map(|region| DnsListener {
            region: region.clone(),
            listen: format!("127.0.0.1:{}", port()),
        })
        .collect();
    let vantages: Vec<Vantage> = config
        .regions
        .iter()
        .map(|region| Vantage {
            id: format!("{region}-anycast"),
            region: region.clone(),
            listen: format!("127.0.0.1:{}", port()),
        })
        .collect();
    let processes = placement == Placement::Processes;
    let dns = processes.then(|| dns(config, servers, links, common, listeners));
    let anycast = processes.then(|| AnycastConfig {
        mode: config.anycast.mode,
        vantages,
        servers: servers
            .iter()
            .map(|s| AnycastServer {
                id: s.id.clone(),
                region: s.region.clone(),
                dial: config
                    .regions
                    .iter()
                    .filter_map(|r| {
                        Some((r.clone(), listen_of(links, &format!("cl:{r}->{}", s.id))?))
                    })
                    .collect(),
                check: listen_of(links, &format!("cl:{}->{}", s.region, s.id)).unwrap_or_default(),
            })
            .collect(),
        rtt_ms: rtt_ms(config),
        flip: config.anycast.flip.clone(),
        seed: config.anycast.seed,
        health: anycast::site_checks(),
        auto_withdraw: config.anycast.auto_withdraw,
    });
    RoutingPlan { dns, anycast }
}

fn dns(
    config: &LabConfig,
    servers: &[ServerPlan],
    links: &mut Vec<LinkSpec>,
    common: u16,
    listeners: Vec<DnsListener>,
) -> DnsPlan {
    let mut specs = Vec::new();
    for (s, server) in servers.iter().enumerate() {
        let mut answers = BTreeMap::new();
        let mut checks = Vec::new();
        for (r, from) in config.regions.iter().enumerate() {
            let ip = answer_ip(r, s);
            let listen = format!("{ip}:{common}");
            links.push(LinkSpec {
                name: format!("dns:{from}->{}", server.id),
                listen: listen.clone(),
                target: format!("{}:{}", server.host, server.client_port),
                config: LinkConfig::symmetric(config.rtt(from, &server.region)),
                path: Some(LinkPath {
                    carries: Carries::Client,
                    from: Some(from.clone()),
                    to: server.region.clone(),
                    server: Some(server.id.clone()),
                }),
            });
            answers.insert(from.clone(), ip);
            checks.push(listen);
        }
        specs.push(DnsServer {
            id: server.id.clone(),
            region: server.region.clone(),
            answers,
            checks,
        });
    }
    let d = &config.dns;
    DnsPlan {
        config: DnsConfig {
            name: d.name.trim_end_matches('.').to_string(),
            ttl_s: d.ttl_s(),
            policy: d.policy,
            health: HealthCheck {
                interval: d.interval,
                fast_interval: WireDuration::default(),
                threshold: d.threshold,
                recovery: d.recovery,
                timeout: WireDuration::from_millis(2_000),
            },
            listeners,
            servers: specs,
            rtt_ms: rtt_ms(config),
        },
        port: common,
    }
}

fn listen_of(links: &[LinkSpec], name: &str) -> Option<String> {
    links
        .iter()
        .find(|l| l.name == name)
        .map(|l| l.listen.clone())
}

/// Every pair's round trip in milliseconds.
fn rtt_ms(config: &LabConfig) -> RttMatrix {
    let ms = |a: &str, b: &str| config.rtt(a, b).as_secs_f64() * 1000.0;
    config
        .regions
        .iter()
        .map(|a| {
            (
                a.clone(),
                config
                    .regions
                    .iter()
                    .map(|b| (b.clone(), ms(a, b)))
                    .collect(),
            )
        })
        .collect()
}

/// The `dns` and `anycast` client groups. A seeded share of the `dns`
/// clients keep old answers: each of those is a group of one with its own
/// `--dns-keep-stale`, drawn from `[dns.stale]`.
pub fn client_groups(config: &LabConfig, plan: &RoutingPlan) -> Vec<ClientGroup> {
    let mut groups = Vec::new();
    if let Some(dns) = plan.dns.as_ref().filter(|_| config.clients.dns() > 0) {
        let per_region = config.clients.dns();
        let slots = config.regions.len() * per_region as usize;
        let stale = &config.dns.stale;
        let count = ((stale.share * slots as f64).round() as usize).min(slots);
        let mut rng = fastrand::Rng::with_seed(stale.seed);
        let mut order: Vec<usize> = (0..slots).collect();
        rng.shuffle(&mut order);
        let mut chosen: Vec<usize> = order[..count].to_vec();
        chosen.sort();
        for (r, region) in config.regions.iter().enumerate() {
            let base = vec![
                "--target".to_string(),
                dns.target(),
                "--resolver".to_string(),
                dns.listener(region).unwrap_or_default().to_string(),
            ];
            let mine: Vec<usize> = chosen
                .iter()
                .copied()
                .filter(|slot| slot / per_region as usize == r)
                .collect();
            let plain = per_region - mine.len() as u32;
            if plain > 0 {
                groups.push(group(
                    format!("{region}-dns"),
                    region,
                    "dns",
                    plain,
                    base.clone(),
                ));
            }
            for (k, _) in mine.iter().enumerate() {
                let keep = stale.keep.at(rng.f64()).as_secs().max(1);
                let mut args = base.clone();
                args.extend(["--dns-keep-stale".to_string(), format!("{keep}s")]);
                groups.push(group(
                    format!("{region}-dns-stale-{k}"),
                    region,
                    "dns",
                    1,
                    args,
                ));
            }
        }
    }
    if let Some(router) = plan
        .anycast
        .as_ref()
        .filter(|_| config.clients.anycast() > 0)
    {
        for vantage in &router.vantages {
            let args = vec!["--target".to_string(), format!("nats://{}", vantage.listen)];
            let n = config.clients.anycast();
            groups.push(group(
                vantage.id.clone(),
                &vantage.region,
                "anycast",
                n,
                args,
            ));
        }
    }
    groups
}

fn group(
    agent_id: String,
    region: &str,
    strategy: &str,
    replicas: u32,
    args: Vec<String>,
) -> ClientGroup {
    ClientGroup {
        agent_id,
        region: region.to_string(),
        strategy: strategy.to_string(),
        replicas,
        per_process: 1,
        args,
    }
}

#[cfg(test)]
#[path = "routing_tests.rs"]
mod tests;
