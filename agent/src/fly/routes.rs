//! Keeps a region's servers in one cluster when DNS was late.
//!
//! nats-server resolves a route's host name on each attempt and leaves out
//! its own addresses; when nothing else is left (two machines started
//! together, each listed alone by `<region>.<app>.internal`) it drops the
//! route and never tries it again (`errNoIPAvail` in its `connectToRoute`),
//! so the region splits into lone servers and nothing notices. The agent
//! therefore re-resolves the name every `--fly-route-check` and compares the
//! region's other servers in DNS with the route peers nats-server has
//! (`/routez`). When DNS lists servers nats-server has not found, and this
//! holds on two checks in a row (gossip may still be bringing them in), it
//! rewrites the configuration with a route to each of their addresses and
//! sends nats-server SIGHUP: a reload dials added routes at once, and an
//! explicit route to an address is retried until it connects.
//!
//! [`Plan`] is the policy, pure; [`watch`] does the I/O.

use super::{config::render, FlyEnv, CLUSTER_PORT};
use crate::commands::Context;
use crate::signals::Signal;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Checks in a row that must find servers missing before the routes change.
const CONFIRMATIONS: u32 = 2;

/// What one check decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// nats-server routes to at least as many servers as DNS lists.
    Complete,
    /// DNS lists no other server of the region: nothing to route to yet.
    Alone,
    /// Servers are missing; wait for the next check (gossip may bring them).
    Wait,
    /// Servers are missing, and each already has a route of its own: nats-server keeps dialing.
    Dialing,
    /// Route to exactly these addresses (and the region's name), and reload.
    Reload(Vec<IpAddr>),
}

/// The policy: what DNS and `/routez` say, checked after check.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Addresses with a route of their own in the configuration written last.
    configured: BTreeSet<IpAddr>,
    /// Checks in a row that found servers missing.
    missing: u32,
}

impl Plan {
    /// One check: `peers` are the region's other servers DNS lists, `connected`
    /// the distinct route peers nats-server has.
    pub fn check(&mut self, peers: &BTreeSet<IpAddr>, connected: usize) -> Step {
        if connected >= peers.len() {
            self.missing = 0;
            return match connected {
                0 => Step::Alone,
                _ => Step::Complete,
            };
        }
        if peers.is_subset(&self.configured) {
            self.missing = 0;
            return Step::Dialing;
        }
        self.missing += 1;
        if self.missing < CONFIRMATIONS {
            return Step::Wait;
        }
        self.missing = 0;
        self.configured = peers.clone();
        Step::Reload(peers.iter().copied().collect())
    }
}

/// What [`watch`] needs besides the agent's context.
#[derive(Debug, Clone)]
pub struct RouteWatch {
    /// The machine's settings, to render the configuration again.
    pub env: FlyEnv,
    /// The configuration file nats-server reads.
    pub config: PathBuf,
    /// How often the region's name is resolved.
    pub interval: Duration,
}

/// Re-resolves the region's name every interval and reloads nats-server
/// with routes to the servers it has not found; until cancelled.
pub async fn watch(w: RouteWatch, ctx: Arc<Context>, token: CancellationToken) {
    let Some(monitor) = ctx.monitor.clone() else {
        tracing::warn!("No --monitor (GEOLB_MONITOR): the agent cannot see nats-server's routes and will not re-resolve the region's servers.");
        return;
    };
    let name = w.env.internal(&w.env.region);
    let mut plan = Plan::default();
    let mut last = Step::Complete;
    let mut ticker = tokio::time::interval(w.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = token.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let peers = match resolve(&name, &own_addresses(&w.env)).await {
            Ok(peers) => peers,
            Err(e) => {
                tracing::debug!(name = %name, error = %e, "Region name not resolved.");
                continue;
            }
        };
        // No answer while nats-server starts, stops or restarts: nothing to judge.
        let Ok(routez) = monitor.json("/routez").await else {
            continue;
        };
        let connected = crate::monitor::route_peers(&routez) as usize;
        let step = plan.check(&peers, connected);
        report(&step, &last, &name, &peers, connected, w.interval);
        if let Step::Reload(addresses) = &step {
            reload(&w, &ctx, addresses).await;
        }
        last = step;
    }
}

