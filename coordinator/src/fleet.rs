//! `geolb fleet ls`: every agent's last heartbeat, with its liveness.
//!
//! The source of truth is the JetStream stream [`geolb_proto::subject::HEARTBEAT_STREAM`]
//! on `geolb.hb.>`, keeping one message per subject (so one per agent) in
//! memory for an hour. The coordinator creates it when missing and reads it
//! with an ordered consumer delivering the last message per subject, until
//! nothing is pending. A stream created just now holds nothing yet, so the
//! first listing waits [`LISTEN_WINDOW`] before reading. A control plane
//! without JetStream is listened to for [`LISTEN_WINDOW`] instead.

mod ls;
mod measured;
mod stream;

pub use ls::{render, run, FleetArgs, FleetCommand};
pub use stream::{ensure_heartbeat_stream, Ensured, HEARTBEAT_MAX_AGE};

use crate::control::Control;
use crate::liveness::{age_ms, classify, Liveness};
use geolb_proto::{ChildState, Heartbeat, Role};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::Duration;

/// How long to listen for heartbeats when the stream cannot help (1.5 intervals).
pub const LISTEN_WINDOW: Duration = Duration::from_millis(1500);
/// Longest a read of the heartbeat stream may take.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// One agent in the fleet listing.
#[derive(Debug, Clone, Serialize)]
pub struct FleetEntry {
    /// Agent id.
    pub id: String,
    /// Region.
    pub region: String,
    /// Server or client.
    pub role: Role,
    /// The child's state.
    pub state: ChildState,
    /// The child's version, when known.
    pub version: Option<String>,
    /// Restarts by policy.
    pub restarts: u32,
    /// Replicas in state `running`.
    pub replicas_running: u32,
    /// Replicas wanted.
    pub replicas_desired: u32,
    /// Age of the heartbeat, local clock minus the agent's `at_ms`.
    pub age_ms: u64,
    /// Live, stale or lost.
    pub liveness: Liveness,
    /// The heartbeat itself.
    pub heartbeat: Heartbeat,
}

/// Where a listing came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The heartbeat stream.
    Stream,
    /// Listening to live heartbeats (no JetStream).
    Listen,
}

/// A listing and its source.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// Agents, sorted by region then id.
    pub entries: Vec<FleetEntry>,
    /// Where they came from.
    pub source: Source,
}

/// Why the fleet could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// A JetStream call failed.
    #[error("heartbeat stream GEOLB_HEARTBEATS: {0}")]
    JetStream(String),
    /// A core NATS call failed.
    #[error("listening for heartbeats: {0}")]
    Nats(String),
    /// Reading the stream took too long.
    #[error("reading the heartbeat stream took over {}s; is the control plane overloaded?", READ_TIMEOUT.as_secs())]
    TimedOut,
}

/// Every agent's last heartbeat, sorted by region then id.
pub async fn list(control: &Control) -> Result<Vec<FleetEntry>, FleetError> {
    list_with_source(control).await.map(|fleet| fleet.entries)
}

/// Like [`list`], also saying where the heartbeats came from.
pub async fn list_with_source(control: &Control) -> Result<Fleet, FleetError> {
    let (heartbeats, source) = match ensure_heartbeat_stream(control).await? {
        Ensured::Existing(stream) => (stream::read_stream(&stream).await?, Source::Stream),
        Ensured::Created(stream) => {
            tokio::time::sleep(LISTEN_WINDOW).await;
            (stream::read_stream(&stream).await?, Source::Stream)
        }
        Ensured::Unavailable => (stream::listen(control).await?, Source::Listen),
    };
    Ok(Fleet {
        entries: entries(heartbeats, geolb_proto::now_ms()),
        source,
    })
}

/// Builds sorted entries from heartbeats, keeping the newest per agent id.
pub fn entries(heartbeats: Vec<Heartbeat>, now_ms: u64) -> Vec<FleetEntry> {
    let mut newest: HashMap<String, Heartbeat> = HashMap::new();
    for hb in heartbeats {
        match newest.get(&hb.status.id) {
            Some(seen) if seen.at_ms >= hb.at_ms => {}
            _ => {
                newest.insert(hb.status.id.clone(), hb);
            }
        }
    }
    let mut entries: Vec<FleetEntry> = newest.into_values().map(|hb| entry(hb, now_ms)).collect();
    entries
        .sort_by(|a, b| natural_cmp(&a.region, &b.region).then_with(|| natural_cmp(&a.id, &b.id)));
    entries
}

