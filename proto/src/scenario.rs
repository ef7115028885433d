//! A running scenario on the wire: the coordinator publishes its progress
//! on `geolb.scenario.<run id>` as it goes, so a dashboard (or `nats sub
//! 'geolb.scenario.>'`) follows a run live without reading the report.
//!
//! Each message is one [`ScenarioUpdate`]: `begin` (the scenario, its
//! parameters, the fleet it runs on), then every `entry` of the timeline
//! (steps, faults, gates, agent events, client moves) as it is added, then
//! `end` (the verdict and the report's id).

use serde::{Deserialize, Serialize};

/// Every scenario subject.
pub const SCENARIOS_ALL: &str = "geolb.scenario.>";

/// The subject of run `run_id`: `geolb.scenario.<run id>`.
pub fn subject(run_id: &str) -> String {
    format!("geolb.scenario.{run_id}")
}

/// One line of a scenario's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// Milliseconds since the scenario began.
    pub t_ms: u64,
    /// Who: `scenario`, an agent id, a client id, a link emulator.
    pub source: String,
    /// What kind of thing happened (`step`, `fault`, `restore`, `gate`, an event kind, `client_moved`, ...).
    pub kind: String,
    /// The details.
    pub detail: String,
}

/// What changed in a running scenario, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ScenarioUpdate {
    /// The run began.
    Begin {
        /// Protocol version.
        #[serde(default = "crate::default_version")]
        v: u32,
        /// The run's id (also the report's).
        run: String,
        /// `rolling-upgrade`, `dc-outage`, `flap` or `scale`.
        scenario: String,
        /// Its parameters, as in the report.
        params: serde_json::Value,
        /// When (ms since epoch).
        at_ms: u64,
    },
    /// A timeline entry was added.
    Entry {
        /// The run's id.
        run: String,
        /// The entry.
        entry: TimelineEntry,
    },
    /// The run ended.
    End {
        /// The run's id.
        run: String,
        /// Whether it met every threshold.
        passed: bool,
        /// Thresholds missed, or why it was aborted.
        reasons: Vec<String>,
        /// When (ms since epoch).
        at_ms: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_hand_written_updates() {
        let begin: ScenarioUpdate = serde_json::from_str(
            r#"{"type":"begin","run":"r1","scenario":"dc-outage","params":{"region":"lon"},"at_ms":5}"#,
        )
        .unwrap();
        assert!(matches!(begin, ScenarioUpdate::Begin { v: 1, ref run, .. } if run == "r1"));
        let entry: ScenarioUpdate = serde_json::from_str(
            r#"{"type":"entry","run":"r1","entry":{"t_ms":12,"source":"scenario","kind":"fault","detail":"SIGKILL"}}"#,
        )
        .unwrap();
        let ScenarioUpdate::Entry { entry, .. } = entry else {
            panic!("an entry")
        };
        assert_eq!(entry.kind, "fault");
        assert_eq!(subject("r1"), "geolb.scenario.r1");
    }
}
