//! The routing that operators deploy, on the wire: the lab's GeoDNS
//! ([`dns`]) and anycast router ([`anycast`]), their configuration files,
//! their fault controls and the changes they publish.
//!
//! Each registers a NATS micro service like the WAN emulator
//! ([`crate::wan`]): the GeoDNS as [`dns::SERVICE_NAME`] with `state` and
//! `set` on `geolb.dns.<id>.<verb>`, the router as
//! [`anycast::SERVICE_NAME`] with `state`, `withdraw`, `announce` and `set`
//! on `geolb.anycast.<id>.<verb>`. Requests are [`crate::Command`]s (an id
//! and arguments); replies carry the resulting state, which lists the
//! regions each one serves and what it answers, so a scenario finds them by
//! region. Every change (health up or down, a new answer version, a
//! withdrawal, a vantage's flip and its delay) is published as it happens as
//! a [`RoutingEvent`] on `geolb.routing.<id>.<kind>` ([`change_subject`]).

pub mod anycast;
pub mod dns;
pub mod quantiles;

pub use quantiles::{Quantile, Quantiles};

use crate::WireDuration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

/// Every routing change subject.
pub const CHANGES_ALL: &str = "geolb.routing.>";

/// Subject of one kind of change of component `id`: `geolb.routing.<id>.<kind>`.
pub fn change_subject(id: &str, kind: &str) -> String {
    format!("geolb.routing.{id}.{kind}")
}

/// How a component checks a server (a NATS check: TCP connect, the INFO
/// line, PING answered by PONG, all within `timeout`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthCheck {
    /// Time between two checks of a server.
    pub interval: WireDuration,
    /// Time between checks while a server fails (0: `interval`).
    pub fast_interval: WireDuration,
    /// Consecutive failures that mark a healthy server down.
    pub threshold: u32,
    /// Consecutive passes that mark an unhealthy server up again.
    pub recovery: u32,
    /// Longest one check may take.
    pub timeout: WireDuration,
}

impl HealthCheck {
    /// Route 53's fast health checks: every 10 s, 3 failures to mark down
    /// and, as its failure threshold works both ways, 3 passes to mark up;
    /// 2 s for the check itself.
    pub fn route53_fast() -> HealthCheck {
        HealthCheck {
            interval: WireDuration::from_millis(10_000),
            fast_interval: WireDuration::default(),
            threshold: 3,
            recovery: 3,
            timeout: WireDuration::from_millis(2_000),
        }
    }

    /// The wait before the next check, given whether the last one failed.
    pub fn next_after(&self, failed: bool) -> Duration {
        match failed && !self.fast_interval.0.is_zero() {
            true => self.fast_interval.0,
            false => self.interval.0,
        }
    }

    /// Why these values cannot work, if they cannot.
    pub fn validate(&self, what: &str) -> Result<(), String> {
        if self.interval.0.is_zero() {
            return Err(format!("{what}.interval: use more than 0"));
        }
        if self.threshold == 0 || self.recovery == 0 {
            return Err(format!("{what}: threshold and recovery are 1 or more"));
        }
        if self.timeout.0.is_zero() {
            return Err(format!("{what}.timeout: use more than 0"));
        }
        Ok(())
    }
}

impl Default for HealthCheck {
    fn default() -> Self {
        HealthCheck::route53_fast()
    }
}

/// Round-trip times between regions: `from -> to -> milliseconds`.
pub type RttMatrix = BTreeMap<String, BTreeMap<String, f64>>;

/// Regions ordered nearest first from `from` by `rtt` (ties by name;
/// regions missing from the matrix last).
pub fn nearest_first<'a>(
    rtt: &RttMatrix,
    from: &str,
    regions: impl IntoIterator<Item = &'a str>,
) -> Vec<&'a str> {
    let mut regions: Vec<&str> = regions.into_iter().collect();
    regions.sort();
    regions.dedup();
    let distance = |to: &str| -> f64 {
        match from == to {
            true => -1.0,
            false => rtt
                .get(from)
                .and_then(|row| row.get(to))
                .copied()
                .unwrap_or(f64::MAX),
        }
    };
    regions.sort_by(|a, b| distance(a).total_cmp(&distance(b)).then(a.cmp(b)));
    regions
}

/// The reply of a routing component to any of its verbs, carrying its
/// state `S` after the verb.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply<S> {
    /// Protocol version.
    #[serde(default = "crate::default_version")]
    pub v: u32,
    /// The command id this answers.
    pub id: String,
    /// Whether it was applied.
    pub ok: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::ReplyError>,
    /// The state after it (a missing field is none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<S>,
}

/// One routing change as it is published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingEvent {
    /// Protocol version.
    #[serde(default = "crate::default_version")]
    pub v: u32,
    /// When it happened (ms since the Unix epoch).
    pub at_ms: u64,
    /// The component's id (`dns`, `anycast` in the lab).
    pub source: String,
    /// What the component is.
    pub component: Component,
    /// What changed.
    #[serde(flatten)]
    pub change: RoutingChange,
}

/// The kind of routing component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    /// A GeoDNS.
    Dns,
    /// An anycast router.
    Anycast,
}

impl RoutingEvent {
    /// The change, stamped now by `source`, a `component`.
    pub fn now(source: &str, component: Component, change: RoutingChange) -> RoutingEvent {
        RoutingEvent {
            v: crate::PROTOCOL_VERSION,
            at_ms: crate::now_ms(),
            source: source.to_string(),
            component,
            change,
        }
    }
}

