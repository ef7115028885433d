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
    /// Up, cut or reset.
    pub state: LinkState,
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

    /// The round-trip time the link adds (without jitter).
    pub fn rtt(&self) -> Duration {
        self.delay_out + self.delay_back
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
            state: LinkState::Cut,
        };
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(
            json,
            r#"{"delay_out_ms":0.25,"delay_back_ms":52.0,"jitter_ms":1.5,"state":"cut"}"#
        );
        assert_eq!(serde_json::from_str::<LinkConfig>(&json).unwrap(), c);
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
    fn symmetric_splits_the_rtt() {
        let c = LinkConfig::symmetric(Duration::from_micros(501));
        assert_eq!(c.rtt(), Duration::from_micros(501));
        assert_eq!(c.delay_out, Duration::from_nanos(250_500));
        assert_eq!(c.state, LinkState::Up);
    }
}
