//! One container through the API: its state, signals, stop, start, pause,
//! and recreating it from another image with the same name, configuration,
//! host configuration and networks (what `docker run` was given, not what
//! the old image brought).

use crate::{is_not_found, Engine, EngineError};
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointSettings, ImageConfig,
    NetworkConnectRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, EventsOptionsBuilder, KillContainerOptionsBuilder,
    RemoveContainerOptionsBuilder, RenameContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures::{Stream, StreamExt};
use std::collections::HashMap;
use std::time::Duration;

/// A container as the engine last reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatus {
    /// Full id.
    pub id: String,
    /// Name, without the leading `/`.
    pub name: String,
    /// The image reference it was created from (`Config.Image`).
    pub image: String,
    /// Its main process runs (paused included, Docker's restart backoff not).
    pub running: bool,
    /// Frozen by `docker pause`.
    pub paused: bool,
    /// Waiting out Docker's restart policy backoff.
    pub restarting: bool,
    /// Host pid of its main process while it runs.
    pub pid: Option<u32>,
    /// Exit code of the last run, once it ended.
    pub exit_code: Option<i32>,
    /// When the current or last run started, ms since the epoch.
    pub started_at_ms: Option<u64>,
    /// When the last run ended, ms since the epoch.
    pub finished_at_ms: Option<u64>,
    /// Restarts by Docker's restart policy.
    pub restart_count: u32,
}

impl ContainerStatus {
    fn from_inspect(inspect: &ContainerInspectResponse) -> ContainerStatus {
        let state = inspect.state.clone().unwrap_or_default();
        let restarting = state.restarting.unwrap_or(false);
        let running = state.running.unwrap_or(false) && !restarting;
        let finished_at_ms = state.finished_at.as_deref().and_then(rfc3339_ms);
        ContainerStatus {
            id: inspect.id.clone().unwrap_or_default(),
            name: inspect
                .name
                .as_deref()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            image: inspect
                .config
                .as_ref()
                .and_then(|c| c.image.clone())
                .unwrap_or_default(),
            running,
            paused: running && state.paused.unwrap_or(false),
            restarting,
            pid: state
                .pid
                .filter(|p| *p > 0 && running)
                .and_then(|p| u32::try_from(p).ok()),
            exit_code: state
                .exit_code
                .filter(|_| !running && finished_at_ms.is_some())
                .and_then(|c| i32::try_from(c).ok()),
            started_at_ms: state.started_at.as_deref().and_then(rfc3339_ms),
            finished_at_ms,
            restart_count: inspect
                .restart_count
                .and_then(|c| u32::try_from(c).ok())
                .unwrap_or(0),
        }
    }
}

impl Engine {
    /// The state of container `name` (a name or an id).
    pub async fn container(&self, name: &str) -> Result<ContainerStatus, EngineError> {
        let inspect = self.inspect(name).await?;
        Ok(ContainerStatus::from_inspect(&inspect))
    }

    /// Whether `image` is in the engine.
    pub async fn has_image(&self, image: &str) -> Result<bool, EngineError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The engine's events about container `name` (or any container later
    /// given that name), as their action (`start`, `die`, `pause`, ...),
    /// from now on; the stream ends when the connection does.
    pub fn container_events(
        &self,
        name: &str,
    ) -> impl Stream<Item = Result<String, EngineError>> + Unpin + use<> {
        let filters = HashMap::from([("type", vec!["container"]), ("container", vec![name])]);
        let options = EventsOptionsBuilder::new().filters(&filters).build();
        self.docker.events(Some(options)).map(|event| {
            event
                .map(|e| e.action.unwrap_or_default())
                .map_err(EngineError::from)
        })
    }

    /// Sends `signal` (`SIGUSR2`, `SIGKILL`, ...) to the container's main process.
    pub async fn kill(&self, name: &str, signal: &str) -> Result<(), EngineError> {
        let options = KillContainerOptionsBuilder::new().signal(signal).build();
        let result = self.docker.kill_container(name, Some(options)).await;
        self.checked(name, result)
    }

