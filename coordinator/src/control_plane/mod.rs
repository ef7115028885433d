//! The control plane's least-privilege layout: one nkey user per identity
//! (the coordinator, each agent, each client or observer), a separate key
//! that signs commands, and the nats-server `authorization` block that gives
//! each identity only what it needs ([`permissions`]).
//!
//! [`layout`] writes one seed file per identity (`<name>.nk`, mode 0600, in
//! a 0700 folder) and `authorization.conf`; it keeps seeds already there, so
//! running it again with more agents does not change the keys of the others.
//! Seeds are never printed or logged; only their paths and public keys are.
//! `geolb control-plane init` ([`cmd`]) is its command line; `geolb lab up`
//! calls it for the lab's control plane.

pub mod cmd;
pub mod permissions;

use geolb_proto::signing::Signer;
use geolb_proto::subject;
use permissions::{Permissions, User};
use serde::Serialize;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// File name of the authorization block in the layout's folder.
pub const AUTH_FILE: &str = "authorization.conf";
/// Name of the command-signing identity (its seed is `signing.nk`).
pub const SIGNING: &str = "signing";
/// Name of the coordinator's identity.
pub const COORDINATOR: &str = "coordinator";
/// Name of the archiver's identity.
pub const ARCHIVER: &str = "archiver";

/// What to lay out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayoutSpec {
    /// Agents as `(id, region)`.
    pub agents: Vec<(String, String)>,
    /// Client or observer identities to make (`client-1`, `client-2`, ...).
    pub clients: usize,
    /// JetStream streams the coordinator manages (`GEOLB_HEARTBEATS`,
    /// `GEOLB_TELEMETRY` and the object buckets' streams are always added).
    pub streams: Vec<String>,
    /// More subjects the coordinator may publish (e.g. a report stream's subjects).
    pub coordinator_publish: Vec<String>,
    /// WAN emulators by id (identity `wan-<id>`, driven on `geolb.wan.<id>.*`).
    pub emulators: Vec<String>,
    /// Whether to make the `archiver` identity (reads the telemetry stream only).
    pub archiver: bool,
    /// Routing components as `(kind, id)`, kind `dns` or `anycast`
    /// (identity `<kind>-<id>`, driven on `geolb.<kind>.<id>.*`).
    pub routers: Vec<(String, String)>,
}

/// What an identity is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    /// Sends commands, reads the fleet.
    Coordinator,
    /// One agent.
    Agent,
    /// A client workload or an observer: reads telemetry only.
    Client,
    /// A WAN emulator: answers on its own `geolb.wan.<id>.*`.
    Emulator,
    /// `geolb archive`: reads the telemetry stream through its consumers, nothing else.
    Archiver,
    /// A GeoDNS or an anycast router: answers on its own endpoints, publishes its changes.
    Routing,
    /// Signs commands (not a NATS user: agents get its public key as `--trust`).
    Signing,
}

/// One identity and where its seed is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// `coordinator`, `agent-<id>`, `client-<n>` or `signing`.
    pub name: String,
    /// What it is for.
    pub kind: IdentityKind,
    /// The file holding its nkey seed (`--nkey-file`, `nats --nkey`, `--signing-key`).
    pub seed_path: PathBuf,
    /// Its public nkey.
    pub public_key: String,
    /// The agent's id, for agents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// The laid-out control plane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layout {
    /// The nats-server `authorization` block (also written to [`AUTH_FILE`]).
    pub server_config: String,
    /// Where the block was written.
    pub server_config_path: PathBuf,
    /// Every NATS identity, then the signing key.
    pub identities: Vec<Identity>,
}

impl Layout {
    /// The identity named `name`.
    pub fn identity(&self, name: &str) -> Option<&Identity> {
        self.identities.iter().find(|i| i.name == name)
    }

    /// The identity of agent `id`.
    pub fn agent(&self, id: &str) -> Option<&Identity> {
        self.identity(&format!("agent-{id}"))
    }

    /// The command-signing identity; its public key is the agents' `--trust`.
    pub fn signing(&self) -> &Identity {
        self.identity(SIGNING)
            .expect("every layout has a signing key")
    }
}

