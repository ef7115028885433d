//! The lab's configuration (`lab.toml`): regions, servers and clients per
//! region, the latency matrix, the nats-server version and the ports. Every
//! field has a default, so an empty file (or none) is the default lab:
//! `lon`, `ams`, `dfw`, three servers each, with real round-trip times.

pub use super::latency::LatencyConfig;
use geolb_proto::subject::validate_name;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The whole lab configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LabConfig {
    /// Region names, in order.
    pub regions: Vec<String>,
    /// nats-server servers per region.
    pub servers_per_region: u32,
    /// The nats-server version the lab starts with (installed by `make tools`).
    pub nats_version: String,
    /// First port of the range the lab uses on 127.0.0.1.
    pub ports_base: u16,
    /// Clients in every region.
    pub clients: ClientsConfig,
    /// Round-trip times.
    pub latency: LatencyConfig,
    /// Telemetry and reports to S3 (none by default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive: Option<crate::archive::lab::ArchiveConfig>,
    /// The GeoDNS of the `dns` clients.
    pub dns: super::routing_config::DnsLabConfig,
    /// The anycast router of the `anycast` clients.
    pub anycast: super::routing_config::AnycastLabConfig,
}

/// Clients per region, by strategy, and their traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientsConfig {
    /// `rtt` clients per region.
    pub rtt: u32,
    /// `random` clients per region.
    pub random: u32,
    /// `ordered` clients per region.
    pub ordered: u32,
    /// `dns` clients per region (default 2; 0 in containers, which have no
    /// GeoDNS: A records carry no port and the emulator's container has one
    /// address per region network).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<u32>,
    /// `anycast` clients per region (default 2; 0 in containers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anycast: Option<u32>,
    /// rtt, random and ordered clients run this many to a process
    /// (`client --count`); their numbers are multiples of it.
    pub per_process: u32,
    /// Traffic profile: json, html or video.
    pub profile: String,
    /// Messages per second per client.
    pub rate: f64,
    /// Traffic shards (each client hears the senders of its shard in every
    /// region); default: one for every [`SHARD_SIZE`] clients of the lab.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<u32>,
    /// What messages carry after their header: a file path (stored on the
    /// lab's control plane at `lab up`) or `obj:NAME` (stored with `geolb data
    /// put`); filler when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

impl Default for LabConfig {
    fn default() -> Self {
        LabConfig {
            regions: ["lon", "ams", "dfw"].map(String::from).to_vec(),
            servers_per_region: 3,
            nats_version: geolb_proto::DEFAULT_NATS_VERSION.into(),
            ports_base: 14_000,
            clients: ClientsConfig::default(),
            latency: LatencyConfig::default(),
            archive: None,
            dns: Default::default(),
            anycast: Default::default(),
        }
    }
}

impl Default for ClientsConfig {
    fn default() -> Self {
        ClientsConfig {
            rtt: 4,
            random: 2,
            ordered: 0,
            dns: None,
            anycast: None,
            per_process: 1,
            profile: "json".into(),
            rate: 5.0,
            shards: None,
            payload: None,
        }
    }
}

/// A configuration that cannot make a lab.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The file is not valid TOML or has an unknown key.
    #[error("{0}")]
    Parse(String),
    /// Something is out of range or inconsistent.
    #[error("{0}")]
    Invalid(String),
}

