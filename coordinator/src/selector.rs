//! Which agents a command is for: `SELECTOR` on the command line.
//!
//! - `lon-1`: the agent with that id (addressed directly, no fleet listing);
//! - `id=all`: the same, for an agent whose id is a keyword;
//! - `region=lon`: every agent in a region;
//! - `role=server` or `role=client`: every agent of a role;
//! - `all`: every agent.

use geolb_proto::subject::validate_name;
use geolb_proto::{AgentStatus, Role};
use std::fmt;
use std::str::FromStr;

/// A set of agents, by id, region, role or all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// One agent, by id.
    Id(String),
    /// Every agent in a region.
    Region(String),
    /// Every agent of a role.
    Role(Role),
    /// Every agent.
    All,
}

/// A selector that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(String);

const FORMS: &str = "use an agent id, region=R, role=server|client or all";

impl Selector {
    /// Whether an agent with this status is selected.
    pub fn matches(&self, status: &AgentStatus) -> bool {
        match self {
            Selector::Id(id) => status.id == *id,
            Selector::Region(region) => status.region == *region,
            Selector::Role(role) => status.role == *role,
            Selector::All => true,
        }
    }

    /// The agent id when the selector names exactly one agent.
    pub fn single_id(&self) -> Option<&str> {
        match self {
            Selector::Id(id) => Some(id),
            _ => None,
        }
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(SelectorError(format!("empty selector; {FORMS}")));
        }
        if s == "all" {
            return Ok(Selector::All);
        }
        let Some((key, value)) = s.split_once('=') else {
            return name("agent id", s).map(Selector::Id);
        };
        match key.trim() {
            "id" => name("agent id", value.trim()).map(Selector::Id),
            "region" => name("region", value.trim()).map(Selector::Region),
            "role" => value
                .trim()
                .parse::<Role>()
                .map(Selector::Role)
                .map_err(|e| SelectorError(format!("selector {s:?}: {e}"))),
            other => Err(SelectorError(format!(
                "selector {s:?} has unknown key {other:?}; {FORMS}"
            ))),
        }
    }
}

fn name(what: &'static str, value: &str) -> Result<String, SelectorError> {
    validate_name(what, value)
        .map(|_| value.to_string())
        .map_err(|e| SelectorError(format!("{e}; {FORMS}")))
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Id(id) if id == "all" => write!(f, "id={id}"),
            Selector::Id(id) => f.write_str(id),
            Selector::Region(region) => write!(f, "region={region}"),
            Selector::Role(role) => write!(f, "role={role}"),
            Selector::All => f.write_str("all"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(id: &str, region: &str, role: Role) -> AgentStatus {
        AgentStatus::example(id, region, role)
    }

    #[test]
    fn parses_every_form() {
        let cases = [
            ("lon-1", Selector::Id("lon-1".into())),
            ("id=all", Selector::Id("all".into())),
            ("region=ams", Selector::Region("ams".into())),
            (" region = ams ", Selector::Region("ams".into())),
            ("role=server", Selector::Role(Role::Server)),
            ("role=client", Selector::Role(Role::Client)),
            ("all", Selector::All),
        ];
        for (text, want) in cases {
            let got: Selector = text.parse().unwrap();
            assert_eq!(got, want, "{text}");
            assert_eq!(got.to_string().parse::<Selector>().unwrap(), want, "{text}");
        }
    }

    #[test]
    fn refuses_bad_forms_with_a_hint() {
        let cases = [
            ("", "empty selector"),
            ("   ", "empty selector"),
            ("foo=bar", "unknown key \"foo\""),
            ("role=x", "unknown role \"x\""),
            ("region=", "region \"\" is not a valid name"),
            ("a.b", "agent id \"a.b\" is not a valid name"),
            ("lon-*", "is not a valid name"),
        ];
        for (text, want) in cases {
            let err = text.parse::<Selector>().unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn matches_by_id_region_role_or_all() {
        let lon = status("lon-1", "lon", Role::Server);
        let cases = [
            ("lon-1", true),
            ("lon-2", false),
            ("region=lon", true),
            ("region=ams", false),
            ("role=server", true),
            ("role=client", false),
            ("all", true),
        ];
        for (text, want) in cases {
            let selector: Selector = text.parse().unwrap();
            assert_eq!(selector.matches(&lon), want, "{text}");
        }
    }
}
