//! What a running lab is made of, kept in `<lab dir>/lab.json` from the
//! first process started on, so `geolb lab down` can stop everything even
//! after `lab up` (or the whole coordinator) crashed half-way.

use super::config::LabConfig;
use super::topology::Placement;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The state file's name inside the lab directory.
const FILE: &str = "lab.json";

/// One process the lab started (the leader of its own process group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabProcess {
    /// e.g. `control`, `wan`, `lon-1`, `lon-rtt`.
    pub name: String,
    /// Process id, also its process-group id.
    pub pid: i32,
}

/// One identity of the lab's control plane and its seed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabIdentity {
    /// `coordinator`, `agent-<id>`, `wan-<id>`, `client-<n>`, `signing`.
    pub name: String,
    /// coordinator, agent, emulator, client or signing.
    pub kind: String,
    /// The nkey seed file (0600).
    pub seed_path: PathBuf,
    /// Its public key.
    pub public_key: String,
}

/// A lab, as `lab up` leaves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabState {
    /// The lab directory.
    pub dir: PathBuf,
    /// Its configuration.
    pub config: LabConfig,
    /// Control-plane URL.
    pub control_url: String,
    /// The secret the gateway passwords are made from (never printed).
    #[serde(default)]
    pub gateway_secret: String,
    /// Where the lab runs: processes here, or containers.
    pub backend: Backend,
    /// When `lab up` began (ms since epoch).
    pub started_at_ms: u64,
    /// Whether `lab up` finished.
    pub ready: bool,
    /// Every process started on this machine, in order (all of a process
    /// lab; of a lab in containers, its dashboard).
    pub processes: Vec<LabProcess>,
    /// The control plane's identities (least privilege; see `geolb control-plane init`).
    #[serde(default)]
    pub identities: Vec<LabIdentity>,
    /// The URL of the lab's dashboard, once it listens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
}

/// Where a lab runs, the one place its mode is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Backend {
    /// Processes on this machine, on 127.0.0.1.
    Processes {
        /// Folder of installed nats-server versions, `<dir>/<version>/nats-server`.
        servers_dir: PathBuf,
    },
    /// Containers and networks of the local Docker engine (`lab up --docker`).
    Containers(super::docker::DockerLab),
}

impl Backend {
    /// Processes or containers, for the plan.
    pub fn placement(&self) -> Placement {
        match self {
            Backend::Processes { .. } => Placement::Processes,
            Backend::Containers(_) => Placement::Containers,
        }
    }

    /// `processes` or `containers`.
    pub fn noun(&self) -> &'static str {
        match self {
            Backend::Processes { .. } => "processes",
            Backend::Containers(_) => "containers",
        }
    }

    /// The containers and networks, for a lab in containers.
    pub fn docker(&self) -> Option<&super::docker::DockerLab> {
        match self {
            Backend::Containers(lab) => Some(lab),
            Backend::Processes { .. } => None,
        }
    }
}

impl LabState {
    /// The state of the lab in `dir`, if one was started there.
    pub fn load(dir: &Path) -> anyhow::Result<Option<LabState>> {
        match std::fs::read_to_string(dir.join(FILE)) {
            Ok(text) => Ok(Some(serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!(
                    "{} is damaged ({e}); stop its processes by hand and remove it",
                    dir.join(FILE).display()
                )
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::anyhow!(
                "cannot read {}: {e}",
                dir.join(FILE).display()
            )),
        }
    }

    /// Writes the state (atomically: a crash never leaves half a file).
    pub fn save(&self) -> anyhow::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = self.dir.join(format!("{FILE}.tmp"));
        // Owner only: it holds the gateway secret.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, self.dir.join(FILE))?;
        Ok(())
    }

    /// Removes the state file (the lab is down).
    pub fn remove(dir: &Path) -> anyhow::Result<()> {
        match std::fs::remove_file(dir.join(FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// The lab in `GEOLB_LAB_DIR` (default `.lab`), for commands that fall
    /// back to it when no `--control` is given.
    pub fn current() -> anyhow::Result<LabState> {
        let dir = lab_dir(None);
        LabState::load(&dir)?.ok_or_else(|| {
            anyhow::anyhow!(
                "no --control given and no lab in {}; pass --control or start `geolb lab up`",
                dir.display()
            )
        })
    }

    /// Its control plane, as identity `name` (the first of `names` the lab
    /// has; none for a lab without identities).
    pub fn control_args(
        &self,
        names: &[&str],
    ) -> anyhow::Result<geolb_proto::connect::ControlArgs> {
        let mut args = geolb_proto::connect::ControlArgs {
            url: Some(self.control_url.clone()),
            ..Default::default()
        };
        if !self.identities.is_empty() {
            let found = names.iter().find_map(|n| self.identity(n).ok());
            let identity = match found {
                Some(identity) => identity,
                // None of them: the error names the first.
                None => self.identity(names.first().copied().unwrap_or("coordinator"))?,
            };
            args.nkey_file = Some(identity.seed_path.clone());
        }
        Ok(args)
    }

    /// The identity called `name`.
    pub fn identity(&self, name: &str) -> anyhow::Result<&LabIdentity> {
        self.identities
            .iter()
            .find(|i| i.name == name)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the lab has no identity {name}; `geolb lab down` then `geolb lab up`"
                )
            })
    }

    /// How many processes (or containers) the lab started.
    pub fn started(&self) -> usize {
        match &self.backend {
            Backend::Containers(lab) => lab.containers.len(),
            Backend::Processes { .. } => self.processes.len(),
        }
    }

    /// How many of them still run.
    pub async fn running(&self) -> anyhow::Result<usize> {
        match &self.backend {
            Backend::Containers(lab) => super::docker::running(lab).await,
            Backend::Processes { .. } => Ok(self.alive().len()),
        }
    }

    /// The processes still alive.
    pub fn alive(&self) -> Vec<&LabProcess> {
        self.processes
            .iter()
            .filter(|p| super::process::alive(p.pid))
            .collect()
    }
}

/// The lab directory: `--dir`, else `GEOLB_LAB_DIR`, else `.lab`.
pub fn lab_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("GEOLB_LAB_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(".lab"))
}
