//! The WAN emulator on the wire: what a link does to its traffic (one-way
//! delays, jitter and a state), and the commands that change it.
//!
//! An emulator process (`geolb-agent wan`) registers as the micro service
//! [`SERVICE_NAME`] with the endpoints `list` and `set` on
//! `geolb.wan.<id>.<verb>`. Requests are [`crate::Command`]s (an id and
//! arguments, as for agents); `set` takes [`SetLinks`]; both answer a
//! [`WanReply`] listing the links they touched (or all, for `list`).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Whether a link forwards, holds or refuses traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// Traffic flows with the configured delays.
    #[default]
    Up,
    /// A partition: connections hang, data is held (not lost) until the link is up again.
    Cut,
    /// Connections are reset (RST) and new ones are reset at once, until the link is up again.
    Reset,
}

impl fmt::Display for LinkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkState::Up => "up",
            LinkState::Cut => "cut",
            LinkState::Reset => "reset",
        })
    }
}

/// The behaviour of one link, changeable at run time.
///
/// In JSON the durations are milliseconds as numbers (fractions allowed), every field
/// is optional: `{"delay_out_ms": 4, "delay_back_ms": 4, "jitter_ms": 0.2, "state": "up"}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkConfig {
    /// One-way delay from the dialler to the target.
    #[serde(rename = "delay_out_ms", with = "millis")]
    pub delay_out: Duration,
    /// One-way delay from the target back to the dialler.
    #[serde(rename = "delay_back_ms", with = "millis")]
    pub delay_back: Duration,
    /// Extra delay per chunk, uniform in `0..=jitter`; never reorders data.
    #[serde(rename = "jitter_ms", with = "millis")]
    pub jitter: Duration,
    /// Share of chunks lost and retransmitted, in percent (0 to 100): a
    /// lost chunk is delivered one retransmission timeout late
    /// ([`RETRANSMIT_TIMEOUT`] plus the link's round trip), and what follows
    /// waits behind it, as TCP hides a loss from the application.
    #[serde(rename = "loss_pct", with = "percent", skip_serializing_if = "is_zero")]
    pub loss_ppm: u32,
    /// Up, cut or reset.
    pub state: LinkState,
}

/// Linux's least retransmission timeout: what a lost segment costs at least.
pub const RETRANSMIT_TIMEOUT: Duration = Duration::from_millis(200);

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl LinkConfig {
    /// An up link with half of `rtt` in each direction and no jitter.
    pub fn symmetric(rtt: Duration) -> Self {
        let half = rtt / 2;
        LinkConfig {
            delay_out: half,
            delay_back: rtt - half,
            ..Self::default()
        }
    }

    /// This config with another state.
    pub fn with_state(self, state: LinkState) -> Self {
        LinkConfig { state, ..self }
    }

    /// This config with another jitter.
    pub fn with_jitter(self, jitter: Duration) -> Self {
        LinkConfig { jitter, ..self }
    }

    /// This config with `pct` percent of chunks lost (clamped to 0..=100).
    pub fn with_loss_pct(self, pct: f64) -> Self {
        LinkConfig {
            loss_ppm: percent::to_ppm(pct),
            ..self
        }
    }

    /// The round-trip time the link adds (without jitter).
    pub fn rtt(&self) -> Duration {
        self.delay_out + self.delay_back
    }

    /// This config made worse by `extra`: its delays added to each
    /// direction, its jitter and loss added, its state taken when not up.
    pub fn degraded_by(self, extra: &LinkConfig) -> Self {
        LinkConfig {
            delay_out: self.delay_out + extra.delay_out,
            delay_back: self.delay_back + extra.delay_back,
            jitter: self.jitter + extra.jitter,
            loss_ppm: (self.loss_ppm + extra.loss_ppm).min(1_000_000),
            state: match extra.state {
                LinkState::Up => self.state,
                other => other,
            },
        }
    }
}

