//! `geolb lab up --docker`: the same lab as containers of the local Docker
//! engine (through bollard). One network for the control plane and one per
//! region; the control plane, the WAN emulator, every server and every
//! client group is a container of `geolb-server` or `geolb-client` (built by
//! `make images`) with the agent as PID 1. The emulator sits on every
//! region's network as `wan`, so gateways and clients cross regions only
//! through it; routes go direct on the region's network. The coordinator
//! reaches the control plane on a port published on 127.0.0.1.
//!
//! Every container and network carries the label `OWNER_LABEL=lab:<dir>`,
//! and `lab down` removes exactly those.
//!
//! This module is the plan (pure); [`engine`] makes it real.

mod engine;

pub use engine::{kill, remove, running, start, Launcher, Removed};

use super::state::LabState;
use super::topology::{Topology, CONTROL_HOST, WAN_HOST};
use geolb_engine::OWNER_LABEL;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The default image of servers and the control plane.
pub const SERVER_IMAGE: &str = "geolb-server:latest";
/// The default image of client groups and the emulator.
pub const CLIENT_IMAGE: &str = "geolb-client:latest";

/// The images a containerised lab runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, clap::Args)]
pub struct Images {
    /// Image of the servers and the control plane (nats-server and the agent).
    #[arg(long = "server-image", env = "GEOLB_SERVER_IMAGE", default_value = SERVER_IMAGE)]
    pub server: String,
    /// Image of the clients and the WAN emulator (the agent).
    #[arg(long = "client-image", env = "GEOLB_CLIENT_IMAGE", default_value = CLIENT_IMAGE)]
    pub client: String,
}

impl Default for Images {
    fn default() -> Images {
        Images {
            server: SERVER_IMAGE.into(),
            client: CLIENT_IMAGE.into(),
        }
    }
}
/// Where the lab directory is mounted in every container (read-only, but
/// for the control plane's store).
pub const LAB_MOUNT: &str = "/lab";
/// The agent's path in both images.
pub const AGENT: &str = "/usr/local/bin/geolb-agent";
/// Where the images keep nats-server versions, `<dir>/<version>/nats-server`.
pub const SERVERS_DIR: &str = "/opt/nats-server";
/// The server image's label listing its nats-server versions.
const VERSIONS_LABEL: &str = "io.nats-geolb.nats-versions";

/// What a containerised lab created, kept in its state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerLab {
    /// The label value on everything of this lab: `lab:<dir>`.
    pub owner: String,
    /// Prefix of its container and network names.
    pub prefix: String,
    /// Networks created, in order.
    pub networks: Vec<String>,
    /// Containers created, in order.
    pub containers: Vec<String>,
    /// The nats-server versions the server image carries.
    #[serde(default)]
    pub nats_versions: Vec<String>,
    /// The images it runs.
    #[serde(default)]
    pub images: Images,
}

impl DockerLab {
    /// A lab in `dir` (canonical), nothing created yet.
    pub fn new(dir: &Path) -> DockerLab {
        let owner = format!("lab:{}", dir.display());
        // FNV-1a: short, stable names; the label, not the name, is what counts.
        let hash = owner.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        DockerLab {
            owner,
            prefix: format!("geolb-{:06x}", hash & 0xff_ffff),
            networks: Vec::new(),
            containers: Vec::new(),
            nats_versions: Vec::new(),
            images: Images::default(),
        }
    }

    /// The control plane's network.
    pub fn control_network(&self) -> String {
        format!("{}-control", self.prefix)
    }

    /// The network of `region`.
    pub fn region_network(&self, region: &str) -> String {
        format!("{}-{region}", self.prefix)
    }

    fn labels(&self) -> HashMap<String, String> {
        HashMap::from([(OWNER_LABEL.to_string(), self.owner.clone())])
    }

    fn filter(&self) -> HashMap<String, Vec<String>> {
        HashMap::from([(
            "label".to_string(),
            vec![format!("{OWNER_LABEL}={}", self.owner)],
        )])
    }
}

/// What a lab process is, which decides its image and networks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// The control-plane nats-server.
    Control,
    /// The WAN emulator.
    Wan,
    /// A server of a region.
    Server(String),
    /// A client group of a region.
    Client(String),
}

/// One container of the lab, as planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    /// Container name.
    pub name: String,
    /// Host name inside the container (the process's lab name).
    pub hostname: String,
    /// Image.
    pub image: String,
    /// The program and its arguments (the image's entrypoint is replaced).
    pub command: Vec<String>,
    /// Networks and the aliases it has there; the first is joined at creation.
    pub networks: Vec<(String, Vec<String>)>,
    /// Bind mounts, `HOST:CONTAINER[:ro]`.
    pub binds: Vec<String>,
    /// Ports published on 127.0.0.1: (container port, host port).
    pub publish: Vec<(u16, u16)>,
}

/// Plans the container of the lab process `name` of `kind`, running
/// `command` (paths as the container sees them).
pub fn spec(
    lab: &DockerLab,
    state: &LabState,
    t: &Topology,
    name: &str,
    kind: &Kind,
    command: Vec<String>,
) -> ContainerSpec {
    let dir = state.dir.display();
    let read_only = format!("{dir}:{LAB_MOUNT}:ro");
    let control = (lab.control_network(), vec![name.to_string()]);
    let (image, networks, binds, publish) = match kind {
        Kind::Control => (
            &lab.images.server,
            vec![(lab.control_network(), vec![CONTROL_HOST.to_string()])],
            vec![read_only, format!("{dir}/control:/data")],
            vec![(4222, t.control_port), (8222, t.control_http_port)],
        ),
        Kind::Wan => {
            let mut networks = vec![control];
            networks.extend(
                state
                    .config
                    .regions
                    .iter()
                    .map(|r| (lab.region_network(r), vec![WAN_HOST.to_string()])),
            );
            (&lab.images.client, networks, vec![read_only], Vec::new())
        }
        Kind::Server(region) | Kind::Client(region) => {
            let image = match kind {
                Kind::Server(_) => &lab.images.server,
                _ => &lab.images.client,
            };
            let networks = vec![
                (lab.region_network(region), vec![name.to_string()]),
                control,
            ];
            (image, networks, vec![read_only], Vec::new())
        }
    };
    ContainerSpec {
        name: format!("{}-{name}", lab.prefix),
        hostname: name.to_string(),
        image: image.to_string(),
        command,
        networks,
        binds,
        publish,
    }
}

/// The lab's paths as its containers see them.
pub fn seen(state: &LabState, path: &Path) -> PathBuf {
    match path.strip_prefix(&state.dir) {
        Ok(rest) => Path::new(LAB_MOUNT).join(rest),
        Err(_) => path.to_path_buf(),
    }
}

fn docker_lab(state: &LabState) -> anyhow::Result<&DockerLab> {
    state
        .backend
        .docker()
        .ok_or_else(|| anyhow::anyhow!("the lab in {} is not in containers", state.dir.display()))
}

fn docker_lab_mut(state: &mut LabState) -> anyhow::Result<&mut DockerLab> {
    match &mut state.backend {
        super::state::Backend::Containers(lab) => Ok(lab),
        super::state::Backend::Processes { .. } => Err(anyhow::anyhow!(
            "the lab in {} is not in containers",
            state.dir.display()
        )),
    }
}

#[cfg(test)]
mod tests;
