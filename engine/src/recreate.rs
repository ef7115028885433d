//! Recreating a container from another image with the same name,
//! configuration, host configuration and networks (what `docker run` was
//! given, not what the old image brought): the container mode's `upgrade`.

use crate::container::{short, ContainerStatus};
use crate::{Engine, EngineError};
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointSettings, ImageConfig,
    NetworkConnectRequest, NetworkingConfig,
};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use std::collections::HashMap;

impl Engine {
    /// Replaces the stopped container `name` by a new one from `image` with
    /// the same name, configuration, host configuration, networks and
    /// aliases, and starts it. Settings the old image brought (its
    /// environment, command, labels, ...) are left to the new image. The old
    /// container is kept, renamed, until the new one runs; if the new one
    /// cannot be created or started, it is removed, the old one gets its name
    /// back (stopped) and the error is returned. Returns the new id.
    ///
    /// Anonymous volumes of the old container are not carried over (named
    /// volumes and bind mounts are): they are left behind, not deleted.
    pub async fn recreate(&self, name: &str, image: &str) -> Result<String, EngineError> {
        let old = self.inspect(name).await?;
        let status = ContainerStatus::from_inspect(&old);
        if status.running || status.restarting {
            return Err(EngineError::Conflict(format!(
                "container {name} still runs; stop it before recreating it"
            )));
        }
        if !self.has_image(image).await? {
            return Err(EngineError::MissingImage {
                image: image.to_string(),
                make_target: "images".to_string(),
            });
        }
        let old_image = match old.image.as_deref() {
            Some(id) => self
                .docker
                .inspect_image(id)
                .await
                .ok()
                .and_then(|i| i.config),
            None => None,
        };
        let (body, more_networks) = recreate_body(&old, old_image.as_ref(), image);
        let aside = format!("{}-replaced-{}", status.name, short(&status.id));
        self.rename(&status.id, &aside).await?;
        match self
            .create_and_start(&status.name, body, more_networks)
            .await
        {
            Ok(id) => {
                let options = RemoveContainerOptionsBuilder::new().force(true).build();
                if let Err(e) = self
                    .docker
                    .remove_container(&status.id, Some(options))
                    .await
                {
                    tracing::warn!(container = %aside, error = %e, "Could not remove the replaced container; remove it by hand.");
                }
                Ok(id)
            }
            Err((created, error)) => {
                if let Some(id) = created {
                    let options = RemoveContainerOptionsBuilder::new().force(true).build();
                    let _ = self.docker.remove_container(&id, Some(options)).await;
                }
                self.rename(&status.id, &status.name).await?;
                Err(error)
            }
        }
    }

    async fn create_and_start(
        &self,
        name: &str,
        body: ContainerCreateBody,
        more_networks: Vec<Endpoint>,
    ) -> Result<String, (Option<String>, EngineError)> {
        let options = CreateContainerOptionsBuilder::new().name(name).build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| (None, e.into()))?;
        let id = created.id;
        for (network, endpoint) in more_networks {
            let request = NetworkConnectRequest {
                container: id.clone(),
                endpoint_config: Some(endpoint),
            };
            if let Err(e) = self.docker.connect_network(&network, request).await {
                return Err((Some(id), e.into()));
            }
        }
        if let Err(e) = self.docker.start_container(&id, None).await {
            return Err((Some(id), e.into()));
        }
        Ok(id)
    }
}

