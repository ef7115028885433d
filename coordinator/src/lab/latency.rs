//! The lab's latency matrix: the round trip within a region and between
//! each pair of regions, checked against the regions the lab has.

use super::config::ConfigError;
use geolb_proto::WireDuration;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Round-trip times between and within regions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LatencyConfig {
    /// Round-trip time within a region.
    pub intra_region: WireDuration,
    /// Round-trip time of each pair, keyed `"a-b"` (either order, once).
    pub pairs: BTreeMap<String, WireDuration>,
}

impl Default for LatencyConfig {
    fn default() -> Self {
        let ms = |m: u64| WireDuration::from_millis(m);
        LatencyConfig {
            intra_region: WireDuration(Duration::from_micros(500)),
            pairs: [
                ("lon-ams", ms(8)),
                ("lon-dfw", ms(105)),
                ("ams-dfw", ms(115)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        }
    }
}

impl LatencyConfig {
    /// The round-trip time between regions `a` and `b` of `regions` (the
    /// same region: intra-region).
    pub fn rtt(&self, regions: &[String], a: &str, b: &str) -> Duration {
        if a == b {
            return self.intra_region.0;
        }
        let pairs = self.matrix(regions).unwrap_or_default();
        pairs.get(&ordered(a, b)).copied().unwrap_or_default()
    }

    /// Every pair's RTT, keyed by the pair in sorted order; refuses unknown
    /// regions, missing pairs, and a pair given twice with different values.
    pub fn matrix(
        &self,
        regions: &[String],
    ) -> Result<BTreeMap<(String, String), Duration>, ConfigError> {
        let mut matrix = BTreeMap::new();
        for (key, rtt) in &self.pairs {
            let (a, b) = key.split_once('-').ok_or_else(|| {
                ConfigError::Invalid(format!("latency.pairs: {key:?} is not \"region-region\""))
            })?;
            for region in [a, b] {
                if !regions.iter().any(|r| r == region) {
                    return Err(ConfigError::Invalid(format!(
                        "latency.pairs: {key:?} names {region:?}, which is not in regions {:?}",
                        regions
                    )));
                }
            }
            if a == b {
                return Err(ConfigError::Invalid(format!(
                    "latency.pairs: {key:?} pairs a region with itself; use latency.intra_region"
                )));
            }
            if let Some(old) = matrix.insert(ordered(a, b), rtt.0) {
                if old != rtt.0 {
                    return Err(ConfigError::Invalid(format!(
                        "latency.pairs: {a} and {b} are given two round-trip times ({old:?} and {:?}); keep one",
                        rtt.0
                    )));
                }
            }
        }
        for (i, a) in regions.iter().enumerate() {
            for b in &regions[i + 1..] {
                if !matrix.contains_key(&ordered(a, b)) {
                    return Err(ConfigError::Invalid(format!(
                        "latency.pairs: no round-trip time for {a}-{b}; add \"{a}-{b}\" = \"20ms\""
                    )));
                }
            }
        }
        Ok(matrix)
    }
}

fn ordered(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}