/// What changed in a GeoDNS or an anycast router.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RoutingChange {
    /// A checked server was marked up or down.
    Health {
        /// Its id.
        server: String,
        /// Its region.
        region: String,
        /// Up or down now.
        healthy: bool,
        /// The last check's outcome.
        detail: String,
    },
    /// The GeoDNS answers a region differently; `serial` is the new version.
    Answers {
        /// The new version of all answers (also the SOA serial).
        serial: u32,
        /// The listener's region.
        region: String,
        /// The region it is answered as (another under `wrong_region`).
        answered_as: String,
        /// The A records, in order.
        addrs: Vec<Ipv4Addr>,
        /// The servers they lead to.
        servers: Vec<String>,
    },
    /// The GeoDNS's faults were set.
    Faults {
        /// All of them, as they are now.
        faults: dns::DnsFaults,
    },
    /// A region stopped announcing the anycast address.
    Withdrawn {
        /// The region.
        region: String,
        /// `explicit` or `health`.
        reason: String,
    },
    /// A region announces the anycast address again.
    Announced {
        /// The region.
        region: String,
        /// `explicit` or `health`.
        reason: String,
    },
    /// A vantage's route will change after `delay_ms`.
    FlipScheduled {
        /// The vantage's id.
        vantage: String,
        /// Where its clients live.
        region: String,
        /// Its site until the flip.
        from: Option<String>,
        /// Its site after.
        to: String,
        /// The drawn delay.
        delay_ms: u64,
    },
    /// A vantage's route changed: new connections go to `to`, and its
    /// established connections to `from` were reset.
    Flipped {
        /// The vantage's id.
        vantage: String,
        /// Where its clients live.
        region: String,
        /// Its old site.
        from: Option<String>,
        /// Its new site.
        to: String,
        /// How long after the withdrawal or announcement.
        delay_ms: u64,
        /// Established connections reset.
        reset: u64,
    },
    /// The anycast router's mode was changed.
    Mode {
        /// bgp or proxy.
        mode: anycast::AnycastMode,
    },
}

impl RoutingChange {
    /// The last token of its subject.
    pub fn kind(&self) -> &'static str {
        match self {
            RoutingChange::Health { .. } => "health",
            RoutingChange::Answers { .. } => "answers",
            RoutingChange::Faults { .. } => "faults",
            RoutingChange::Withdrawn { .. } => "withdrawn",
            RoutingChange::Announced { .. } => "announced",
            RoutingChange::FlipScheduled { .. } => "flip_scheduled",
            RoutingChange::Flipped { .. } => "flipped",
            RoutingChange::Mode { .. } => "mode",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_first_orders_by_rtt_then_name() {
        let rtt: RttMatrix = serde_json::from_str(
            r#"{"lon":{"ams":8,"dfw":105},"ams":{"lon":8,"dfw":115},"dfw":{"lon":105,"ams":115}}"#,
        )
        .unwrap();
        let all = ["dfw", "ams", "lon"];
        assert_eq!(nearest_first(&rtt, "lon", all), ["lon", "ams", "dfw"]);
        assert_eq!(nearest_first(&rtt, "dfw", all), ["dfw", "lon", "ams"]);
        assert_eq!(nearest_first(&rtt, "ams", ["dfw", "lon"]), ["lon", "dfw"]);
        assert_eq!(nearest_first(&rtt, "syd", all), ["ams", "dfw", "lon"]);
    }

    #[test]
    fn events_are_flat_json_with_a_kind() {
        let event = RoutingEvent {
            v: 1,
            at_ms: 5,
            source: "anycast".into(),
            component: Component::Anycast,
            change: RoutingChange::Flipped {
                vantage: "lon-anycast".into(),
                region: "lon".into(),
                from: Some("lon".into()),
                to: "ams".into(),
                delay_ms: 3100,
                reset: 2,
            },
        };
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            json,
            r#"{"v":1,"at_ms":5,"source":"anycast","component":"anycast","kind":"flipped","vantage":"lon-anycast","region":"lon","from":"lon","to":"ams","delay_ms":3100,"reset":2}"#
        );
        assert_eq!(serde_json::from_str::<RoutingEvent>(&json).unwrap(), event);
        assert_eq!(event.change.kind(), "flipped");
        let health: RoutingEvent = serde_json::from_str(
            r#"{"at_ms":1,"source":"dns","component":"dns","kind":"health","server":"lon-1","region":"lon","healthy":false,"detail":"refused"}"#,
        )
        .unwrap();
        assert_eq!(health.v, 1);
        assert_eq!(
            change_subject("dns", health.change.kind()),
            "geolb.routing.dns.health"
        );
    }

    #[test]
    fn health_check_defaults_are_route53_fast() {
        let h: HealthCheck = serde_json::from_str("{}").unwrap();
        assert_eq!(h.interval.0, Duration::from_secs(10));
        assert_eq!((h.threshold, h.recovery), (3, 3));
        assert_eq!(h.next_after(true), Duration::from_secs(10));
        let fast = HealthCheck {
            fast_interval: WireDuration::from_millis(1000),
            ..h.clone()
        };
        assert_eq!(fast.next_after(true), Duration::from_secs(1));
        assert_eq!(fast.next_after(false), Duration::from_secs(10));
        let zero = HealthCheck { threshold: 0, ..h };
        assert!(zero.validate("dns.health").is_err());
    }
}
