//! The lab's GeoDNS on the wire: its configuration file (written by the
//! lab), its faults, its state and the replies of `state` and `set`.

use super::{HealthCheck, RttMatrix};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// Name of the micro service every GeoDNS registers.
pub const SERVICE_NAME: &str = "geolb-dns";

/// Subject of one verb (`state` or `set`) of GeoDNS `id`: `geolb.dns.<id>.<verb>`.
pub fn subject(id: &str, verb: &str) -> String {
    format!("geolb.dns.{id}.{verb}")
}

/// The TTL of answers by default: Cloudflare's DNS-only load balancing (30 s).
pub const DEFAULT_TTL_S: u32 = 30;

/// Which servers an answer lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnsPolicy {
    /// The healthy servers of the nearest region that has any (Route 53
    /// latency records with health checks, Fly's `top1.nearest.of`).
    #[default]
    NearestOnly,
    /// Every healthy server, nearest region first.
    NearestFirst,
}

impl std::fmt::Display for DnsPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DnsPolicy::NearestOnly => "nearest-only",
            DnsPolicy::NearestFirst => "nearest-first",
        })
    }
}

/// Where the GeoDNS answers the resolvers of one region (UDP and TCP on
/// the same address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsListener {
    /// The region whose clients use it.
    pub region: String,
    /// `IP:PORT`.
    pub listen: String,
}

/// One server the GeoDNS answers with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsServer {
    /// Its id (agent id).
    pub id: String,
    /// Its region.
    pub region: String,
    /// The address a client of each region is given for it (A records
    /// carry no port: every address uses the name's common port).
    pub answers: BTreeMap<String, Ipv4Addr>,
    /// `IP:PORT`s the health checker probes it through; it passes a round
    /// when more than 18 % of them pass (Route 53's rule), so one of three.
    pub checks: Vec<String>,
}

/// The GeoDNS's configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// The name clients resolve, e.g. `nats.geolb.lab`; its parent is the zone.
    pub name: String,
    /// TTL of the answers, in seconds.
    pub ttl_s: u32,
    /// Which servers an answer lists.
    #[serde(default)]
    pub policy: DnsPolicy,
    /// The health checker.
    #[serde(default)]
    pub health: HealthCheck,
    /// One listener per region.
    pub listeners: Vec<DnsListener>,
    /// The servers.
    pub servers: Vec<DnsServer>,
    /// Round-trip times between regions, for "nearest".
    pub rtt_ms: RttMatrix,
}

impl DnsConfig {
    /// Why this configuration cannot run, if it cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.ttl_s == 0 {
            return Err("ttl: use 1 s or more".into());
        }
        if self.name.split('.').filter(|l| !l.is_empty()).count() < 2 {
            return Err(format!(
                "name {:?}: give a name with a parent zone, e.g. nats.geolb.lab",
                self.name
            ));
        }
        self.health.validate("health")?;
        if self.listeners.is_empty() || self.servers.is_empty() {
            return Err("give at least one listener and one server".into());
        }
        for server in &self.servers {
            for listener in &self.listeners {
                if !server.answers.contains_key(&listener.region) {
                    return Err(format!(
                        "server {} has no answer address for region {}",
                        server.id, listener.region
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What the health checker does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckerMode {
    /// Checks at its interval.
    #[default]
    Normal,
    /// Checks at its interval times `slow_factor`.
    Slow,
    /// Checks nothing: health stays as it is.
    Stopped,
}

/// The faults a GeoDNS can be given at run time (`set`); `set` replaces
/// them all, so `{}` clears every fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsFaults {
    /// The health checker normal, slow or stopped.
    pub checker: CheckerMode,
    /// How much slower a `slow` checker is (1 or more).
    pub slow_factor: f64,
    /// Every query is dropped on every listener: resolvers time out.
    pub unreachable: bool,
    /// Every region is answered as if it were this one, as behind a
    /// resolver that passes no client subnet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wrong_region: Option<String>,
}

impl Default for DnsFaults {
    fn default() -> Self {
        DnsFaults {
            checker: CheckerMode::Normal,
            slow_factor: 10.0,
            unreachable: false,
            wrong_region: None,
        }
    }
}

/// A checked server as the GeoDNS sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerHealth {
    /// Its id.
    pub id: String,
    /// Its region.
    pub region: String,
    /// Up or down.
    pub healthy: bool,
    /// Consecutive failed rounds (0 when the last passed).
    pub failures: u32,
    /// Consecutive passed rounds (0 when the last failed).
    pub passes: u32,
    /// The last round's outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What one region's resolvers are told now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsAnswer {
    /// The listener's region.
    pub region: String,
    /// Where it listens.
    pub listen: String,
    /// The region it is answered as (another under `wrong_region`).
    pub answered_as: String,
    /// The A records, in order.
    pub addrs: Vec<Ipv4Addr>,
    /// The servers they lead to.
    pub servers: Vec<String>,
}

/// A GeoDNS's state, the answer to `state` and `set`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsState {
    /// The name it answers.
    pub name: String,
    /// The TTL of its answers, in seconds.
    pub ttl_s: u32,
    /// Its policy.
    pub policy: DnsPolicy,
    /// The version of its answers (also the SOA serial and the TXT
    /// `geolb-version=<serial>`); it changes whenever an answer changes.
    pub serial: u32,
    /// The health checker's settings.
    pub health: HealthCheck,
    /// Its faults now.
    pub faults: DnsFaults,
    /// Every checked server.
    pub servers: Vec<ServerHealth>,
    /// Every region's answer.
    pub answers: Vec<DnsAnswer>,
    /// Queries answered since the start.
    pub queries: u64,
    /// Queries dropped (unreachable) since the start.
    pub dropped: u64,
}

/// The reply to `state` and `set`.
pub type DnsReply = super::Reply<DnsState>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_replace_all_and_default_to_none() {
        let f: DnsFaults = serde_json::from_str("{}").unwrap();
        assert_eq!(f, DnsFaults::default());
        let f: DnsFaults =
            serde_json::from_str(r#"{"checker":"slow","slow_factor":3,"wrong_region":"dfw"}"#)
                .unwrap();
        assert_eq!(f.checker, CheckerMode::Slow);
        assert_eq!(f.wrong_region.as_deref(), Some("dfw"));
        assert!(serde_json::from_str::<DnsFaults>(r#"{"checker":"fast"}"#).is_err());
        assert!(serde_json::from_str::<DnsFaults>(r#"{"nope":1}"#).is_err());
    }

    #[test]
    fn a_hand_written_config_reads() {
        let c: DnsConfig = serde_json::from_str(
            r#"{"name":"nats.geolb.lab","ttl_s":30,"policy":"nearest-first",
                "listeners":[{"region":"lon","listen":"127.0.0.1:5300"}],
                "servers":[{"id":"lon-1","region":"lon","answers":{"lon":"127.20.0.1"},"checks":["127.20.0.1:4222"]}],
                "rtt_ms":{}}"#,
        )
        .unwrap();
        assert_eq!(c.policy, DnsPolicy::NearestFirst);
        assert_eq!(c.health, HealthCheck::route53_fast());
        assert!(c.validate().is_ok());
        let zero = DnsConfig {
            ttl_s: 0,
            ..c.clone()
        };
        assert!(zero.validate().unwrap_err().contains("ttl"));
        let flat = DnsConfig {
            name: "nats".into(),
            ..c
        };
        assert!(flat.validate().unwrap_err().contains("parent zone"));
    }
}
