//! What a running lab is made of, kept in `<lab dir>/lab.json` from the
//! first process started on, so `geolb lab down` can stop everything even
//! after `lab up` (or the whole coordinator) crashed half-way.

use super::config::LabConfig;
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
    /// Folder of installed nats-server versions (for upgrades).
    #[serde(default)]
    pub servers_dir: PathBuf,
    /// When `lab up` began (ms since epoch).
    pub started_at_ms: u64,
    /// Whether `lab up` finished.
    pub ready: bool,
    /// Everything started, in order.
    pub processes: Vec<LabProcess>,
    /// The control plane's identities (least privilege; see `geolb control-plane init`).
    #[serde(default)]
    pub identities: Vec<LabIdentity>,
    /// The URL of the lab's dashboard, once it listens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
    /// The containers and networks of a lab run by `lab up --docker`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<super::docker::DockerLab>,
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

    /// Processes or containers.
    pub fn placement(&self) -> super::topology::Placement {
        match self.docker {
            Some(_) => super::topology::Placement::Containers,
            None => super::topology::Placement::Processes,
        }
    }

    /// Whether nats-server `version` is installed where the servers run.
    pub fn has_version(&self, version: &str) -> bool {
        match &self.docker {
            Some(lab) => lab.nats_versions.iter().any(|v| v == version),
            None => self.servers_dir.join(version).join("nats-server").is_file(),
        }
    }

    /// How many processes (or containers) the lab started.
    pub fn started(&self) -> usize {
        match &self.docker {
            Some(lab) => lab.containers.len(),
            None => self.processes.len(),
        }
    }

    /// How many of them still run.
    pub async fn running(&self) -> anyhow::Result<usize> {
        match &self.docker {
            Some(lab) => super::docker::running(lab).await,
            None => Ok(self.alive().len()),
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
