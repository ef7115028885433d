//! The lab's anycast router on the wire: its configuration file (written
//! by the lab), its state, and the replies of `state`, `withdraw`,
//! `announce` and `set`.

use super::{HealthCheck, Quantiles, RttMatrix};
use crate::WireDuration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Name of the micro service every anycast router registers.
pub const SERVICE_NAME: &str = "geolb-anycast";

/// Subject of one verb of router `id`: `geolb.anycast.<id>.<verb>`.
pub fn subject(id: &str, verb: &str) -> String {
    format!("geolb.anycast.{id}.{verb}")
}

/// How the router sends a connection to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnycastMode {
    /// BGP anycast (Vultr BGP): the nearest announcing region, a hash of
    /// the connection picks its server; a withdrawal reaches each vantage
    /// after a delay drawn from the flip distribution.
    #[default]
    Bgp,
    /// An edge proxy (Fly's): always terminates in the vantage's region and
    /// crosses regions only when every local server is unhealthy.
    Proxy,
}

impl std::fmt::Display for AnycastMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AnycastMode::Bgp => "bgp",
            AnycastMode::Proxy => "proxy",
        })
    }
}

/// One vantage point: a network whose clients share a route (a listener).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vantage {
    /// Its id (the client agent's id in the lab).
    pub id: String,
    /// Where its clients live.
    pub region: String,
    /// `IP:PORT` its clients dial (the anycast address as they see it).
    pub listen: String,
}

/// One server behind the anycast address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnycastServer {
    /// Its id.
    pub id: String,
    /// Its region (its site).
    pub region: String,
    /// `IP:PORT` a connection from each vantage region is forwarded to (in
    /// the lab, the emulator's link from that region, which carries the
    /// round trip and is cut by partitions).
    pub dial: BTreeMap<String, String>,
    /// `IP:PORT` the site's health check probes it through.
    pub check: String,
}

/// The router's configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnycastConfig {
    /// bgp or proxy.
    #[serde(default)]
    pub mode: AnycastMode,
    /// The vantage points.
    pub vantages: Vec<Vantage>,
    /// The servers.
    pub servers: Vec<AnycastServer>,
    /// Round-trip times between regions, for "nearest".
    pub rtt_ms: RttMatrix,
    /// The flip delay of a vantage after a withdrawal or an announcement.
    #[serde(default = "Quantiles::bgp_convergence")]
    pub flip: Quantiles,
    /// Seed of the flip draws (the same seed, the same delays in the same order).
    #[serde(default)]
    pub seed: u64,
    /// The sites' health checks.
    #[serde(default = "site_checks")]
    pub health: HealthCheck,
    /// Whether a site whose servers all fail withdraws by itself.
    #[serde(default = "yes")]
    pub auto_withdraw: bool,
}

fn yes() -> bool {
    true
}

/// A site's own health checks, as an anycast operator runs them next to
/// its BGP speaker (ExaBGP's healthcheck style): every 5 s, every 1 s
/// while failing, 3 failures to withdraw and 3 passes to announce again,
/// 2 s a check. A withdrawal then begins 5 to 7 s after the servers die.
pub fn site_checks() -> HealthCheck {
    HealthCheck {
        interval: WireDuration::from_millis(5_000),
        fast_interval: WireDuration::from_millis(1_000),
        threshold: 3,
        recovery: 3,
        timeout: WireDuration::from_millis(2_000),
    }
}

impl AnycastConfig {
    /// Why this configuration cannot run, if it cannot.
    pub fn validate(&self) -> Result<(), String> {
        self.flip.validate().map_err(|e| format!("flip: {e}"))?;
        self.health.validate("health")?;
        if self.vantages.is_empty() || self.servers.is_empty() {
            return Err("give at least one vantage and one server".into());
        }
        for server in &self.servers {
            for vantage in &self.vantages {
                if !server.dial.contains_key(&vantage.region) {
                    return Err(format!(
                        "server {} has no address for vantage region {}",
                        server.id, vantage.region
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Arguments of `withdraw` and `announce`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionArgs {
    /// The region.
    pub region: String,
}

/// Arguments of `set`; fields left out keep their value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SetAnycast {
    /// bgp or proxy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<AnycastMode>,
    /// Whether sites withdraw by themselves when their servers fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_withdraw: Option<bool>,
}

/// One checked server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteServer {
    /// Its id.
    pub id: String,
    /// Up or down by the site's checks.
    pub healthy: bool,
}

/// One region (site) as the router sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    /// The region.
    pub region: String,
    /// Whether it announces the address.
    pub announced: bool,
    /// Why it does not: `explicit` (a `withdraw`) or `health`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn: Option<String>,
    /// Its servers.
    pub servers: Vec<SiteServer>,
}

/// A flip on its way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingFlip {
    /// The site after it.
    pub to: String,
    /// The drawn delay.
    pub delay_ms: u64,
    /// When it happens (ms since the Unix epoch).
    pub due_ms: u64,
}

/// One vantage as the router sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VantageView {
    /// Its id.
    pub id: String,
    /// Where its clients live.
    pub region: String,
    /// Where it listens.
    pub listen: String,
    /// Where its new connections go now (bgp mode).
    pub site: Option<String>,
    /// A flip on its way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingFlip>,
    /// Connections open now.
    pub open: u64,
    /// Connections accepted since the start.
    pub total: u64,
    /// Established connections reset by flips since the start.
    pub resets: u64,
}

/// The router's state, the answer to every verb.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnycastState {
    /// bgp or proxy.
    pub mode: AnycastMode,
    /// Whether sites withdraw by themselves.
    pub auto_withdraw: bool,
    /// The flip distribution.
    pub flip: Quantiles,
    /// The sites' health checks.
    pub health: HealthCheck,
    /// Every site.
    pub sites: Vec<Site>,
    /// Every vantage.
    pub vantages: Vec<VantageView>,
}

/// The reply to every verb of the router.
pub type AnycastReply = super::Reply<AnycastState>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_written_config_gets_the_published_defaults() {
        let c: AnycastConfig = serde_json::from_str(
            r#"{"vantages":[{"id":"lon-anycast","region":"lon","listen":"127.0.0.1:5400"}],
                "servers":[{"id":"lon-1","region":"lon","dial":{"lon":"127.0.0.1:4222"},"check":"127.0.0.1:4222"}],
                "rtt_ms":{}}"#,
        )
        .unwrap();
        assert_eq!(c.mode, AnycastMode::Bgp);
        assert_eq!(c.flip, Quantiles::bgp_convergence());
        assert!(c.auto_withdraw);
        assert_eq!(c.health.threshold, 3);
        assert!(c.validate().is_ok());
        let set: SetAnycast = serde_json::from_str(r#"{"mode":"proxy"}"#).unwrap();
        assert_eq!(set.mode, Some(AnycastMode::Proxy));
        assert!(serde_json::from_str::<SetAnycast>(r#"{"mode":"ospf"}"#).is_err());
    }
}
