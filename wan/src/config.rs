//! What a link does to its traffic: one-way delays, jitter and a state.

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
#[serde(default)]
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
    fn symmetric_splits_the_rtt() {
        let c = LinkConfig::symmetric(Duration::from_micros(501));
        assert_eq!(c.rtt(), Duration::from_micros(501));
        assert_eq!(c.delay_out, Duration::from_nanos(250_500));
        assert_eq!(c.state, LinkState::Up);
    }
}