/// Why a layout could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// An agent id or region cannot be a subject token.
    #[error(transparent)]
    Name(#[from] subject::InvalidName),
    /// The same agent id twice.
    #[error("agent id {0} is listed twice")]
    Duplicate(String),
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A seed file exists but holds no valid seed.
    #[error(transparent)]
    Key(#[from] geolb_proto::signing::KeyError),
}

/// Writes the seeds and the authorization block for `spec` into `dir`.
pub fn layout(dir: &Path, spec: &LayoutSpec) -> Result<Layout, LayoutError> {
    let mut seen = std::collections::HashSet::new();
    for (id, region) in &spec.agents {
        subject::validate_name("agent id", id)?;
        subject::validate_name("region", region)?;
        if !seen.insert(id) {
            return Err(LayoutError::Duplicate(id.clone()));
        }
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| io(dir, source))?;
    let mut streams = vec![
        subject::HEARTBEAT_STREAM.to_string(),
        subject::TELEMETRY_STREAM.to_string(),
    ];
    streams.extend(permissions::BUCKETS.map(geolb_proto::objects::stream));
    for name in &spec.streams {
        if !streams.contains(name) {
            streams.push(name.clone());
        }
    }
    let mut publish = spec.coordinator_publish.clone();
    publish.extend(permissions::objects_writer());
    let mut planned: Vec<(String, IdentityKind, Option<String>, Permissions)> = vec![(
        COORDINATOR.into(),
        IdentityKind::Coordinator,
        None,
        permissions::coordinator(&streams, &publish),
    )];
    for (id, region) in &spec.agents {
        let p = permissions::agent(id, region);
        planned.push((
            format!("agent-{id}"),
            IdentityKind::Agent,
            Some(id.clone()),
            p,
        ));
    }
    for id in &spec.emulators {
        subject::validate_name("emulator id", id)?;
        let p = permissions::emulator(id);
        planned.push((format!("wan-{id}"), IdentityKind::Emulator, None, p));
    }
    if spec.archiver {
        let p = permissions::archiver(subject::TELEMETRY_STREAM);
        planned.push((ARCHIVER.into(), IdentityKind::Archiver, None, p));
    }
    // Observers read the kept heartbeats and reports; the telemetry stream
    // is the archiver's (a reader could otherwise pose as one).
    let readable: Vec<String> = streams
        .iter()
        .filter(|s| s.as_str() != subject::TELEMETRY_STREAM)
        .cloned()
        .collect();
    for (kind, id) in &spec.routers {
        subject::validate_name("routing component id", id)?;
        let p = permissions::routing(kind, id);
        planned.push((format!("{kind}-{id}"), IdentityKind::Routing, None, p));
    }
    for n in 1..=spec.clients {
        let p = permissions::client(&readable);
        planned.push((format!("client-{n}"), IdentityKind::Client, None, p));
    }
    let mut identities = Vec::new();
    let mut users = Vec::new();
    for (name, kind, agent, permissions) in planned {
        let (seed_path, public_key) = key_file(dir, &name, nkeys::KeyPair::new_user)?;
        let comment = match &agent {
            Some(id) => format!("agent {id}"),
            None => name.clone(),
        };
        users.push(User {
            comment,
            nkey: public_key.clone(),
            permissions,
        });
        identities.push(Identity {
            name,
            kind,
            seed_path,
            public_key,
            agent,
        });
    }
    let (seed_path, public_key) = key_file(dir, SIGNING, nkeys::KeyPair::new_account)?;
    identities.push(Identity {
        name: SIGNING.into(),
        kind: IdentityKind::Signing,
        seed_path,
        public_key,
        agent: None,
    });
    let server_config = permissions::render(&users);
    let server_config_path = dir.join(AUTH_FILE);
    write_private(&server_config_path, &server_config)?;
    Ok(Layout {
        server_config,
        server_config_path,
        identities,
    })
}

/// `<dir>/<name>.nk`: read when present, else made with `make` and written 0600.
fn key_file(
    dir: &Path,
    name: &str,
    make: fn() -> nkeys::KeyPair,
) -> Result<(PathBuf, String), LayoutError> {
    let path = dir.join(format!("{name}.nk"));
    if path.exists() {
        let signer = Signer::from_file(&path)?;
        return Ok((path, signer.public_key().to_string()));
    }
    let pair = make();
    let seed = pair.seed().expect("a new key pair has its seed");
    write_private(&path, &format!("{seed}\n"))?;
    Ok((path, pair.public_key()))
}

/// Writes `text` to a new or truncated file readable by its owner only.
fn write_private(path: &Path, text: &str) -> Result<(), LayoutError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| io(path, source))?;
    file.write_all(text.as_bytes())
        .map_err(|source| io(path, source))
}

fn io(path: &Path, source: std::io::Error) -> LayoutError {
    LayoutError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "geolb-layout-{}-{name}-{}",
            std::process::id(),
            fastrand::u32(..)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn writes_private_seeds_and_keeps_them() {
        let dir = temp("keep");
        let spec = LayoutSpec {
            agents: vec![("lon-1".into(), "lon".into())],
            clients: 1,
            ..Default::default()
        };
        let first = layout(&dir, &spec).unwrap();
        let names: Vec<&str> = first.identities.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["coordinator", "agent-lon-1", "client-1", "signing"]);
        for identity in &first.identities {
            let mode = std::fs::metadata(&identity.seed_path)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{}", identity.name);
            let seed = std::fs::read_to_string(&identity.seed_path).unwrap();
            assert!(!first.server_config.contains(seed.trim()));
        }
        assert!(first.signing().public_key.starts_with('A'));
        assert!(first.agent("lon-1").unwrap().public_key.starts_with('U'));
        let again = layout(&dir, &spec).unwrap();
        assert_eq!(again, first, "seeds already there are kept");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn refuses_bad_and_duplicate_ids() {
        let dir = temp("bad");
        let bad = LayoutSpec {
            agents: vec![("a.b".into(), "lon".into())],
            ..Default::default()
        };
        assert!(layout(&dir, &bad).is_err());
        let twice = LayoutSpec {
            agents: vec![("a".into(), "lon".into()), ("a".into(), "ams".into())],
            ..Default::default()
        };
        assert!(matches!(
            layout(&dir, &twice),
            Err(LayoutError::Duplicate(_))
        ));
    }
}