/// The create body of a container like `old` but from `image`, and the
/// networks to connect after creation (API 1.41 creates with one network).
/// A setting equal to what the old image brought is left out, so the new
/// image's own applies; the rest is what the container was created with.
pub fn recreate_body(
    old: &ContainerInspectResponse,
    old_image: Option<&ImageConfig>,
    image: &str,
) -> (ContainerCreateBody, Vec<Endpoint>) {
    let config = old.config.clone().unwrap_or_default();
    let base = old_image.cloned().unwrap_or_default();
    let id = old.id.as_deref().unwrap_or_default();
    let from_image = |value: &Option<Vec<String>>, default: &Option<Vec<String>>| {
        default.is_some() && value == default
    };
    let entrypoint_kept = !from_image(&config.entrypoint, &base.entrypoint);
    let body = ContainerCreateBody {
        hostname: config.hostname.filter(|h| h.as_str() != short(id)),
        domainname: config.domainname.filter(|d| !d.is_empty()),
        user: config
            .user
            .filter(|u| !u.is_empty() && Some(u) != base.user.as_ref()),
        attach_stdin: config.attach_stdin,
        attach_stdout: config.attach_stdout,
        attach_stderr: config.attach_stderr,
        exposed_ports: minus(config.exposed_ports, base.exposed_ports.as_deref()),
        tty: config.tty,
        open_stdin: config.open_stdin,
        stdin_once: config.stdin_once,
        env: minus(config.env, base.env.as_deref()),
        cmd: match entrypoint_kept || !from_image(&config.cmd, &base.cmd) {
            true => config.cmd,
            false => None,
        },
        healthcheck: config
            .healthcheck
            .filter(|h| Some(h) != base.healthcheck.as_ref()),
        args_escaped: None,
        image: Some(image.to_string()),
        volumes: minus(config.volumes, base.volumes.as_deref()),
        working_dir: config
            .working_dir
            .filter(|w| !w.is_empty() && Some(w) != base.working_dir.as_ref()),
        entrypoint: config.entrypoint.filter(|_| entrypoint_kept),
        network_disabled: config.network_disabled,
        on_build: None,
        labels: config.labels.map(|labels| {
            let base = base.labels.unwrap_or_default();
            labels
                .into_iter()
                .filter(|(k, v)| base.get(k) != Some(v))
                .collect()
        }),
        stop_signal: config
            .stop_signal
            .filter(|s| Some(s) != base.stop_signal.as_ref()),
        stop_timeout: config.stop_timeout,
        shell: config.shell.filter(|s| Some(s) != base.shell.as_ref()),
        host_config: old.host_config.clone(),
        networking_config: None,
    };
    let (first, rest) = networks(old, id);
    let body = ContainerCreateBody {
        networking_config: first.map(|(name, endpoint)| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(name, endpoint)])),
        }),
        ..body
    };
    (body, rest)
}

/// `values` without those in `base`; `None` when nothing is left.
fn minus(values: Option<Vec<String>>, base: Option<&[String]>) -> Option<Vec<String>> {
    let base = base.unwrap_or_default();
    let left: Vec<String> = values?.into_iter().filter(|v| !base.contains(v)).collect();
    (!left.is_empty()).then_some(left)
}

/// A network's name and a container's settings on it.
type Endpoint = (String, EndpointSettings);

/// The network the container is created on (its network mode's) and the
/// others, each with the settings a user can give (aliases, static
/// addresses, links, driver options), not those the engine assigned.
fn networks(old: &ContainerInspectResponse, id: &str) -> (Option<Endpoint>, Vec<Endpoint>) {
    let mode = old
        .host_config
        .as_ref()
        .and_then(|h| h.network_mode.clone())
        .unwrap_or_default();
    if mode == "host" || mode == "none" || mode.starts_with("container:") {
        return (None, Vec::new());
    }
    let mut all: Vec<Endpoint> = old
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(name, endpoint)| {
            let aliases: Vec<String> = endpoint
                .aliases
                .unwrap_or_default()
                .into_iter()
                .filter(|a| a.as_str() != short(id) && a.as_str() != id)
                .collect();
            let kept = EndpointSettings {
                ipam_config: endpoint.ipam_config,
                links: endpoint.links,
                aliases: (!aliases.is_empty()).then_some(aliases),
                driver_opts: endpoint.driver_opts,
                ..EndpointSettings::default()
            };
            (name, kept)
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let primary = match mode.as_str() {
        "" | "default" => "bridge",
        named => named,
    };
    match all.iter().position(|(name, _)| name == primary) {
        Some(pos) => {
            let first = all.remove(pos);
            (Some(first), all)
        }
        None => (None, all),
    }
}

#[cfg(test)]
#[path = "recreate_tests.rs"]
mod tests;
