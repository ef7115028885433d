//! The scenarios running now, followed on `geolb.scenario.>` (the
//! [`ScenarioUpdate`] records a scenario publishes as it goes): the last
//! [`RUNS`] runs, each with at most [`ENTRIES`] timeline entries (later
//! ones are counted, not kept).

use super::plane::Plane;
use futures::StreamExt;
use geolb_proto::scenario::{ScenarioUpdate, TimelineEntry};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Runs kept (running or ended).
pub const RUNS: usize = 20;
/// Timeline entries kept per run.
pub const ENTRIES: usize = 20_000;

/// One run as followed live.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LiveRun {
    /// The run's id (also its report's).
    pub run: String,
    /// Its scenario (empty when its `begin` was missed).
    pub scenario: String,
    /// Its parameters.
    pub params: serde_json::Value,
    /// When it began, ms since the epoch (0 when missed).
    pub began_ms: u64,
    /// Its timeline so far.
    pub entries: Vec<TimelineEntry>,
    /// Entries past [`ENTRIES`], counted only.
    pub dropped: u64,
    /// Its verdict, once it ended: (passed, reasons, at_ms).
    pub ended: Option<(bool, Vec<String>, u64)>,
    /// Arrival order, to keep the newest.
    order: u64,
}

/// Every run followed.
#[derive(Default)]
pub struct LiveRuns {
    runs: Mutex<(u64, BTreeMap<String, LiveRun>)>,
}

impl LiveRuns {
    fn lock(&self) -> MutexGuard<'_, (u64, BTreeMap<String, LiveRun>)> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One run.
    pub fn get(&self, run: &str) -> Option<LiveRun> {
        self.lock().1.get(run).cloned()
    }

    /// Every run, newest first, without their entries.
    pub fn list(&self) -> Vec<LiveRun> {
        let mut runs: Vec<LiveRun> = self
            .lock()
            .1
            .values()
            .map(|r| LiveRun {
                entries: Vec::new(),
                ..r.clone()
            })
            .collect();
        runs.sort_by_key(|r| std::cmp::Reverse(r.order));
        runs
    }

    /// Applies one update.
    pub fn apply(&self, update: ScenarioUpdate) {
        let mut guard = self.lock();
        let (counter, runs) = &mut *guard;
        let id = match &update {
            ScenarioUpdate::Begin { run, .. }
            | ScenarioUpdate::Entry { run, .. }
            | ScenarioUpdate::End { run, .. } => run.clone(),
        };
        if !runs.contains_key(&id) && runs.len() >= RUNS {
            if let Some(oldest) = runs.values().min_by_key(|r| r.order).map(|r| r.run.clone()) {
                runs.remove(&oldest);
            }
        }
        *counter += 1;
        let order = *counter;
        let run = runs.entry(id.clone()).or_insert_with(|| LiveRun {
            run: id,
            order,
            ..Default::default()
        });
        match update {
            ScenarioUpdate::Begin {
                scenario,
                params,
                at_ms,
                ..
            } => {
                run.scenario = scenario;
                run.params = params;
                run.began_ms = at_ms;
            }
            ScenarioUpdate::Entry { entry, .. } if run.entries.len() < ENTRIES => {
                run.entries.push(entry)
            }
            ScenarioUpdate::Entry { .. } => run.dropped += 1,
            ScenarioUpdate::End {
                passed,
                reasons,
                at_ms,
                ..
            } => run.ended = Some((passed, reasons, at_ms)),
        }
    }
}

/// Follows `subscriber` (on `geolb.scenario.>`) into `plane`'s live runs.
pub async fn follow(plane: Arc<Plane>, mut subscriber: async_nats::Subscriber) {
    while let Some(message) = subscriber.next().await {
        if let Ok(update) = serde_json::from_slice::<ScenarioUpdate>(&message.payload) {
            plane.live_runs.apply(update);
            plane.touch();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(run: &str, t_ms: u64) -> ScenarioUpdate {
        ScenarioUpdate::Entry {
            run: run.into(),
            entry: TimelineEntry {
                t_ms,
                source: "scenario".into(),
                kind: "step".into(),
                detail: String::new(),
            },
        }
    }

    #[test]
    fn runs_and_entries_are_bounded() {
        let runs = LiveRuns::default();
        for i in 0..(RUNS + 5) {
            runs.apply(entry(&format!("r{i}"), 1));
        }
        let list = runs.list();
        assert_eq!(list.len(), RUNS);
        assert_eq!(list[0].run, format!("r{}", RUNS + 4), "newest first");
        assert!(runs.get("r0").is_none(), "the oldest went");
        for t in 0..(ENTRIES as u64 + 7) {
            runs.apply(entry("big", t));
        }
        let big = runs.get("big").unwrap();
        assert_eq!(big.entries.len(), ENTRIES);
        assert_eq!(big.dropped, 7);
    }

    #[test]
    fn a_run_begins_and_ends() {
        let runs = LiveRuns::default();
        runs.apply(ScenarioUpdate::Begin {
            v: 1,
            run: "r".into(),
            scenario: "dc-outage".into(),
            params: serde_json::json!({"region": "lon"}),
            at_ms: 5,
        });
        runs.apply(entry("r", 10));
        runs.apply(ScenarioUpdate::End {
            run: "r".into(),
            passed: true,
            reasons: vec![],
            at_ms: 9,
        });
        let r = runs.get("r").unwrap();
        assert_eq!(r.scenario, "dc-outage");
        assert_eq!(r.entries.len(), 1);
        assert_eq!(r.ended, Some((true, vec![], 9)));
    }
}
