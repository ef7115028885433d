//! Scenario reports: what every client saw, a summary by strategy, pass or
//! fail against the thresholds, and a timeline. Printed as a table, written
//! as JSON (`--report FILE`), and kept in JetStream on the control plane
//! (`geolb report ls`, `geolb report show ID`).
//!
//! The JSON keys are a contract for other tools: `scenario`, `params`,
//! `started_at`, `finished_at`, `passed`, `reasons`, `timeline`, `clients`,
//! `summary.by_strategy.<strategy>`, `fleet` (where it ran), and for rolling
//! upgrades `servers` and `duration_ms`.

pub mod cli;
pub mod print;
pub mod store;
pub mod summary;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use geolb_proto::scenario::TimelineEntry;

/// What one client saw.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ClientOutcome {
    /// Client id.
    pub id: String,
    /// Where it lives.
    pub region: String,
    /// rtt, random or ordered.
    pub strategy: String,
    /// Every gap it had during the scenario, in ms.
    pub gaps_ms: Vec<u64>,
    /// The region it was in when the fault phase ended.
    pub landed_region: Option<String>,
    /// The region it should have been in.
    pub expected_region: String,
    /// Server switches during the scenario.
    pub switches: u32,
    /// Messages sent during the scenario.
    pub sent: u64,
    /// Messages received.
    pub received: u64,
    /// Messages it missed, from every sender.
    pub lost: u64,
    /// Of those, messages sent by clients of its own strategy.
    #[serde(default)]
    pub lost_same_strategy: u64,
    /// Of those, messages from such clients in other regions (they cross a
    /// gateway, and a restarted server's gateway peers reconnect only after
    /// about a second).
    #[serde(default)]
    pub lost_same_strategy_cross_region: u64,
    /// Copies received twice.
    pub duplicated: u64,
    /// How long after its start it was first connected, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_after_ms: Option<u64>,
    /// Probe PINGs it sent per second before the fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_rate: Option<f64>,
    /// Connections it lost during the scenario (a reset, a killed server).
    #[serde(default)]
    pub lost_connections: u32,
    /// The region it was on before the fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_at_start: Option<String>,
    /// The region it was on at the end (after the failback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region_at_end: Option<String>,
    /// `dns` and `anycast`: connection attempts that found nothing, during the scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_attempts: Option<u64>,
    /// `dns`: from the GeoDNS's new answer for its region to its first
    /// lookup that got it, ms (none: it never did in the run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_ms: Option<u64>,
    /// `dns`: it never got the GeoDNS's new answer in the run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale_at_end: bool,
    /// `anycast`: the delay of its vantage's flip after the withdrawal, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flip_ms: Option<u64>,
    /// Its home: the region it lives in, or the nearest with servers.
    #[serde(default)]
    pub home_region: String,
}

/// Percentiles of failover gaps, ms.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct GapStats {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// Message counters.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Messages {
    /// Sent.
    pub sent: u64,
    /// Received.
    pub received: u64,
    /// Lost (missed by these clients, from any sender).
    pub lost: u64,
    /// Lost among these clients: sent and missed by clients of this strategy.
    #[serde(default)]
    pub lost_same_strategy: u64,
    /// Of those, across regions (through gateways).
    #[serde(default)]
    pub lost_same_strategy_cross_region: u64,
    /// Duplicated.
    pub duplicated: u64,
}

/// The summary of one strategy.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StrategySummary {
    /// Clients of this strategy.
    pub clients: u32,
    /// Failover gaps of the clients that had one.
    pub failover_gap_ms: GapStats,
    /// Clients that had a gap.
    pub clients_with_gaps: u32,
    /// Percent of clients that landed where expected.
    pub landed_expected_pct: f64,
    /// Messages.
    pub messages: Messages,
    /// Server switches per client (thrash).
    pub switches_per_client: f64,
    /// Time from a client's start to its first connection, ms.
    #[serde(default)]
    pub first_connect_ms: GapStats,
    /// Connections lost per client during the scenario (resets per withdrawal, for anycast).
    #[serde(default)]
    pub lost_connections_per_client: f64,
    /// Percent of clients in their home (nearest) region before the fault.
    #[serde(default)]
    pub home_at_start_pct: f64,
    /// Percent of clients in their home region at the end (after the failback).
    #[serde(default)]
    pub home_at_end_pct: f64,
    /// `dns`, `anycast`: attempts on dead addresses per client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_attempts_per_client: Option<f64>,
    /// `dns`: how long clients kept using the old answer after the GeoDNS changed it, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_ms: Option<GapStats>,
    /// `dns`: percent of clients that never got the new answer in the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stale_at_end_pct: Option<f64>,
    /// `anycast`: the flip delays of the clients' vantages, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flip_ms: Option<GapStats>,
}

/// The summary.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Summary {
    /// By strategy.
    pub by_strategy: BTreeMap<String, StrategySummary>,
}

/// One server of a rolling upgrade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerVersions {
    /// Agent id.
    pub id: String,
    /// Version before.
    pub version_before: Option<String>,
    /// Version after.
    pub version_after: Option<String>,
}

/// What the report says about where a scenario ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetSummary {
    /// `lab` or `control`.
    pub source: String,
    /// The control plane (no secrets).
    pub control: String,
    /// Regions with servers.
    pub regions: Vec<String>,
    /// Live server agents when the run began.
    pub servers: u32,
    /// Clients reporting when the run began.
    pub clients: u32,
    /// Link controls found (emulators' and agents' front links).
    pub links: u32,
    /// Whether the report was kept in the control plane's history (JetStream).
    pub history: bool,
}

/// A scenario report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Report id (unique, sortable by time).
    pub id: String,
    /// Scenario name.
    pub scenario: String,
    /// Its parameters, as given with defaults filled in.
    pub params: serde_json::Value,
    /// Start, RFC 3339.
    pub started_at: String,
    /// End, RFC 3339.
    pub finished_at: String,
    /// Whether every threshold was met.
    pub passed: bool,
    /// Why not (empty when passed).
    pub reasons: Vec<String>,
    /// Every fault and every client event.
    pub timeline: Vec<TimelineEntry>,
    /// Every client.
    pub clients: Vec<ClientOutcome>,
    /// The summary.
    pub summary: Summary,
    /// For rolling upgrades: every server's versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servers: Option<Vec<ServerVersions>>,
    /// How long the scenario's main phase took (rolling upgrades).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// After a restore, how long until every `rtt` client was home again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_home_ms: Option<u64>,
    /// Where it ran (reports of earlier versions have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetSummary>,
    /// When the routing systems noticed the fault (runs with a GeoDNS or an anycast router).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<RoutingFigures>,
}

/// When the routing systems noticed a fault, ms after it began: the
/// detection part of the `dns` and `anycast` clients' recovery.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RoutingFigures {
    /// The GeoDNS marked the first server of the failed region down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_marked_down_ms: Option<u64>,
    /// The GeoDNS's answers stopped naming the failed region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_answers_changed_ms: Option<u64>,
    /// The failed region withdrew the anycast address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anycast_withdrawn_ms: Option<u64>,
}

/// RFC 3339 UTC text of a time in ms since the epoch.
pub fn rfc3339(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_763_712_000_123), "2025-11-21T08:00:00.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
