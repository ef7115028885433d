//! The lab configuration's `[dns]` and `[anycast]` sections: the GeoDNS and
//! the anycast router that the `dns` and `anycast` clients use. Every
//! default comes from a real system (see the README's "GeoDNS and anycast").

use super::config::ConfigError;
use geolb_proto::routing::anycast::AnycastMode;
use geolb_proto::routing::dns::DnsPolicy;
use geolb_proto::routing::Quantiles;
use geolb_proto::WireDuration;
use serde::{Deserialize, Serialize};

/// `[dns]`: the lab's GeoDNS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsLabConfig {
    /// The name `dns` clients resolve; its parent is the GeoDNS's zone.
    pub name: String,
    /// TTL of the answers (whole seconds, at least 1 s; Cloudflare's
    /// DNS-only load balancing answers with 30 s, Fly's internal DNS 5 s).
    pub ttl: WireDuration,
    /// nearest-only or nearest-first.
    pub policy: DnsPolicy,
    /// Health-check interval (Route 53 fast checks: 10 s; standard: 30 s).
    pub interval: WireDuration,
    /// Consecutive failures to mark a server down (Route 53: 3).
    pub threshold: u32,
    /// Consecutive passes to mark it up again (Route 53's failure threshold works both ways: 3).
    pub recovery: u32,
    /// The clients that keep an old answer past its TTL.
    pub stale: StaleConfig,
}

/// `[dns.stale]`: the tail of clients (resolvers, runtimes, caches) that
/// keep an answer past its TTL; each gets `--dns-keep-stale D`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaleConfig {
    /// Share of the lab's `dns` clients that keep old answers (0 to 1;
    /// with a 20 s TTL about 10 % had not moved after 60 s).
    pub share: f64,
    /// How long past the TTL they keep it, by quantiles (default: at least
    /// 40 s, 80 % of them at most 880 s: 2 % of all clients still on the old
    /// answer after 15 minutes).
    pub keep: Quantiles,
    /// Seed of which clients, and of their delays.
    pub seed: u64,
}

/// `[anycast]`: the lab's anycast router.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnycastLabConfig {
    /// bgp (one address announced from every region) or proxy (Fly's edge).
    pub mode: AnycastMode,
    /// A vantage's flip delay after a withdrawal, by quantiles (median 3 s,
    /// 80th percentile 10 s, 99th 120 s: published BGP convergence figures).
    pub flip: Quantiles,
    /// Seed of the flip draws.
    pub seed: u64,
    /// Whether a region whose servers all fail withdraws by itself.
    pub auto_withdraw: bool,
}

impl Default for DnsLabConfig {
    fn default() -> Self {
        DnsLabConfig {
            name: "nats.geolb.lab".into(),
            ttl: WireDuration::from_millis(
                u64::from(geolb_proto::routing::dns::DEFAULT_TTL_S) * 1000,
            ),
            policy: DnsPolicy::NearestOnly,
            interval: WireDuration::from_millis(10_000),
            threshold: 3,
            recovery: 3,
            stale: StaleConfig::default(),
        }
    }
}

impl Default for StaleConfig {
    fn default() -> Self {
        StaleConfig {
            share: 0.10,
            keep: Quantiles::stale_dns(),
            seed: 1,
        }
    }
}

impl Default for AnycastLabConfig {
    fn default() -> Self {
        AnycastLabConfig {
            mode: AnycastMode::Bgp,
            flip: Quantiles::bgp_convergence(),
            seed: 1,
            auto_withdraw: true,
        }
    }
}

impl DnsLabConfig {
    /// The TTL in whole seconds.
    pub fn ttl_s(&self) -> u32 {
        self.ttl.0.as_secs().min(u64::from(u32::MAX)) as u32
    }

    /// Checks the section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.ttl.0 < std::time::Duration::from_secs(1) || self.ttl.0.subsec_nanos() != 0 {
            return invalid(format!(
                "dns.ttl: use whole seconds, 1 s or more, not {}",
                self.ttl
            ));
        }
        let labels: Vec<&str> = self.name.trim_end_matches('.').split('.').collect();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if labels.len() < 2 || !labels.iter().all(|l| label_ok(l)) {
            return invalid(format!(
                "dns.name: {:?} is not a host name with a parent zone, e.g. \"nats.geolb.lab\"",
                self.name
            ));
        }
        if self.interval.0 < std::time::Duration::from_millis(10) {
            return invalid(format!(
                "dns.interval: use 10ms or more, not {}",
                self.interval
            ));
        }
        if self.threshold == 0 || self.recovery == 0 {
            return invalid("dns.threshold and dns.recovery: use 1 or more".into());
        }
        if !(0.0..=1.0).contains(&self.stale.share) {
            return invalid(format!(
                "dns.stale.share: use 0 to 1, not {}",
                self.stale.share
            ));
        }
        self.stale
            .keep
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("dns.stale.keep: {e}")))
    }
}

impl AnycastLabConfig {
    /// Checks the section.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.flip
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("anycast.flip: {e}")))
    }
}
