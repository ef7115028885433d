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

use super::state::LabState;
use super::topology::{Topology, CONTROL_HOST, WAN_HOST};
use geolb_engine::bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkConnectRequest, NetworkCreateRequest,
    PortBinding,
};
use geolb_engine::bollard::query_parameters::{
    CreateContainerOptions, KillContainerOptions, ListContainersOptions, ListNetworksOptions,
    LogsOptions, RemoveContainerOptions,
};
use geolb_engine::{Engine, EngineError, OWNER_LABEL};
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

/// A connected engine, and the lab's containers and networks as it makes them.
pub struct Launcher {
    engine: Engine,
    /// The nats-server versions of the server image.
    pub nats_versions: Vec<String>,
    /// The images.
    pub images: Images,
}

impl Launcher {
    /// Connects to the engine and checks the images (and that the server
    /// image carries `nats_version`).
    pub async fn connect(nats_version: &str, images: Images) -> anyhow::Result<Launcher> {
        let engine = Engine::connect().await?;
        engine.require_image(&images.server, "images").await?;
        engine.require_image(&images.client, "images").await?;
        let image = engine.docker().inspect_image(&images.server).await?;
        let versions = image
            .config
            .and_then(|c| c.labels)
            .and_then(|l| l.get(VERSIONS_LABEL).cloned())
            .unwrap_or_default();
        let nats_versions: Vec<String> = versions.split_whitespace().map(String::from).collect();
        if !nats_versions.iter().any(|v| v == nats_version) {
            anyhow::bail!(
                "image {} has nats-server {versions:?}, not {nats_version}; \
                 rebuild it with `make images NATS_VERSIONS=\"{nats_version} ...\"` or set nats_version",
                images.server
            );
        }
        Ok(Launcher {
            engine,
            nats_versions,
            images,
        })
    }

    /// Creates the control network and one network per region, recording
    /// each in the state before the next.
    pub async fn networks(&self, state: &mut LabState) -> anyhow::Result<()> {
        let lab = docker_lab(state)?.clone();
        let mut names = vec![lab.control_network()];
        names.extend(state.config.regions.iter().map(|r| lab.region_network(r)));
        for name in names {
            self.engine
                .docker()
                .create_network(NetworkCreateRequest {
                    name: name.clone(),
                    driver: Some("bridge".into()),
                    labels: Some(lab.labels()),
                    ..Default::default()
                })
                .await
                .map_err(|e| anyhow::anyhow!("cannot create network {name}: {e}"))?;
            docker_lab_mut(state)?.networks.push(name);
            state.save()?;
        }
        Ok(())
    }

