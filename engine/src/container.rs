//! One container through the API: its state, signals, stop, start and
//! pause (recreating it from another image is `recreate.rs`).

use crate::{is_not_found, Engine, EngineError};
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::{
    EventsOptionsBuilder, KillContainerOptionsBuilder, RenameContainerOptionsBuilder,
    StopContainerOptionsBuilder,
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
    pub(crate) fn from_inspect(inspect: &ContainerInspectResponse) -> ContainerStatus {
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

    pub(crate) async fn rename(&self, container: &str, to: &str) -> Result<(), EngineError> {
        let options = RenameContainerOptionsBuilder::new().name(to).build();
        let result = self.docker.rename_container(container, options).await;
        self.checked(container, result)
    }

    pub(crate) async fn inspect(
        &self,
        name: &str,
    ) -> Result<ContainerInspectResponse, EngineError> {
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
pub(crate) fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
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
#[path = "container_tests.rs"]
mod tests;
