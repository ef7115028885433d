//! The agent's state as it appears in replies and heartbeats.

use crate::command::FlapMode;
use serde::{Deserialize, Serialize};

/// What the supervised process is: a NATS server or a test client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A nats-server.
    #[default]
    Server,
    /// A headless test client.
    Client,
}

impl Role {
    /// The role's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Client => "client",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "server" => Ok(Role::Server),
            "client" => Ok(Role::Client),
            other => Err(format!("unknown role {other:?}; use server or client")),
        }
    }
}

/// The state of one replica (or, aggregated, of the agent's child).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildState {
    /// Running.
    Running,
    /// In lame-duck mode, draining its clients.
    Draining,
    /// Being stopped (signal sent, grace running).
    Stopping,
    /// Stopped by a command; stays down until `start`.
    Stopped,
    /// Exited on its own and not restarted by policy.
    Exited,
    /// Waiting out a restart backoff.
    Backoff,
    /// Frozen with SIGSTOP.
    Paused,
    /// A state this version does not know.
    #[serde(other)]
    Unknown,
}

impl ChildState {
    /// The state's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ChildState::Running => "running",
            ChildState::Draining => "draining",
            ChildState::Stopping => "stopping",
            ChildState::Stopped => "stopped",
            ChildState::Exited => "exited",
            ChildState::Backoff => "backoff",
            ChildState::Paused => "paused",
            ChildState::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ChildState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a process ended: an exit code or the signal that killed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// Exit code, when it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// Signal number, when a signal killed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// When it ended (ms since epoch).
    pub at_ms: u64,
}

impl ExitInfo {
    /// The shell convention: the code, or 128 + signal.
    pub fn shell_code(&self) -> i32 {
        match (self.code, self.signal) {
            (Some(code), _) => code,
            (None, Some(signal)) => 128 + signal,
            (None, None) => 1,
        }
    }

    /// Whether the process ended well (code 0).
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// One supervised replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    /// Replica index (`GEOLB_REPLICA`), from 0.
    pub index: u32,
    /// Its state.
    pub state: ChildState,
    /// Process id while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// How often it was restarted by policy.
    pub restarts: u32,
    /// When it last started (ms since epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<u64>,
    /// How it last ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<ExitInfo>,
}

/// Which half of a flap cycle is under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlapPhase {
    /// The child is down (stopped, killed or paused).
    Down,
    /// The child is up.
    Up,
}

/// A flap in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlapStatus {
    /// How the child is taken down.
    pub mode: FlapMode,
    /// The current cycle, from 1.
    pub cycle: u32,
    /// Cycles asked for.
    pub cycles: u32,
    /// Down or up.
    pub phase: FlapPhase,
}

/// Everything an agent says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    /// Agent id, unique in the fleet.
    pub id: String,
    /// Region it runs in.
    pub region: String,
    /// Server or client.
    pub role: Role,
    /// Host name.
    pub host: String,
    /// geolb-agent version.
    pub agent_version: String,
    /// The child's state, summarised over the replicas.
    pub state: ChildState,
    /// The child's version (nats-server's from `/varz`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The program the agent runs.
    pub program: String,
    /// Restarts by policy, over all replicas.
    pub restarts: u32,
    /// Replicas wanted.
    pub desired_replicas: u32,
    /// Each replica.
    pub replicas: Vec<ReplicaStatus>,
    /// The flap in progress, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flap: Option<FlapStatus>,
    /// Milliseconds since the agent started.
    pub uptime_ms: u64,
}

impl AgentStatus {
    /// A running agent with this identity and one running replica, for
    /// examples, tests and stand-in fleets.
    pub fn example(id: &str, region: &str, role: Role) -> AgentStatus {
        AgentStatus {
            id: id.into(),
            region: region.into(),
            role,
            host: "example".into(),
            agent_version: "0".into(),
            state: ChildState::Running,
            version: None,
            program: "example".into(),
            restarts: 0,
            desired_replicas: 1,
            replicas: vec![],
            flap: None,
            uptime_ms: 0,
        }
    }
}

/// Summarises replica states: the most telling state wins.
pub fn summarise(replicas: &[ReplicaStatus]) -> ChildState {
    const ORDER: [ChildState; 7] = [
        ChildState::Paused,
        ChildState::Draining,
        ChildState::Stopping,
        ChildState::Backoff,
        ChildState::Running,
        ChildState::Exited,
        ChildState::Stopped,
    ];
    ORDER
        .into_iter()
        .find(|s| replicas.iter().any(|r| r.state == *s))
        .unwrap_or(ChildState::Stopped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(state: ChildState) -> ReplicaStatus {
        ReplicaStatus {
            index: 0,
            state,
            pid: None,
            restarts: 0,
            started_at_ms: None,
            last_exit: None,
        }
    }

    #[test]
    fn summary_prefers_the_telling_state() {
        use ChildState::*;
        let cases = [
            (vec![], Stopped),
            (vec![Running, Running], Running),
            (vec![Running, Paused], Paused),
            (vec![Stopped, Running], Running),
            (vec![Exited, Stopped], Exited),
            (vec![Backoff, Running], Backoff),
        ];
        for (states, want) in cases {
            let replicas: Vec<_> = states.iter().map(|s| replica(*s)).collect();
            assert_eq!(summarise(&replicas), want, "{states:?}");
        }
    }

    #[test]
    fn exit_codes_follow_the_shell() {
        let exited = |code, signal| ExitInfo {
            code,
            signal,
            at_ms: 0,
        };
        assert_eq!(exited(Some(3), None).shell_code(), 3);
        assert_eq!(exited(None, Some(9)).shell_code(), 137);
        assert_eq!(exited(None, Some(15)).shell_code(), 143);
    }
}