/// Loss as a floating-point percentage on the wire, parts per million inside.
mod percent {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn to_ppm(pct: f64) -> u32 {
        (pct.clamp(0.0, 100.0) * 10_000.0).round() as u32
    }

    pub fn serialize<S: Serializer>(ppm: &u32, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(f64::from(*ppm) / 10_000.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let pct = f64::deserialize(d)?;
        if !(0.0..=100.0).contains(&pct) {
            return Err(D::Error::custom(format!(
                "loss {pct}% is not a percentage from 0 to 100"
            )));
        }
        Ok(to_ppm(pct))
    }
}

/// Durations as floating-point milliseconds.
mod millis {
    use std::time::Duration;

    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_nanos() as f64 / 1e6)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        let ns = (ms * 1e6).round();
        if !(0.0..=1e18).contains(&ns) {
            return Err(D::Error::custom(format!(
                "{ms} is not a valid number of milliseconds"
            )));
        }
        Ok(Duration::from_nanos(ns as u64))
    }
}

/// Name of the micro service every emulator registers.
pub const SERVICE_NAME: &str = "geolb-wan";

/// Subject of one verb (`list` or `set`) on one emulator: `geolb.wan.<id>.<verb>`.
pub fn subject(emulator_id: &str, verb: &str) -> String {
    format!("geolb.wan.{emulator_id}.{verb}")
}

/// What a link carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Carries {
    /// Client connections (NATS, WebSocket or leaf node clients).
    Client,
    /// Gateway connections between regions.
    Gateway,
}

impl fmt::Display for Carries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Carries::Client => "client",
            Carries::Gateway => "gateway",
        })
    }
}

/// Which regions a link joins and what it carries, so scenarios choose
/// links by region rather than by a naming convention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkPath {
    /// Client or gateway traffic.
    pub carries: Carries,
    /// The region its diallers are in; `None` for a link anyone may dial
    /// (an agent's front link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The region of the server it leads to.
    pub to: String,
    /// The server (agent id) it leads to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}

impl LinkPath {
    /// Whether cutting this link is part of cutting `region` off: every
    /// path into the region, and its gateways out.
    pub fn into_or_out_of(&self, region: &str) -> bool {
        self.to == region
            || (self.carries == Carries::Gateway && self.from.as_deref() == Some(region))
    }
}

/// One link of an emulator's links file (written by the lab).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// Unique name, e.g. `gw:lon->ams/0` or `cl:lon->ams-1`.
    pub name: String,
    /// Address to listen on (`127.0.0.1:PORT`).
    pub listen: String,
    /// Address to forward to.
    pub target: String,
    /// Behaviour at start.
    #[serde(default)]
    pub config: LinkConfig,
    /// The regions it joins; a link without one is never chosen by a scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<LinkPath>,
}

/// Arguments of `set`: which links, and their new behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetLinks {
    /// Link names; a name ending in `*` matches every link with that prefix.
    pub links: Vec<String>,
    /// The behaviour they all get.
    pub config: LinkConfig,
}

impl SetLinks {
    /// Whether `name` is one of the links meant.
    pub fn matches(&self, name: &str) -> bool {
        self.links
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == pattern,
            })
    }
}

/// One link as the emulator reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkView {
    /// Its name.
    pub name: String,
    /// Where it listens.
    pub listen: String,
    /// Where it forwards to.
    pub target: String,
    /// Its behaviour.
    pub config: LinkConfig,
    /// Connections open now.
    pub open: u64,
    /// The regions it joins, when its emulator was told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<LinkPath>,
}