    /// Creates, connects and starts the container of `spec`, recording it
    /// in the state first, so a failure leaves it findable.
    pub async fn launch(&self, state: &mut LabState, spec: ContainerSpec) -> anyhow::Result<()> {
        let lab = docker_lab(state)?.clone();
        let docker = self.engine.docker();
        let endpoint = |aliases: &Vec<String>| EndpointSettings {
            aliases: Some(aliases.clone()),
            ..Default::default()
        };
        let (first, first_aliases) = &spec.networks[0];
        let body = ContainerCreateBody {
            hostname: Some(spec.hostname.clone()),
            image: Some(spec.image.clone()),
            entrypoint: Some(spec.command[..1].to_vec()),
            cmd: Some(spec.command[1..].to_vec()),
            labels: Some(lab.labels()),
            exposed_ports: Some(
                spec.publish
                    .iter()
                    .map(|(port, _)| format!("{port}/tcp"))
                    .collect(),
            ),
            host_config: Some(HostConfig {
                binds: Some(spec.binds.clone()),
                network_mode: Some(first.clone()),
                port_bindings: Some(
                    spec.publish
                        .iter()
                        .map(|(port, host)| {
                            let binding = PortBinding {
                                host_ip: Some("127.0.0.1".into()),
                                host_port: Some(host.to_string()),
                            };
                            (format!("{port}/tcp"), Some(vec![binding]))
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            networking_config: Some(geolb_engine::bollard::models::NetworkingConfig {
                endpoints_config: Some(HashMap::from([(first.clone(), endpoint(first_aliases))])),
            }),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(spec.name.clone()),
            ..Default::default()
        };
        docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| anyhow::anyhow!("cannot create container {}: {e}", spec.name))?;
        docker_lab_mut(state)?.containers.push(spec.name.clone());
        state.save()?;
        for (network, aliases) in &spec.networks[1..] {
            docker
                .connect_network(
                    network,
                    NetworkConnectRequest {
                        container: spec.name.clone(),
                        endpoint_config: Some(endpoint(aliases)),
                    },
                )
                .await
                .map_err(|e| anyhow::anyhow!("cannot connect {} to {network}: {e}", spec.name))?;
        }
        docker
            .start_container(&spec.name, None)
            .await
            .map_err(|e| anyhow::anyhow!("cannot start container {}: {e}", spec.name))?;
        Ok(())
    }
}

/// Kills (SIGKILL to PID 1: the agent and its server die together, as a
/// machine would) the containers of the lab processes `names`.
pub async fn kill(lab: &DockerLab, names: &[String]) -> anyhow::Result<()> {
    let engine = Engine::connect().await?;
    for name in names {
        let container = format!("{}-{name}", lab.prefix);
        engine
            .docker()
            .kill_container(&container, None::<KillContainerOptions>)
            .await
            .map_err(|e| anyhow::anyhow!("cannot kill container {container}: {e}"))?;
    }
    Ok(())
}

/// Starts the (stopped) containers of the lab processes `names` again.
pub async fn start(lab: &DockerLab, names: &[String]) -> anyhow::Result<()> {
    let engine = Engine::connect().await?;
    for name in names {
        let container = format!("{}-{name}", lab.prefix);
        engine
            .docker()
            .start_container(&container, None)
            .await
            .map_err(|e| anyhow::anyhow!("cannot start container {container}: {e}"))?;
    }
    Ok(())
}

/// How many of the lab's containers run.
pub async fn running(lab: &DockerLab) -> anyhow::Result<usize> {
    let engine = Engine::connect().await?;
    let options = ListContainersOptions {
        all: false,
        filters: Some(lab.filter()),
        ..Default::default()
    };
    Ok(engine.docker().list_containers(Some(options)).await?.len())
}

/// What `lab down` removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// Containers removed.
    pub containers: usize,
    /// Networks removed.
    pub networks: usize,
    /// Containers and networks of the lab still there afterwards.
    pub left: usize,
    /// The label value that was removed.
    pub owner: String,
}

/// Removes every container, then every network, labelled for the lab in
/// `dir` (also those a crashed `lab up` did not record), and nothing else.
/// Each container's output is kept first in `<dir>/logs/<name>.log`.
pub async fn remove(dir: &Path) -> Result<Removed, EngineError> {
    let lab = DockerLab::new(dir);
    let engine = Engine::connect().await?;
    let docker = engine.docker();
    let containers = ids_of_containers(&engine, &lab).await?;
    for id in &containers {
        keep_logs(&engine, id, &dir.join("logs")).await;
    }
    for id in &containers {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match docker.remove_container(id, Some(options)).await {
            Err(e) if !geolb_engine::is_not_found(&e) => return Err(e.into()),
            _ => {}
        }
    }
    let networks = ids_of_networks(&engine, &lab).await?;
    for id in &networks {
        match docker.remove_network(id).await {
            Err(e) if !geolb_engine::is_not_found(&e) => return Err(e.into()),
            _ => {}
        }
    }
    let left =
        ids_of_containers(&engine, &lab).await?.len() + ids_of_networks(&engine, &lab).await?.len();
    Ok(Removed {
        containers: containers.len(),
        networks: networks.len(),
        left,
        owner: lab.owner,
    })
}

/// Writes a container's output to `<logs>/<hostname>.log` (best effort:
/// the logs are for people, their loss must not stop `lab down`).
async fn keep_logs(engine: &Engine, id: &str, logs: &Path) {
    use futures::StreamExt;
    let docker = engine.docker();
    let Ok(info) = docker.inspect_container(id, None).await else {
        return;
    };
    let name = info
        .config
        .and_then(|c| c.hostname)
        .unwrap_or_else(|| id.to_string());
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let mut text = Vec::new();
    let mut stream = docker.logs(id, Some(options));
    while let Some(Ok(chunk)) = stream.next().await {
        text.extend_from_slice(&chunk.into_bytes());
    }
    let _ = std::fs::create_dir_all(logs);
    if let Err(e) = std::fs::write(logs.join(format!("{name}.log")), text) {
        tracing::warn!(container = id, error = %e, "Cannot keep the container's logs.");
    }
}

async fn ids_of_containers(engine: &Engine, lab: &DockerLab) -> Result<Vec<String>, EngineError> {
    let options = ListContainersOptions {
        all: true,
        filters: Some(lab.filter()),
        ..Default::default()
    };
    Ok(engine
        .docker()
        .list_containers(Some(options))
        .await?
        .into_iter()
        .filter_map(|c| c.id)
        .collect())
}

async fn ids_of_networks(engine: &Engine, lab: &DockerLab) -> Result<Vec<String>, EngineError> {
    let options = ListNetworksOptions {
        filters: Some(lab.filter()),
    };
    Ok(engine
        .docker()
        .list_networks(Some(options))
        .await?
        .into_iter()
        .filter_map(|n| n.id)
        .collect())
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
        .docker
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the lab in {} is not in containers", state.dir.display()))
}

fn docker_lab_mut(state: &mut LabState) -> anyhow::Result<&mut DockerLab> {
    let dir = state.dir.display().to_string();
    state
        .docker
        .as_mut()
        .ok_or_else(|| anyhow::anyhow!("the lab in {dir} is not in containers"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::config::LabConfig;
    use crate::lab::topology::Placement;

    fn state() -> LabState {
        LabState {
            dir: PathBuf::from("/srv/lab"),
            config: LabConfig::default(),
            control_url: "nats://127.0.0.1:14000".into(),
            gateway_secret: String::new(),
            servers_dir: PathBuf::new(),
            started_at_ms: 0,
            ready: false,
            processes: Vec::new(),
            identities: Vec::new(),
            docker: Some(DockerLab::new(Path::new("/srv/lab"))),
        }
    }

    #[test]
    fn names_and_labels_follow_the_lab_directory() {
        let a = DockerLab::new(Path::new("/srv/lab"));
        assert_eq!(a, DockerLab::new(Path::new("/srv/lab")));
        assert_ne!(a.prefix, DockerLab::new(Path::new("/srv/lab2")).prefix);
        assert_eq!(a.owner, "lab:/srv/lab");
        assert!(a.region_network("lon").starts_with("geolb-"));
    }

    #[test]
    fn plans_each_kind_of_container() {
        let state = state();
        let lab = state.docker.clone().unwrap();
        let t = Topology::plan_for(&state.config, Placement::Containers);
        let control = spec(
            &lab,
            &state,
            &t,
            "control",
            &Kind::Control,
            vec!["x".into()],
        );
        assert_eq!(control.publish, vec![(4222, 14000), (8222, 14001)]);
        assert_eq!(control.networks[0].1, vec!["control"]);
        assert!(control
            .binds
            .contains(&"/srv/lab/control:/data".to_string()));

        let wan = spec(&lab, &state, &t, "wan", &Kind::Wan, vec!["x".into()]);
        assert_eq!(wan.networks.len(), 4, "control and every region");
        assert!(wan.networks[1..].iter().all(|(_, a)| a == &vec!["wan"]));

        let server = spec(
            &lab,
            &state,
            &t,
            "lon-1",
            &Kind::Server("lon".into()),
            vec![],
        );
        assert_eq!(server.image, SERVER_IMAGE);
        assert_eq!(
            server.networks[0],
            (lab.region_network("lon"), vec!["lon-1".into()])
        );
        assert_eq!(server.binds, vec!["/srv/lab:/lab:ro"]);
        assert!(
            server.publish.is_empty(),
            "only the control plane is published"
        );

        let client = spec(
            &lab,
            &state,
            &t,
            "ams-rtt",
            &Kind::Client("ams".into()),
            vec![],
        );
        assert_eq!(client.image, CLIENT_IMAGE);
        assert_eq!(client.name, format!("{}-ams-rtt", lab.prefix));
    }

    #[test]
    fn paths_inside_the_lab_are_seen_under_the_mount() {
        let state = state();
        assert_eq!(
            seen(&state, Path::new("/srv/lab/keys/agent-lon-1.nk")),
            PathBuf::from("/lab/keys/agent-lon-1.nk")
        );
        assert_eq!(seen(&state, Path::new("/etc/x")), PathBuf::from("/etc/x"));
    }
}