impl LabConfig {
    /// Parses and checks a `lab.toml`.
    pub fn parse(text: &str) -> Result<LabConfig, ConfigError> {
        let config: LabConfig =
            toml::from_str(text).map_err(|e| ConfigError::Parse(format!("lab config: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges, names and the latency matrix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.regions.is_empty() || self.regions.len() > 8 {
            return invalid(format!(
                "regions: give 1 to 8 regions, not {}",
                self.regions.len()
            ));
        }
        for (i, region) in self.regions.iter().enumerate() {
            validate_name("region", region).map_err(|e| ConfigError::Invalid(e.to_string()))?;
            if self.regions[..i].contains(region) {
                return invalid(format!("regions: {region:?} is listed twice"));
            }
        }
        if !(1..=9).contains(&self.servers_per_region) {
            return invalid(format!(
                "servers_per_region: use 1 to 9, not {}",
                self.servers_per_region
            ));
        }
        let c = &self.clients;
        if !(1..=geolb_proto::client::MAX_COUNT).contains(&c.per_process) {
            return invalid(format!(
                "clients.per_process: use 1 to {}, not {}",
                geolb_proto::client::MAX_COUNT,
                c.per_process
            ));
        }
        for (name, n) in [("rtt", c.rtt), ("random", c.random), ("ordered", c.ordered)] {
            if n > c.per_process && n % c.per_process != 0 {
                return invalid(format!(
                    "clients.{name} = {n} is not a multiple of clients.per_process = {}: \
                     each process runs that many clients",
                    c.per_process
                ));
            }
        }
        let processes = [c.rtt, c.random, c.ordered]
            .iter()
            .map(|&n| n.div_ceil(c.per_process))
            .sum::<u32>()
            + c.dns()
            + c.anycast();
        if processes > 100 {
            return invalid(format!(
                "clients: at most 100 client processes per region on one machine, not {processes}; \
                 run more clients in each with clients.per_process"
            ));
        }
        if c.rtt + c.random + c.ordered > 2000 {
            return invalid("clients: at most 2000 per region on one machine".into());
        }
        if !["json", "html", "video"].contains(&c.profile.as_str()) {
            return invalid(format!(
                "clients.profile: {:?} is not json, html or video",
                c.profile
            ));
        }
        if !(c.rate > 0.0 && c.rate <= 1000.0) {
            return invalid(format!(
                "clients.rate: use more than 0 and at most 1000 per second, not {}",
                c.rate
            ));
        }
        if c.shards == Some(0) {
            return invalid("clients.shards: use 1 or more".into());
        }
        if let Some(name) = c
            .payload
            .as_deref()
            .and_then(geolb_proto::objects::reference)
        {
            geolb_proto::objects::validate_name(name)
                .map_err(|e| ConfigError::Invalid(format!("clients.payload: {e}")))?;
        }
        if self.ports_base < 1024 || self.ports_base as usize + self.ports_needed() > 60_000 {
            return invalid(format!(
                "ports_base: {} leaves no room for the {} ports the lab needs; use 1024 to {}",
                self.ports_base,
                self.ports_needed(),
                60_000 - self.ports_needed()
            ));
        }
        if let Some(archive) = &self.archive {
            archive.validate().map_err(ConfigError::Invalid)?;
        }
        self.dns.validate()?;
        self.anycast.validate()?;
        self.latency.matrix(&self.regions).map(|_| ())
    }

    /// How many consecutive ports the lab uses from `ports_base`.
    pub fn ports_needed(&self) -> usize {
        let r = self.regions.len();
        let per_region = self.servers_per_region as usize;
        let s = r * per_region;
        // Control plane (2); per server: client, http, route, gateway; per
        // region, a gateway link to every server of the other regions and a
        // client link to every server; the dns links' common port; per
        // region a GeoDNS listener and an anycast vantage.
        2 + s * 4 + r * (s - per_region) + r * s + 1 + 2 * r
    }

    /// The round-trip time between two regions (the same region: intra-region).
    pub fn rtt(&self, a: &str, b: &str) -> Duration {
        self.latency.rtt(&self.regions, a, b)
    }
}

/// The clients a traffic shard holds when `clients.shards` is not set: a
/// client then hears about as many senders in a lab of a thousand clients
/// as in one of thirty (with a fixed number of shards, what every client
/// hears grows with the lab, and the traffic with its square).
pub const SHARD_SIZE: u32 = 8;

impl ClientsConfig {
    /// Traffic shards of a lab of `regions` regions: as configured, else one
    /// for every [`SHARD_SIZE`] of its clients.
    pub fn shards(&self, regions: usize) -> u32 {
        let clients = self.rtt + self.random + self.ordered + self.dns() + self.anycast();
        self.shards
            .unwrap_or_else(|| (clients * regions as u32).div_ceil(SHARD_SIZE).max(1))
    }

    /// `dns` clients per region: as configured, else 2.
    pub fn dns(&self) -> u32 {
        self.dns.unwrap_or(2)
    }

    /// `anycast` clients per region: as configured, else 2.
    pub fn anycast(&self) -> u32 {
        self.anycast.unwrap_or(2)
    }

    /// These clients for a lab in containers: `dns` and `anycast` default
    /// to 0 there, and are refused when given.
    pub fn for_containers(&self) -> Result<ClientsConfig, ConfigError> {
        for (strategy, count) in [("dns", self.dns), ("anycast", self.anycast)] {
            if count.unwrap_or(0) > 0 {
                return Err(ConfigError::Invalid(format!(
                    "clients.{strategy}: the lab in containers has no GeoDNS or anycast router yet; \
                     run `geolb lab up` without --docker (the process lab) for {strategy} clients, \
                     or set clients.{strategy} = 0"
                )));
            }
        }
        Ok(ClientsConfig {
            dns: Some(0),
            anycast: Some(0),
            ..self.clone()
        })
    }
}

/// The commented default configuration `geolb lab init` writes (kept in
/// `template.toml`, where it reads as the file a user gets).
pub const TEMPLATE: &str = include_str!("template.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_is_the_default() {
        assert_eq!(LabConfig::parse(TEMPLATE).unwrap(), LabConfig::default());
        assert_eq!(LabConfig::parse("").unwrap(), LabConfig::default());
    }

    #[test]
    fn shards_grow_with_the_lab_unless_set() {
        let default = LabConfig::default();
        assert_eq!(default.clients.shards(3), 4, "30 clients");
        let big = LabConfig::parse(
            "[clients]\nrtt = 334\nrandom = 0\ndns = 0\nanycast = 0\nper_process = 167\n",
        )
        .unwrap();
        assert_eq!(big.clients.shards(3), 126, "1,002 clients, 8 a shard");
        let set =
            LabConfig::parse("[clients]\nrtt = 334\nper_process = 167\nrandom = 0\nshards = 4\n")
                .unwrap();
        assert_eq!(set.clients.shards(3), 4);
        assert!(LabConfig::parse("[clients]\nshards = 0\n").is_err());
    }

    #[test]
    fn the_templates_archive_section_parses_once_uncommented() {
        let text: String = TEMPLATE
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if rest.starts_with('[') || rest.contains(" = ") => rest,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let config = LabConfig::parse(&text).unwrap();
        let archive = config.archive.expect("an [archive] section");
        assert_eq!(archive.to, "s3://geolb-telemetry/lab");
        assert_eq!(archive.region.as_deref(), Some("us-west-004"));
        assert!(archive.telemetry);
    }

    #[test]
    fn other_regions_work() {
        let config = LabConfig::parse(
            r#"regions = ["sgp", "nyc", "fra", "syd", "gru"]
            [latency.pairs]
            "sgp-nyc" = "230ms"
            "sgp-fra" = "160ms"
            "sgp-syd" = "95ms"
            "sgp-gru" = "330ms"
            "nyc-fra" = "80ms"
            "nyc-syd" = "200ms"
            "nyc-gru" = "120ms"
            "fra-syd" = "250ms"
            "fra-gru" = "200ms"
            "syd-gru" = "310ms""#,
        )
        .unwrap();
        assert_eq!(config.rtt("fra", "sgp"), Duration::from_millis(160));
        assert_eq!(config.rtt("sgp", "sgp"), Duration::from_micros(500));
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        let cases = [
            ("colour = 1", "unknown field"),
            ("[latency.pairs]\n\"lon-ams\" = \"-8ms\"", "negative"),
            ("[latency.pairs]\n\"lon-ams\" = \"8ms\"\n\"ams-lon\" = \"9ms\"", "two round-trip times"),
            ("regions = [\"lon\", \"ams\"]\n[latency.pairs]\n\"lon-ams\" = \"8ms\"\n\"lon-dfw\" = \"1ms\"", "not in regions"),
            ("regions = [\"lon\", \"sgp\"]\n[latency.pairs]\n\"lon-sgp\" = \"8ms\"\n\"lon-ams\" = \"1ms\"", "not in regions"),
            ("regions = [\"lon\", \"ams\", \"sgp\"]\n[latency.pairs]\n\"lon-ams\" = \"8ms\"", "no round-trip time for lon-sgp"),
            ("regions = [\"lon\", \"lon\"]", "twice"),
            ("regions = [\"a.b\"]", "not a valid name"),
            ("servers_per_region = 0", "servers_per_region"),
            ("ports_base = 80", "ports_base"),
            ("[clients]\nprofile = \"audio\"", "profile"),
            ("[clients]\nrate = 0", "rate"),
            ("[clients]\npayload = \"obj:../x\"", "payload"),
            ("[archive]\nto = \"geolb/lab\"", "archive.to"),
            ("[archive]\nto = \"s3://geolb\"\nbucket = \"x\"", "unknown field"),
            ("[clients]\ncarrier_pigeon = 2", "unknown field"),
            ("[clients]\nper_process = 0", "per_process"),
            ("[clients]\nrtt = 150\nper_process = 100", "not a multiple"),
            ("[clients]\nrtt = 101", "client processes per region"),
            ("[clients]\nrtt = 3000\nper_process = 100", "at most 2000"),
            ("[dns]\nttl = \"-30s\"", "negative"),
            ("[dns]\nttl = \"0s\"", "dns.ttl"),
            ("[dns]\nttl = \"1500ms\"", "whole seconds"),
            ("[dns]\npolicy = \"random\"", "unknown variant"),
            ("[dns]\nname = \"nats\"", "dns.name"),
            ("[dns]\nthreshold = 0", "threshold"),
            ("[dns.stale]\nshare = 1.5", "share"),
            ("[anycast]\nmode = \"ospf\"", "unknown variant"),
            ("[anycast]\nflip = [{ p = 0.5, value = \"3s\" }]", "anycast.flip"),
        ];
        for (text, want) in cases {
            let err = LabConfig::parse(text).expect_err(text).to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