/// The answer to `list` and `set`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WanReply {
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
    /// The links listed or changed.
    pub links: Vec<LinkView>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let c = LinkConfig {
            delay_out: Duration::from_micros(250),
            delay_back: Duration::from_millis(52),
            jitter: Duration::from_micros(1500),
            loss_ppm: 0,
            state: LinkState::Cut,
        };
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(
            json,
            r#"{"delay_out_ms":0.25,"delay_back_ms":52.0,"jitter_ms":1.5,"state":"cut"}"#
        );
        assert_eq!(serde_json::from_str::<LinkConfig>(&json).unwrap(), c);
        let lossy = c.with_loss_pct(2.5);
        assert_eq!(lossy.loss_ppm, 25_000);
        let json = serde_json::to_string(&lossy).unwrap();
        assert!(json.contains(r#""loss_pct":2.5"#), "{json}");
        assert_eq!(serde_json::from_str::<LinkConfig>(&json).unwrap(), lossy);
        assert!(serde_json::from_str::<LinkConfig>(r#"{"loss_pct": 101}"#).is_err());
        assert!(serde_json::from_str::<LinkConfig>(r#"{"loss_pct": -1}"#).is_err());
    }

    #[test]
    fn hand_written_json_with_defaults() {
        let c: LinkConfig =
            serde_json::from_str(r#"{"delay_out_ms": 4, "state": "reset"}"#).unwrap();
        assert_eq!(c.delay_out, Duration::from_millis(4));
        assert_eq!(c.delay_back, Duration::ZERO);
        assert_eq!(c.state, LinkState::Reset);
        assert!(serde_json::from_str::<LinkConfig>(r#"{"jitter_ms": -1}"#).is_err());
    }

    #[test]
    fn set_links_match_names_and_prefixes() {
        let set: SetLinks = serde_json::from_str(
            r#"{"links":["gw:lon->ams/0","cl:*->lon-*"],"config":{"state":"cut"}}"#,
        )
        .unwrap();
        assert!(set.matches("gw:lon->ams/0"));
        assert!(!set.matches("gw:lon->ams/1"));
        assert!(
            set.matches("cl:*->lon-2"),
            "a literal * before the last is not a glob"
        );
        assert!(serde_json::from_str::<SetLinks>(r#"{"links":[],"config":{"nope":1}}"#).is_err());
    }

    #[test]
    fn degrading_adds_to_a_link() {
        let base = LinkConfig::symmetric(Duration::from_millis(8));
        let extra = LinkConfig::symmetric(Duration::from_millis(100))
            .with_jitter(Duration::from_millis(5))
            .with_loss_pct(1.0);
        let worse = base.degraded_by(&extra);
        assert_eq!(worse.rtt(), Duration::from_millis(108));
        assert_eq!(worse.jitter, Duration::from_millis(5));
        assert_eq!(worse.loss_ppm, 10_000);
        assert_eq!(worse.state, LinkState::Up);
        let cut = base.degraded_by(&LinkConfig::default().with_state(LinkState::Cut));
        assert_eq!((cut.rtt(), cut.state), (base.rtt(), LinkState::Cut));
    }

    #[test]
    fn link_paths_say_what_a_partition_cuts() {
        let path = |carries, from: Option<&str>, to: &str| LinkPath {
            carries,
            from: from.map(String::from),
            to: to.into(),
            server: None,
        };
        assert!(path(Carries::Client, Some("ams"), "lon").into_or_out_of("lon"));
        assert!(path(Carries::Client, None, "lon").into_or_out_of("lon"));
        assert!(path(Carries::Gateway, Some("lon"), "ams").into_or_out_of("lon"));
        assert!(
            !path(Carries::Client, Some("lon"), "ams").into_or_out_of("lon"),
            "lon's clients still reach ams"
        );
        let spec: LinkSpec = serde_json::from_str(
            r#"{"name":"cl:lon->ams-1","listen":"127.0.0.1:1","target":"127.0.0.1:2",
                "path":{"carries":"client","from":"lon","to":"ams","server":"ams-1"}}"#,
        )
        .unwrap();
        assert_eq!(spec.path.unwrap().server.as_deref(), Some("ams-1"));
    }

    #[test]
    fn symmetric_splits_the_rtt() {
        let c = LinkConfig::symmetric(Duration::from_micros(501));
        assert_eq!(c.rtt(), Duration::from_micros(501));
        assert_eq!(c.delay_out, Duration::from_nanos(250_500));
        assert_eq!(c.state, LinkState::Up);
    }
}
