//! The local Docker engine, as nats-geolb uses it: `geolb lab up --docker`
//! (containers and networks of a lab) and `geolb-agent run --container`
//! (a sibling container supervised through the API). One place connects,
//! negotiates the API version and turns the engine's failures into errors
//! that say what to do next.
//!
//! # Layout
//! - this file: [`Engine`] (the connection, the API version, required images),
//!   [`EngineError`] and [`OWNER_LABEL`].
//! - `container`: one container through the API: its state, signals, stop,
//!   start and pause ([`ContainerStatus`]).
//! - `recreate`: a container recreated from another image with the same
//!   configuration (the container mode's `upgrade`).

use bollard::Docker;
use std::time::Duration;

pub use bollard;
pub use container::{rfc3339_ms, ContainerStatus};
pub use recreate::recreate_body;

mod container;
mod recreate;

/// Label on everything nats-geolb creates; its value names the owner (a lab).
pub const OWNER_LABEL: &str = "io.nats-geolb.owner";

/// Why the engine cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No engine answers at the socket or host.
    #[error("no Docker engine at {host}: {detail}; start dockerd or set DOCKER_HOST")]
    Unreachable {
        /// Where we looked.
        host: String,
        /// What the connection said.
        detail: String,
    },
    /// The socket exists but we may not use it.
    #[error("no permission on the Docker socket {host}; add your user to the `docker` group or run as root")]
    PermissionDenied {
        /// The socket.
        host: String,
    },
    /// An image we need is not in the engine.
    #[error("image {image} is missing from the Docker engine; build it with `make {make_target}`")]
    MissingImage {
        /// The image reference.
        image: String,
        /// The make target that builds it.
        make_target: String,
    },
    /// No container has this name or id.
    #[error("no container {name} in the Docker engine; check the name with `docker ps -a`")]
    NoSuchContainer {
        /// The name or id asked for.
        name: String,
    },
    /// The engine refused because of the container's state (409).
    #[error("Docker engine: {0}")]
    Conflict(String),
    /// Any other answer of the engine.
    #[error("Docker engine: {0}")]
    Api(#[from] bollard::errors::Error),
}

/// A connection to the local Docker engine, version negotiated.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
}

impl Engine {
    /// Connects to `DOCKER_HOST` (default the local socket), negotiates the
    /// API version (an older engine refuses newer clients) and pings.
    pub async fn connect() -> Result<Engine, EngineError> {
        let host = std::env::var("DOCKER_HOST")
            .unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string());
        let unreachable = |detail: String| classify(&host, detail);
        let docker = Docker::connect_with_defaults().map_err(|e| unreachable(e.to_string()))?;
        let docker = tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version())
            .await
            .map_err(|_| unreachable("no answer within 10 s".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        docker
            .ping()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(Engine { docker })
    }

    /// The bollard client, for calls this crate does not wrap.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Fails with [`EngineError::MissingImage`] unless `image` is present.
    pub async fn require_image(&self, image: &str, make_target: &str) -> Result<(), EngineError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Err(EngineError::MissingImage {
                image: image.to_string(),
                make_target: make_target.to_string(),
            }),
            Err(e) => Err(e.into()),
        }
    }
}

/// Whether the engine answered 404 (no such container, image or network).
pub fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

fn classify(host: &str, detail: String) -> EngineError {
    if detail.contains("ermission denied") {
        EngineError::PermissionDenied {
            host: host.to_string(),
        }
    } else {
        EngineError::Unreachable {
            host: host.to_string(),
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_socket_is_one_clear_line() {
        // Safety of the environment change: this test binary runs no other
        // test that reads DOCKER_HOST.
        std::env::set_var("DOCKER_HOST", "unix:///nonexistent/docker.sock");
        let error = Engine::connect().await.unwrap_err().to_string();
        assert!(
            error.contains("no Docker engine at unix:///nonexistent/docker.sock"),
            "{error}"
        );
        assert!(
            error.contains("start dockerd or set DOCKER_HOST"),
            "{error}"
        );
        assert!(!error.contains('\n'));
    }

    #[test]
    fn permission_errors_say_how_to_fix_them() {
        let e = classify(
            "unix:///var/run/docker.sock",
            "Permission denied (os error 13)".into(),
        );
        assert!(e.to_string().contains("docker` group"), "{e}");
    }
}