/// Logs a step when it is news.
fn report(
    step: &Step,
    last: &Step,
    name: &str,
    peers: &BTreeSet<IpAddr>,
    connected: usize,
    interval: Duration,
) {
    let interval = humantime::format_duration(interval);
    match step {
        Step::Alone if *last != Step::Alone => tracing::warn!(
            name = %name,
            every = %interval,
            "No other server of this region in DNS yet; nats-server will not look again by itself, so the agent re-resolves the name until one appears."
        ),
        Step::Complete if *last != Step::Complete => tracing::info!(
            name = %name,
            routes = connected,
            "nats-server routes to every server of the region that DNS lists."
        ),
        Step::Reload(_) => tracing::info!(
            name = %name,
            peers = ?peers,
            routes = connected,
            "DNS lists servers of this region that nats-server has no route to: adding a route to each and reloading nats-server."
        ),
        _ => {}
    }
}

/// Writes the configuration with routes to `addresses` and sends SIGHUP.
async fn reload(w: &RouteWatch, ctx: &Context, addresses: &[IpAddr]) {
    let text = render(&w.env, addresses);
    if let Err(e) = super::write_config(&w.config, &text) {
        tracing::warn!(error = %e, "Routes not added: the configuration could not be written.");
        return;
    }
    ctx.handle.forward(Signal::Hup).await;
}

/// The addresses of `name` (any port), without this machine's.
async fn resolve(name: &str, own: &BTreeSet<IpAddr>) -> std::io::Result<BTreeSet<IpAddr>> {
    let found = tokio::net::lookup_host((name, CLUSTER_PORT)).await?;
    Ok(found
        .map(|addr| addr.ip())
        .filter(|ip| !own.contains(ip))
        .collect())
}

/// This machine's addresses: `FLY_PRIVATE_IP` and those of its interfaces,
/// as nats-server leaves them out of its routes.
fn own_addresses(env: &FlyEnv) -> BTreeSet<IpAddr> {
    let mut own: BTreeSet<IpAddr> = env.private_ip.into_iter().collect();
    if let Ok(interfaces) = nix::ifaddrs::getifaddrs() {
        for interface in interfaces {
            let address = interface.address;
            if let Some(v4) = address.as_ref().and_then(|a| a.as_sockaddr_in()) {
                own.insert(IpAddr::V4(v4.ip()));
            }
            if let Some(v6) = address.as_ref().and_then(|a| a.as_sockaddr_in6()) {
                own.insert(IpAddr::V6(v6.ip()));
            }
        }
    }
    own
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(last: &[u8]) -> BTreeSet<IpAddr> {
        last.iter()
            .map(|n| IpAddr::from([0xfdaa, 0, 0, 0, 0, 0, 0, u16::from(*n)]))
            .collect()
    }

    #[test]
    fn a_lone_server_waits_and_adds_the_servers_dns_lists_on_the_second_check() {
        let mut plan = Plan::default();
        assert_eq!(plan.check(&ips(&[]), 0), Step::Alone);
        assert_eq!(plan.check(&ips(&[]), 0), Step::Alone);
        assert_eq!(plan.check(&ips(&[2]), 0), Step::Wait);
        let reload = plan.check(&ips(&[2]), 0);
        assert_eq!(reload, Step::Reload(ips(&[2]).into_iter().collect()));
        // Configured: nats-server keeps dialing it by itself.
        assert_eq!(plan.check(&ips(&[2]), 0), Step::Dialing);
        assert_eq!(plan.check(&ips(&[2]), 1), Step::Complete);
    }

    #[test]
    fn gossip_that_catches_up_before_the_second_check_needs_no_reload() {
        let mut plan = Plan::default();
        assert_eq!(plan.check(&ips(&[2, 3]), 1), Step::Wait);
        assert_eq!(plan.check(&ips(&[2, 3]), 2), Step::Complete);
        assert_eq!(plan.check(&ips(&[2, 3]), 1), Step::Wait, "counts again");
    }

    #[test]
    fn a_new_address_replaces_the_configured_ones() {
        let mut plan = Plan::default();
        plan.check(&ips(&[2]), 0);
        assert!(matches!(plan.check(&ips(&[2]), 0), Step::Reload(_)));
        // Machine 2 replaced by machine 4: route to 4, not to 2 any more.
        assert_eq!(plan.check(&ips(&[4]), 0), Step::Wait);
        assert_eq!(
            plan.check(&ips(&[4]), 0),
            Step::Reload(ips(&[4]).into_iter().collect())
        );
    }

    #[test]
    fn this_machines_addresses_are_its_own() {
        let env = FlyEnv {
            private_ip: Some("fdaa::9".parse().unwrap()),
            ..super::super::tests::env()
        };
        let own = own_addresses(&env);
        assert!(own.contains(&"fdaa::9".parse::<IpAddr>().unwrap()));
        assert!(
            own.contains(&"127.0.0.1".parse::<IpAddr>().unwrap()),
            "{own:?}"
        );
    }
}
