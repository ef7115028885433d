//! Heartbeats and events an agent publishes.

use crate::command::{FlapMode, StopMode};
use crate::status::{AgentStatus, Role};
use serde::{Deserialize, Serialize};

/// How the agent's event outbox is doing (events wait there while the
/// control plane is away).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OutboxStats {
    /// Events waiting to be sent.
    pub buffered: u64,
    /// Events dropped because the buffer was full, since the agent started.
    pub dropped: u64,
    /// Capacity of the buffer.
    pub capacity: u64,
}

/// Published every interval on `geolb.hb.<region>.<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Protocol version.
    #[serde(default = "crate::default_version")]
    pub v: u32,
    /// When it was sent (ms since epoch).
    pub at_ms: u64,
    /// Heartbeat interval, so a reader can tell stale from lost.
    pub interval_ms: u64,
    /// The agent's state.
    pub status: AgentStatus,
    /// The event outbox.
    pub outbox: OutboxStats,
}

/// Published on `geolb.evt.<region>.<id>` on every state change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Protocol version.
    #[serde(default = "crate::default_version")]
    pub v: u32,
    /// Per-agent sequence number from 1, without gaps unless dropped.
    pub seq: u64,
    /// When it happened (ms since epoch).
    pub at_ms: u64,
    /// Agent id.
    pub agent: String,
    /// Agent region.
    pub region: String,
    /// Agent role.
    pub role: Role,
    /// What happened.
    pub event: EventKind,
}

impl Event {
    /// Encodes the event as JSON bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an event always serializes")
    }
}

/// What happened, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// The agent came up.
    AgentStarted {
        /// geolb-agent version.
        version: String,
    },
    /// The agent is shutting down.
    AgentStopping {
        /// Why.
        reason: String,
    },
    /// A replica started.
    Started {
        /// Replica index.
        replica: u32,
        /// Its pid.
        pid: u32,
        /// The program.
        program: String,
    },
    /// A replica exited.
    Exited {
        /// Replica index.
        replica: u32,
        /// Exit code.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<i32>,
        /// Signal that killed it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<i32>,
    },
    /// A replica will be restarted after a backoff.
    Restarting {
        /// Replica index.
        replica: u32,
        /// Restart attempt, from 1.
        attempt: u32,
        /// Backoff before the restart.
        delay_ms: u64,
    },
    /// A replica was stopped by a command.
    Stopped {
        /// Replica index.
        replica: u32,
        /// How.
        mode: StopMode,
    },
    /// A replica entered lame-duck mode.
    LameDuck {
        /// Replica index.
        replica: u32,
    },
    /// The child was upgraded.
    Upgraded {
        /// Program (and version, when known) before.
        from: String,
        /// Program (and version, when known) after.
        to: String,
        /// How long the whole upgrade took.
        duration_ms: u64,
    },
    /// A flap began.
    FlapBegan {
        /// How the child is taken down.
        mode: FlapMode,
        /// Cycles asked for.
        cycles: u32,
        /// Down phase, ms.
        down_ms: u64,
        /// Up phase, ms.
        up_ms: u64,
    },
    /// A flap ended.
    FlapEnded {
        /// Cycles done.
        cycles_done: u32,
        /// Whether it was cancelled early.
        cancelled: bool,
    },
    /// A replica was frozen with SIGSTOP.
    Paused {
        /// Replica index.
        replica: u32,
    },
    /// A replica was thawed with SIGCONT.
    Resumed {
        /// Replica index.
        replica: u32,
    },
    /// The replica count changed.
    Scaled {
        /// Replicas before.
        from: u32,
        /// Replicas after.
        to: u32,
    },
    /// A signal the agent received was passed on to its children.
    SignalForwarded {
        /// Signal number.
        signal: i32,
    },
    /// The outbox overflowed while the control plane was away.
    EventsDropped {
        /// Events dropped since the last such event.
        count: u64,
    },
    /// A command was refused (bad input, bad signature, rate limit).
    CommandRefused {
        /// Verb (subject token) the command was sent to.
        verb: String,
        /// Error kind.
        error: crate::reply::ErrorKind,
        /// Error message.
        message: String,
    },
    /// Nothing listens on a front link's target (`run --front`): whoever
    /// dials the front is refused.
    FrontTargetDown {
        /// The link, `front:<agent>:<kind>`.
        link: String,
        /// The address nothing listens on.
        target: String,
        /// How long the agent waited.
        waited_ms: u64,
    },
    /// A client moved between servers (from the report channel; the
    /// report names the client).
    ClientMoved {
        /// What the client reported.
        report: Box<crate::client::ClientMove>,
    },
    /// An event kind this version does not know.
    #[serde(other)]
    Unknown,
}

impl EventKind {
    /// The event's `kind` tag on the wire.
    pub fn name(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_string))
            .unwrap_or_else(|| "unknown".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_hand_written_event() {
        let text = r#"{"v":1,"seq":7,"at_ms":1700000000000,"agent":"lon-1","region":"lon",
            "role":"server","event":{"kind":"exited","replica":0,"signal":9}}"#;
        let event: Event = serde_json::from_str(text).unwrap();
        assert_eq!(event.seq, 7);
        assert_eq!(
            event.event,
            EventKind::Exited {
                replica: 0,
                code: None,
                signal: Some(9)
            }
        );
        assert_eq!(event.event.name(), "exited");
    }

    #[test]
    fn unknown_event_kinds_still_decode() {
        let text = r#"{"seq":1,"at_ms":1,"agent":"a","region":"r","role":"client",
            "event":{"kind":"teleported"}}"#;
        let event: Event = serde_json::from_str(text).unwrap();
        assert_eq!(event.event, EventKind::Unknown);
    }

    #[test]
    fn events_round_trip() {
        let kinds = [
            EventKind::Started {
                replica: 1,
                pid: 42,
                program: "nats-server".into(),
            },
            EventKind::FlapBegan {
                mode: FlapMode::Pause,
                cycles: 2,
                down_ms: 100,
                up_ms: 200,
            },
            EventKind::EventsDropped { count: 3 },
        ];
        for kind in kinds {
            let event = Event {
                v: 1,
                seq: 1,
                at_ms: 2,
                agent: "a".into(),
                region: "r".into(),
                role: Role::Server,
                event: kind,
            };
            let back: Event = serde_json::from_slice(&event.encode()).unwrap();
            assert_eq!(back, event);
        }
    }
}
