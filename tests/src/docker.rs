//! Docker for tests: whether the engine and our images are there (a test
//! without them reports itself skipped by name, and fails instead when
//! `GEOLB_REQUIRE_DOCKER=1`, as in CI), and a guard that removes every
//! container and network a test created, by label, on `Drop`; plus the few
//! reads tests need (published port, host pid, logs, exit code, image size).
//!
//! Tests drive the engine through the `docker` CLI where a one-off command
//! is simplest, and through `geolb-engine` (bollard) where the code under
//! test does.

use std::process::Command;

/// The server image `make images` builds.
pub const SERVER_IMAGE: &str = "geolb-server:latest";
/// The client image `make images` builds.
pub const CLIENT_IMAGE: &str = "geolb-client:latest";
/// Label on every container and network a test creates; its value is the
/// guard's owner name.
pub const TEST_LABEL: &str = "io.nats-geolb.test";

/// Whether Docker tests must run (CI): a skip becomes a failure.
pub fn required() -> bool {
    std::env::var("GEOLB_REQUIRE_DOCKER").is_ok_and(|v| v == "1")
}

/// `Some(())` when the engine answers and `images` exist; otherwise prints
/// `SKIPPED <test>: <why>` and returns `None`, or panics when
/// [`required`].
pub fn available(test: &str, images: &[&str]) -> Option<()> {
    let why = match docker(&["info", "--format", "{{.ServerVersion}}"]) {
        Err(e) => Some(format!("no usable Docker engine ({e})")),
        Ok(_) => images
            .iter()
            .find(|image| docker(&["image", "inspect", image]).is_err())
            .map(|image| format!("image {image} is missing; run `make images`")),
    };
    match why {
        None => Some(()),
        Some(why) if required() => {
            panic!("{test}: {why}, and GEOLB_REQUIRE_DOCKER=1 forbids skipping")
        }
        Some(why) => {
            eprintln!("SKIPPED {test}: {why}");
            None
        }
    }
}

/// Runs `docker ARGS`; its trimmed stdout, or its stderr as the error.
pub fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Removes, on `Drop`, every container and network labelled
/// `TEST_LABEL=<owner>`; create them with [`Cleanup::label`].
pub struct Cleanup {
    owner: String,
}

impl Cleanup {
    /// A guard for `test`; also removes leftovers of an earlier run of it.
    pub fn new(test: &str) -> Cleanup {
        let guard = Cleanup {
            owner: format!("{test}-{}", std::process::id()),
        };
        remove_labelled(TEST_LABEL, Some(test));
        guard
    }

    /// `--label TEST_LABEL=<owner>`, for `docker run` and `docker network create`.
    pub fn label(&self) -> [String; 2] {
        ["--label".into(), format!("{TEST_LABEL}={}", self.owner)]
    }

    /// A name unique to this guard, e.g. for a container or network.
    pub fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.owner)
    }

    /// `docker run -d` with this guard's label and `ARGS` (options, image,
    /// command); the container's id. Panics with Docker's error.
    pub fn run(&self, args: &[&str]) -> String {
        let label = self.label();
        let mut all = vec!["run", "-d", label[0].as_str(), label[1].as_str()];
        all.extend_from_slice(args);
        docker(&all).unwrap_or_else(|e| panic!("docker {}: {e}", all.join(" ")))
    }

    /// Creates a labelled bridge network named [`Cleanup::name`]`(what)`; its name.
    pub fn network(&self, what: &str) -> String {
        let name = self.name(what);
        let label = self.label();
        docker(&["network", "create", &label[0], &label[1], &name])
            .unwrap_or_else(|e| panic!("docker network create {name}: {e}"));
        name
    }
}

/// `docker inspect --format FORMAT CONTAINER`, e.g. `{{.State.Pid}}`.
pub fn inspect(container: &str, format: &str) -> Result<String, String> {
    docker(&["inspect", "--format", format, container])
}

/// The host address (`127.0.0.1:PORT`) a container port is published on.
pub fn host_port(container: &str, port: u16) -> std::net::SocketAddr {
    let out = docker(&["port", container, &format!("{port}/tcp")])
        .unwrap_or_else(|e| panic!("docker port {container} {port}: {e}"));
    let first = out.lines().next().unwrap_or_default();
    first
        .parse()
        .unwrap_or_else(|e| panic!("docker port {container} {port} gave {out:?}: {e}"))
}

/// A container's logs, stdout and stderr interleaved as Docker kept them
/// (empty when the container is gone).
pub fn logs(container: &str) -> String {
    Command::new("docker")
        .args(["logs", container])
        .output()
        .map(|out| {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            text
        })
        .unwrap_or_default()
}

/// The host pid of a running container's PID 1 (`.State.Pid`); `None` once it has stopped.
pub fn host_pid(container: &str) -> Option<i32> {
    inspect(container, "{{.State.Pid}}")
        .ok()?
        .parse()
        .ok()
        .filter(|pid| *pid > 0)
}

/// A stopped container's exit code; `None` while it runs.
pub fn exit_code(container: &str) -> Option<i32> {
    let state = inspect(container, "{{.State.Running}} {{.State.ExitCode}}").ok()?;
    match state.split_once(' ')? {
        ("false", code) => code.parse().ok(),
        _ => None,
    }
}

/// An image's size in bytes (`docker image inspect`'s `.Size`).
pub fn image_size(image: &str) -> u64 {
    let out = docker(&["image", "inspect", "--format", "{{.Size}}", image])
        .unwrap_or_else(|e| panic!("docker image inspect {image}: {e}"));
    out.parse()
        .unwrap_or_else(|e| panic!("size of {image} {out:?}: {e}"))
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for id in list("ps", &format!("{TEST_LABEL}={}", self.owner)) {
                if let Ok(logs) = docker(&["logs", "--tail", "30", &id]) {
                    eprintln!("--- last logs of container {id} ---\n{logs}");
                }
            }
        }
        remove_labelled(&format!("{TEST_LABEL}={}", self.owner), None);
    }
}

/// Removes containers, then networks, with `label` (`KEY` or `KEY=VALUE`);
/// with `prefix`, only those whose label value starts with it.
fn remove_labelled(label: &str, prefix: Option<&str>) {
    let keep = |id: &String, kind: &str| match prefix {
        None => true,
        Some(prefix) => docker(&[
            kind,
            "inspect",
            "--format",
            &format!("{{{{index .Config.Labels \"{TEST_LABEL}\"}}}}"),
            id,
        ])
        .or_else(|_| {
            docker(&[
                kind,
                "inspect",
                "--format",
                &format!("{{{{index .Labels \"{TEST_LABEL}\"}}}}"),
                id,
            ])
        })
        .is_ok_and(|value| value.starts_with(&format!("{prefix}-"))),
    };
    let containers: Vec<String> = list("ps", label)
        .into_iter()
        .filter(|id| keep(id, "container"))
        .collect();
    if !containers.is_empty() {
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(containers.iter().map(String::as_str));
        let _ = docker(&args);
    }
    for network in list("network", label)
        .into_iter()
        .filter(|id| keep(id, "network"))
    {
        let _ = docker(&["network", "rm", &network]);
    }
}

/// Ids of containers (`ps`, also stopped) or networks carrying `label`.
pub fn list(kind: &str, label: &str) -> Vec<String> {
    let filter = format!("label={label}");
    let out = match kind {
        "ps" => docker(&["ps", "-aq", "--filter", &filter]),
        _ => docker(&["network", "ls", "-q", "--filter", &filter]),
    };
    out.map(|s| s.lines().map(String::from).collect())
        .unwrap_or_default()
}