/// Compares names with digit runs as numbers, so `lon-2` sorts before `lon-10`.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (da, ra) = split_digits(a);
                let (db, rb) = split_digits(b);
                let (ta, tb) = (trim_zeros(da), trim_zeros(db));
                let order = ta
                    .len()
                    .cmp(&tb.len())
                    .then(ta.cmp(tb))
                    .then(da.len().cmp(&db.len()));
                if order != Ordering::Equal {
                    return order;
                }
                (a, b) = (ra, rb);
            }
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => (a, b) = (&a[1..], &b[1..]),
        }
    }
}

fn split_digits(s: &[u8]) -> (&[u8], &[u8]) {
    s.split_at(
        s.iter()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(s.len()),
    )
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    &s[s.iter().position(|c| *c != b'0').unwrap_or(s.len())..]
}

fn entry(heartbeat: Heartbeat, now_ms: u64) -> FleetEntry {
    let status = &heartbeat.status;
    let age = age_ms(heartbeat.at_ms, now_ms);
    FleetEntry {
        id: status.id.clone(),
        region: status.region.clone(),
        role: status.role,
        state: status.state,
        version: status.version.clone(),
        restarts: status.restarts,
        replicas_running: status
            .replicas
            .iter()
            .filter(|r| r.state == ChildState::Running)
            .count() as u32,
        replicas_desired: status.desired_replicas,
        age_ms: age,
        liveness: classify(age, heartbeat.interval_ms),
        heartbeat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geolb_proto::{AgentStatus, OutboxStats, ReplicaStatus};

    fn heartbeat(id: &str, region: &str, at_ms: u64, states: &[ChildState]) -> Heartbeat {
        let replicas = states
            .iter()
            .enumerate()
            .map(|(i, s)| ReplicaStatus {
                index: i as u32,
                state: *s,
                pid: Some(100 + i as u32),
                restarts: 0,
                started_at_ms: None,
                last_exit: None,
            })
            .collect();
        Heartbeat {
            v: 1,
            at_ms,
            interval_ms: 1000,
            status: AgentStatus {
                id: id.into(),
                region: region.into(),
                role: Role::Client,
                host: "h".into(),
                agent_version: "0.1.0".into(),
                state: ChildState::Running,
                version: None,
                program: "p".into(),
                restarts: 2,
                desired_replicas: states.len() as u32,
                replicas,
                flap: None,
                uptime_ms: 1,
            },
            outbox: OutboxStats::default(),
        }
    }

    #[test]
    fn names_sort_naturally() {
        let mut names = vec![
            "lon-10", "lon-2", "ams-1", "lon-1", "lon-02", "lon", "lon-2a", "b9", "b10",
        ];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            names,
            vec!["ams-1", "b9", "b10", "lon", "lon-1", "lon-2", "lon-2a", "lon-02", "lon-10"]
        );
    }

    #[test]
    fn entries_are_sorted_deduplicated_and_classified() {
        use ChildState::*;
        let now = 100_000;
        let list = entries(
            vec![
                heartbeat("b", "lon", now - 500, &[Running, Stopped]),
                heartbeat("a", "lon", now - 5_000, &[Running]),
                heartbeat("z", "ams", now - 60_000, &[]),
                heartbeat("b", "lon", now - 9_000, &[]),
                heartbeat("f", "ams", now + 2_000, &[Running]),
            ],
            now,
        );
        let got: Vec<_> = list
            .iter()
            .map(|e| (e.id.as_str(), e.age_ms, e.liveness, e.replicas_running))
            .collect();
        assert_eq!(
            got,
            vec![
                ("f", 0, Liveness::Live, 1),
                ("z", 60_000, Liveness::Lost, 0),
                ("a", 5_000, Liveness::Stale, 1),
                ("b", 500, Liveness::Live, 1),
            ]
        );
        let text = render(&list);
        assert!(text.starts_with("ID  REGION  ROLE"), "{text}");
        assert!(
            text.contains(
                "b   lon     client  running  -        2         1/2       0.5s ago   live"
            ),
            "{text}"
        );
    }
}
