//! What a headless client reports, and how: the generic report channel.
//!
//! # The report channel
//! An agent supervising `--role client` binds a Unix datagram socket and
//! gives its path to every replica in `GEOLB_REPORT_SOCKET`. A client sends
//! one JSON [`ClientRecord`] per datagram (at most [`MAX_RECORD`] bytes).
//! Any client can do it: nats.go with `net.Dial("unixgram", path)`, Node with
//! a `unix_dgram` module, or a shell with `socat`. Without the variable the
//! client prints the same records as JSON lines on stdout.
//!
//! The agent publishes every [`ClientStatus`] on
//! `geolb.client.<region>.<agent id>` as it arrives, keeps the latest per
//! replica in its metrics, and turns every [`ClientMove`] into a
//! `client_moved` event (buffered like every event, so none is lost while
//! the control plane is away).

use serde::{Deserialize, Serialize};

/// Largest report datagram accepted.
pub const MAX_RECORD: usize = 60 * 1024;
/// Environment variable naming the agent's report socket.
pub const REPORT_SOCKET_ENV: &str = "GEOLB_REPORT_SOCKET";

/// One record on the report channel, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientRecord {
    /// Sent every report interval.
    Status(ClientStatus),
    /// Sent on every disconnect and reconnect.
    Moved(ClientMove),
}

impl ClientRecord {
    /// Encodes the record as one JSON line (no trailing newline).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a client record always serializes")
    }

    /// Decodes one datagram or line.
    pub fn decode(bytes: &[u8]) -> Result<ClientRecord, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// A server a client is (or was) connected to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRef {
    /// The URL the client dialled.
    pub url: String,
    /// The region the URL was given for (`--server REGION=URL`).
    pub region: String,
    /// The server's name, from its INFO.
    #[serde(default)]
    pub name: String,
    /// The server's cluster name, from its INFO.
    #[serde(default)]
    pub cluster: String,
}

/// One candidate server as the client's prober sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The URL.
    pub url: String,
    /// Its region.
    pub region: String,
    /// RTT in ms (the lowest of the rolling window), when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// Samples in the rolling window.
    pub samples: u32,
    /// Whether it answers probes (and is not in lame-duck mode).
    pub healthy: bool,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// Traffic counters, summed over every peer this client receives from.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Traffic {
    /// Messages sent.
    pub sent: u64,
    /// Messages received (first copies).
    pub received: u64,
    /// Sequence numbers never received (gaps).
    pub lost: u64,
    /// Copies of messages already received.
    pub duplicated: u64,
    /// Messages that arrived after a later one.
    pub out_of_order: u64,
    /// End-to-end latency of received messages.
    pub latency_ms: Percentiles,
}

/// What a client received from one sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SenderCounts {
    /// First copies received.
    pub received: u64,
    /// Sequence numbers never received.
    pub lost: u64,
    /// Copies already received.
    pub duplicated: u64,
}

/// Sent every report interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientStatus {
    /// Protocol version.
    #[serde(default = "crate::default_version")]
    pub v: u32,
    /// When (ms since epoch).
    pub at_ms: u64,
    /// Client id.
    pub client: String,
    /// The region the client lives in.
    pub region: String,
    /// `rtt`, `random`, `ordered`, `dns` or `anycast`.
    pub strategy: String,
    /// The server it is connected to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerRef>,
    /// Every candidate.
    pub candidates: Vec<Candidate>,
    /// Traffic so far.
    pub traffic: Traffic,
    /// Server switches so far.
    pub switches: u32,
    /// What it received from each sender (by sender id), so losses can be
    /// told apart by who sent them.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub by_sender: std::collections::BTreeMap<String, SenderCounts>,
    /// How long after its start it was first connected, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_after_ms: Option<u64>,
    /// For `dns` and `anycast`: how it reaches its server (none for others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routed: Option<Routed>,
    /// Probe PINGs it sent per second since its previous status record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_rate: Option<f64>,
    /// How many clients its process runs (`--count`), when more than one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_clients: Option<u32>,
}

/// Most clients one process runs (`geolb-agent client --count`).
pub const MAX_COUNT: u32 = 5000;

