//! Subjects of the back channel. Ids and regions are single subject tokens.

use crate::command::Verb;

/// Name of the NATS micro service every agent registers (ADR-32).
pub const SERVICE_NAME: &str = "geolb-agent";
/// Every heartbeat subject.
pub const HEARTBEATS_ALL: &str = "geolb.hb.>";
/// Every event subject.
pub const EVENTS_ALL: &str = "geolb.evt.>";
/// Every metrics subject.
pub const METRICS_ALL: &str = "geolb.metrics.>";
/// Every client-status subject.
pub const CLIENTS_ALL: &str = "geolb.client.>";
/// JetStream stream keeping the last heartbeat of every agent, for `fleet ls`.
pub const HEARTBEAT_STREAM: &str = "GEOLB_HEARTBEATS";
/// JetStream stream keeping every heartbeat, event, metric and client record
/// (within limits) for the archiver; `fleet ls` reads it when it exists.
pub const TELEMETRY_STREAM: &str = "GEOLB_TELEMETRY";

/// Prefix of one agent's command endpoints: `geolb.agent.<id>`.
pub fn command_group(agent_id: &str) -> String {
    format!("geolb.agent.{agent_id}")
}

/// Subject of one verb on one agent: `geolb.agent.<id>.<verb>`.
pub fn command(agent_id: &str, verb: Verb) -> String {
    format!("geolb.agent.{agent_id}.{}", verb.as_str())
}

/// Heartbeat subject of one agent: `geolb.hb.<region>.<id>`.
pub fn heartbeat(region: &str, agent_id: &str) -> String {
    format!("geolb.hb.{region}.{agent_id}")
}

/// Event subject of one agent: `geolb.evt.<region>.<id>`.
pub fn event(region: &str, agent_id: &str) -> String {
    format!("geolb.evt.{region}.{agent_id}")
}

/// Client-status subject of one client agent: `geolb.client.<region>.<id>`.
pub fn client(region: &str, agent_id: &str) -> String {
    format!("geolb.client.{region}.{agent_id}")
}

/// Metrics subject of one agent: `geolb.metrics.<region>.<id>`.
pub fn metrics(region: &str, agent_id: &str) -> String {
    format!("geolb.metrics.{region}.{agent_id}")
}

/// A name that cannot be used as one subject token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{what} {value:?} is not a valid name: use 1 to 64 of A-Z a-z 0-9 _ -")]
pub struct InvalidName {
    /// What the name is for ("agent id", "region").
    pub what: &'static str,
    /// The rejected value.
    pub value: String,
}

/// Checks that `value` is a safe single subject token (ids and regions).
pub fn validate_name(what: &'static str, value: &str) -> Result<(), InvalidName> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(InvalidName {
            what,
            value: value.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_built_from_tokens() {
        assert_eq!(command("lon-1", Verb::Stop), "geolb.agent.lon-1.stop");
        assert_eq!(heartbeat("lon", "lon-1"), "geolb.hb.lon.lon-1");
        assert_eq!(event("ams", "a"), "geolb.evt.ams.a");
        assert_eq!(metrics("dfw", "d"), "geolb.metrics.dfw.d");
    }

    #[test]
    fn names_are_validated() {
        for good in ["lon", "lon-1", "A_b-9"] {
            assert!(validate_name("region", good).is_ok(), "{good}");
        }
        for bad in ["", "a.b", "a b", "a*", "a>", &"x".repeat(65)] {
            assert!(validate_name("region", bad).is_err(), "{bad}");
        }
    }
}
