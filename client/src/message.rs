//! The traffic message format and subjects (see "Traffic" in
//! docs/protocol.md).
//!
//! A message is published on `geolb.traffic.<region>.<shard>.<client id>`;
//! its payload starts with one JSON line, then filler up to the profile's
//! size:
//!
//! ```text
//! {"id":"lon-c1","run":1763700000000000,"seq":42,"sent_us":1763700001234567}\n
//! ..........................................................................
//! ```
//!
//! `run` (the sender's start, µs) tells a restarted sender from a late one;
//! `seq` counts from 1 per run; `sent_us` is the send time in µs since the
//! epoch. Any NATS client can produce or read it.

use serde::{Deserialize, Serialize};

/// Subject prefix of every traffic message.
pub const PREFIX: &str = "geolb.traffic";

/// The header line of a traffic message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Sender's client id.
    pub id: String,
    /// Sender's run (its start time, µs since the epoch).
    pub run: u64,
    /// Sequence number, from 1.
    pub seq: u64,
    /// Send time, µs since the epoch.
    pub sent_us: u64,
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Encodes `header` followed by filler up to `size` bytes (never less than the header line).
pub fn encode(header: &Header, size: usize) -> Vec<u8> {
    let mut out = serde_json::to_vec(header).expect("a header always serializes");
    out.push(b'\n');
    if out.len() < size {
        out.resize(size, b'.');
    }
    out
}

/// Decodes the header line of a payload; `None` for anything else.
pub fn decode(payload: &[u8]) -> Option<Header> {
    let end = payload
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(payload.len());
    serde_json::from_slice(&payload[..end]).ok()
}

/// The shard of a client id: FNV-1a (64 bit) of the id, modulo `shards`.
pub fn shard(id: &str, shards: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % u64::from(shards.max(1))) as u32
}

/// Where a client publishes.
pub fn publish_subject(region: &str, shard: u32, id: &str) -> String {
    format!("{PREFIX}.{region}.{shard}.{id}")
}

/// What a client subscribes to: its shard in every region, or the named peers.
pub fn subscriptions(shard: u32, peers: &[String]) -> Vec<String> {
    match peers.is_empty() {
        true => vec![format!("{PREFIX}.*.{shard}.*")],
        false => peers.iter().map(|p| format!("{PREFIX}.*.*.{p}")).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_padding() {
        let header = Header {
            id: "lon-c1".into(),
            run: 7,
            seq: 42,
            sent_us: 1_763_700_001_234_567,
        };
        for size in [0, 10, 200, 32 * 1024] {
            let bytes = encode(&header, size);
            assert_eq!(
                bytes.len(),
                size.max(bytes.iter().position(|&b| b == b'\n').unwrap() + 1)
            );
            assert_eq!(decode(&bytes), Some(header.clone()));
        }
        let hand = br#"{"id":"x","run":1,"seq":2,"sent_us":3}"#;
        assert_eq!(decode(hand).map(|h| h.seq), Some(2));
        assert_eq!(decode(b"hello"), None);
        assert_eq!(decode(b""), None);
    }

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(shard("", 8), (0xcbf2_9ce4_8422_2325u64 % 8) as u32);
        assert_eq!(shard("lon-c1", 8), shard("lon-c1", 8));
        assert_eq!(shard("anything", 1), 0);
        assert_eq!(shard("anything", 0), 0);
        let mut counts = [0u32; 8];
        for i in 0..800 {
            counts[shard(&format!("client-{i}"), 8) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (60..=140).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn subjects() {
        assert_eq!(publish_subject("lon", 3, "c1"), "geolb.traffic.lon.3.c1");
        assert_eq!(subscriptions(3, &[]), ["geolb.traffic.*.3.*"]);
        let peers = ["a".to_string(), "b".to_string()];
        assert_eq!(
            subscriptions(3, &peers),
            ["geolb.traffic.*.*.a", "geolb.traffic.*.*.b"]
        );
    }
}