/// Lookups a status record carries at most (the latest).
pub const MAX_LOOKUPS: usize = 16;

/// How a `dns` or `anycast` client reaches its server: one name (or one
/// address) that the routing system (a GeoDNS, an anycast network) maps to
/// a server.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Routed {
    /// The URL it dials, e.g. `nats://nats.geo.lab:4222`.
    pub target: String,
    /// Connection attempts so far.
    pub attempts: u64,
    /// Of those, attempts that found nothing (a dead or unreachable address).
    pub failed_attempts: u64,
    /// `dns`: its latest lookups, oldest first (at most [`MAX_LOOKUPS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lookups: Vec<Lookup>,
}

/// One DNS lookup of a `dns` client.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Lookup {
    /// When it began (ms since epoch).
    pub at_ms: u64,
    /// How long it took, ms.
    pub took_ms: u64,
    /// The addresses, in the answer's order.
    pub answers: Vec<String>,
    /// Seconds the answer may be kept (as the resolver holds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_s: Option<u32>,
    /// The answer's version, when the server publishes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Why it failed (no such name, resolver unreachable, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Why a client moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveReason {
    /// First connection after start.
    Initial,
    /// The connection was lost.
    Lost,
    /// The server stopped answering probes (paused, partitioned).
    Unresponsive,
    /// The server announced lame-duck mode.
    LameDuck,
    /// A clearly better server was found (past the hysteresis).
    Better,
    /// A reason this version does not know.
    #[serde(other)]
    Unknown,
}

/// Sent on every disconnect and reconnect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientMove {
    /// Protocol version.
    #[serde(default = "crate::default_version")]
    pub v: u32,
    /// When the client was connected again (ms since epoch).
    pub at_ms: u64,
    /// Client id.
    pub client: String,
    /// The region the client lives in.
    pub region: String,
    /// Why it moved.
    pub reason: MoveReason,
    /// Where from (none at start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ServerRef>,
    /// Where to (none while nothing answers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<ServerRef>,
    /// How long the client could not publish: from losing (or leaving) the
    /// old server to being subscribed on the new one. 0 for a
    /// make-before-break move.
    pub gap_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_hand_written_move() {
        let text = br#"{"type":"moved","at_ms":5,"client":"c1","region":"lon","reason":"lame_duck",
            "from":{"url":"nats://127.0.0.1:1","region":"lon","name":"lon-1","cluster":"lon"},
            "to":{"url":"nats://127.0.0.1:2","region":"lon"},"gap_ms":0}"#;
        let ClientRecord::Moved(m) = ClientRecord::decode(text).unwrap() else {
            panic!("a move")
        };
        assert_eq!(m.reason, MoveReason::LameDuck);
        assert_eq!(m.to.unwrap().name, "");
        assert_eq!(m.v, crate::PROTOCOL_VERSION);
    }

    #[test]
    fn status_round_trips() {
        let record = ClientRecord::Status(ClientStatus {
            v: 1,
            at_ms: 1,
            client: "c".into(),
            region: "lon".into(),
            strategy: "rtt".into(),
            server: None,
            candidates: vec![Candidate {
                url: "nats://127.0.0.1:4222".into(),
                region: "lon".into(),
                rtt_ms: Some(0.6),
                samples: 3,
                healthy: true,
            }],
            traffic: Traffic::default(),
            switches: 0,
            by_sender: [(
                "lon-rtt-1".to_string(),
                SenderCounts {
                    received: 5,
                    lost: 1,
                    duplicated: 0,
                },
            )]
            .into(),
            connected_after_ms: Some(2100),
            routed: Some(Routed {
                target: "nats://nats.geo.lab:4222".into(),
                attempts: 3,
                failed_attempts: 1,
                lookups: vec![Lookup {
                    at_ms: 5,
                    took_ms: 1,
                    answers: vec!["127.20.0.1".into()],
                    ttl_s: Some(30),
                    version: Some(7),
                    error: None,
                }],
            }),
            probe_rate: Some(21.0),
            process_clients: Some(100),
        });
        assert_eq!(ClientRecord::decode(&record.encode()).unwrap(), record);
    }
}