    /// `docker stop`: its stop signal, then SIGKILL after `timeout` (whole
    /// seconds, rounded up); returns once it has exited.
    pub async fn stop(&self, name: &str, timeout: Duration) -> Result<(), EngineError> {
        let seconds = timeout.as_millis().div_ceil(1000);
        let seconds = i32::try_from(seconds).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::new().t(seconds).build();
        // The call lasts as long as the stop: give it more than bollard's default.
        let docker = self
            .docker
            .clone()
            .with_timeout(timeout + Duration::from_secs(60));
        let result = docker.stop_container(name, Some(options)).await;
        self.checked(name, not_modified_is_ok(result))
    }

    /// `docker start`; a running container is left alone.
    pub async fn start(&self, name: &str) -> Result<(), EngineError> {
        let result = self.docker.start_container(name, None).await;
        self.checked(name, not_modified_is_ok(result))
    }

    /// `docker pause`: freezes every process of the container.
    pub async fn pause(&self, name: &str) -> Result<(), EngineError> {
        let result = self.docker.pause_container(name).await;
        self.checked(name, result)
    }

    /// `docker unpause`.
    pub async fn unpause(&self, name: &str) -> Result<(), EngineError> {
        let result = self.docker.unpause_container(name).await;
        self.checked(name, result)
    }

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

    async fn rename(&self, container: &str, to: &str) -> Result<(), EngineError> {
        let options = RenameContainerOptionsBuilder::new().name(to).build();
        let result = self.docker.rename_container(container, options).await;
        self.checked(container, result)
    }

    async fn inspect(&self, name: &str) -> Result<ContainerInspectResponse, EngineError> {
        let result = self.docker.inspect_container(name, None).await;
        match result {
            Err(e) if is_not_found(&e) => Err(EngineError::NoSuchContainer {
                name: name.to_string(),
            }),
            other => other.map_err(EngineError::from),
        }
    }

    /// A 404 names the container; anything else is passed on.
    fn checked(
        &self,
        name: &str,
        result: Result<(), bollard::errors::Error>,
    ) -> Result<(), EngineError> {
        match result {
            Err(e) if is_not_found(&e) => Err(EngineError::NoSuchContainer {
                name: name.to_string(),
            }),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409,
                message,
            }) => Err(EngineError::Conflict(message)),
            other => other.map_err(EngineError::from),
        }
    }
}

/// 304 (already started, already stopped) is what was wanted.
fn not_modified_is_ok(
    result: Result<(), bollard::errors::Error>,
) -> Result<(), bollard::errors::Error> {
    match result {
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304, ..
        }) => Ok(()),
        other => other,
    }
}

/// The first 12 characters of an id, as `docker ps` shows it.
fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
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

