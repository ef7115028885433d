//! Who this agent is: id, region, role and host, checked to be safe subject
//! tokens.

use geolb_proto::{subject::validate_name, subject::InvalidName, Role};

/// The agent's identity on the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Agent id, unique in the fleet.
    pub id: String,
    /// Region.
    pub region: String,
    /// Server or client.
    pub role: Role,
    /// Host name.
    pub host: String,
}

impl Identity {
    /// Builds an identity; id and region must be single subject tokens.
    /// A missing id falls back to the host name.
    pub fn new(id: Option<String>, region: String, role: Role) -> Result<Identity, InvalidName> {
        let host = host_name();
        let id = id.unwrap_or_else(|| sanitise(&host));
        validate_name("agent id", &id)?;
        validate_name("region", &region)?;
        Ok(Identity {
            id,
            region,
            role,
            host,
        })
    }

    /// An identity for unit tests.
    #[cfg(test)]
    pub fn for_tests(id: &str, region: &str, role: Role) -> Identity {
        Identity {
            id: id.into(),
            region: region.into(),
            role,
            host: "test".into(),
        }
    }
}

fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".to_string())
}

fn sanitise(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    if cleaned.is_empty() {
        "agent".to_string()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_ids_and_regions() {
        assert!(Identity::new(Some("lon-1".into()), "lon".into(), Role::Server).is_ok());
        assert!(Identity::new(Some("a.b".into()), "lon".into(), Role::Server).is_err());
        assert!(Identity::new(Some("a".into()), "l on".into(), Role::Server).is_err());
        let id = Identity::new(None, "lon".into(), Role::Client).unwrap();
        assert!(!id.id.is_empty());
        assert_eq!(sanitise("my.host"), "my-host");
    }
}
