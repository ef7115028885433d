//! The containerised lab through the Docker engine: networks and
//! containers made (and recorded) one by one, engine-made faults, and the
//! removal of exactly what is labelled for a lab.

use super::{docker_lab, docker_lab_mut, ContainerSpec, DockerLab, Images, VERSIONS_LABEL};
use crate::lab::state::LabState;
use geolb_engine::bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkConnectRequest, NetworkCreateRequest,
    PortBinding,
};
use geolb_engine::bollard::query_parameters::{
    CreateContainerOptions, KillContainerOptions, ListContainersOptions, ListNetworksOptions,
    LogsOptions, RemoveContainerOptions,
};
use geolb_engine::{Engine, EngineError};
use std::collections::HashMap;
use std::path::Path;

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