/// Milliseconds since the epoch of an RFC 3339 time in UTC as Docker writes
/// it (`2024-05-01T12:34:56.123456789Z`); `None` for Docker's zero time
/// (`0001-01-01T00:00:00Z`) or anything else before 1970.
pub fn rfc3339_ms(text: &str) -> Option<u64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut clock = clock.split(':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    let millis: i64 = format!("{fraction:0<3}").get(..3)?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms = ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis;
    u64::try_from(ms).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerConfig, HostConfig, NetworkSettings};

    #[test]
    fn parses_docker_times() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            rfc3339_ms("2024-05-01T12:34:56.123456789Z"),
            Some(1_714_566_896_123)
        );
        assert_eq!(rfc3339_ms("2000-02-29T00:00:01.5Z"), Some(951_782_401_500));
        assert_eq!(rfc3339_ms("0001-01-01T00:00:00Z"), None);
        assert_eq!(rfc3339_ms("yesterday"), None);
    }

    fn strings(values: &[&str]) -> Option<Vec<String>> {
        Some(values.iter().map(|s| s.to_string()).collect())
    }

    fn old_container(entrypoint: &[&str], cmd: &[&str]) -> ContainerInspectResponse {
        let id = "0123456789abcdef0123";
        let endpoint = |aliases: &[&str]| EndpointSettings {
            aliases: strings(aliases),
            ip_address: Some("172.18.0.5".into()),
            network_id: Some("n1".into()),
            ..EndpointSettings::default()
        };
        ContainerInspectResponse {
            id: Some(id.into()),
            name: Some("/lon-1".into()),
            config: Some(ContainerConfig {
                hostname: Some("0123456789ab".into()),
                image: Some("geolb-server:old".into()),
                env: strings(&["PATH=/old", "GEOLB_ID=lon-1"]),
                entrypoint: strings(entrypoint),
                cmd: strings(cmd),
                exposed_ports: strings(&["4222/tcp", "9999/tcp"]),
                labels: Some(HashMap::from([
                    ("title".to_string(), "geolb-server".to_string()),
                    ("owner".to_string(), "lab".to_string()),
                ])),
                working_dir: Some(String::new()),
                ..ContainerConfig::default()
            }),
            host_config: Some(HostConfig {
                network_mode: Some("lab".into()),
                ..HostConfig::default()
            }),
            network_settings: Some(NetworkSettings {
                networks: Some(HashMap::from([
                    ("lab".to_string(), endpoint(&["0123456789ab", "lon-1.lab"])),
                    ("wan".to_string(), endpoint(&["0123456789ab"])),
                ])),
                ..NetworkSettings::default()
            }),
            ..ContainerInspectResponse::default()
        }
    }

    fn old_image() -> ImageConfig {
        ImageConfig {
            env: strings(&["PATH=/old"]),
            entrypoint: strings(&["/agent", "run", "--"]),
            cmd: strings(&["nats-server", "-c", "default.conf"]),
            exposed_ports: strings(&["4222/tcp"]),
            labels: Some(HashMap::from([(
                "title".to_string(),
                "geolb-server".to_string(),
            )])),
            ..ImageConfig::default()
        }
    }

    #[test]
    fn keeps_what_the_user_gave_and_leaves_the_image_defaults_to_the_new_image() {
        let old = old_container(&["/agent", "run", "--"], &["nats-server", "-c", "my.conf"]);
        let (body, rest) = recreate_body(&old, Some(&old_image()), "geolb-server:new");
        assert_eq!(body.image.as_deref(), Some("geolb-server:new"));
        assert_eq!(body.env, strings(&["GEOLB_ID=lon-1"]));
        assert_eq!(body.entrypoint, None, "the image's entrypoint");
        assert_eq!(body.cmd, strings(&["nats-server", "-c", "my.conf"]));
        assert_eq!(body.exposed_ports, strings(&["9999/tcp"]));
        assert_eq!(
            body.labels,
            Some(HashMap::from([("owner".to_string(), "lab".to_string())]))
        );
        assert_eq!(body.hostname, None, "the old id is not a hostname to keep");
        assert_eq!(body.working_dir, None);
        let endpoints = body.networking_config.unwrap().endpoints_config.unwrap();
        let lab = &endpoints["lab"];
        assert_eq!(lab.aliases, strings(&["lon-1.lab"]));
        assert_eq!(lab.ip_address, None, "engine-assigned address not kept");
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].0, "wan");
        assert_eq!(rest[0].1.aliases, None);
    }

    #[test]
    fn a_command_given_with_an_own_entrypoint_is_kept() {
        let image = old_image();
        let same_cmd: Vec<&str> = ["nats-server", "-c", "default.conf"].to_vec();
        let old = old_container(&["/bin/sh", "-c"], &same_cmd);
        let (body, _) = recreate_body(&old, Some(&image), "x:1");
        assert_eq!(body.entrypoint, strings(&["/bin/sh", "-c"]));
        assert_eq!(body.cmd, strings(&same_cmd));
        let old = old_container(&["/agent", "run", "--"], &same_cmd);
        let (body, _) = recreate_body(&old, Some(&image), "x:1");
        assert_eq!((body.entrypoint, body.cmd), (None, None));
    }

    #[test]
    fn without_the_old_image_everything_is_kept() {
        let old = old_container(&["/agent"], &["serve"]);
        let (body, _) = recreate_body(&old, None, "x:1");
        assert_eq!(body.env, strings(&["PATH=/old", "GEOLB_ID=lon-1"]));
        assert_eq!(body.entrypoint, strings(&["/agent"]));
    }
}
