//! Where the lab's processes run: here, as process-group leaders of our
//! binaries, or in containers of the local Docker engine; and how each
//! sees the lab's paths and addresses.

use super::docker;
use super::process;
use super::state::{Backend, LabProcess, LabState};
use super::topology::{Topology, CONTROL_HOST};
use std::path::{Path, PathBuf};

/// Where `lab up` finds its binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `geolb-agent`.
    pub agent: PathBuf,
    /// Folder of installed versions, `<dir>/<version>/nats-server`.
    pub servers_dir: PathBuf,
}

impl Binaries {
    /// `geolb-agent` next to this `geolb`, and `servers_dir`; checks both.
    pub fn find(servers_dir: PathBuf, version: &str) -> anyhow::Result<Binaries> {
        let agent = std::env::current_exe()?.with_file_name("geolb-agent");
        if !agent.is_file() {
            anyhow::bail!(
                "{} is missing; build it with `cargo build --workspace --bins`",
                agent.display()
            );
        }
        let binaries = Binaries { agent, servers_dir };
        if !binaries.nats_server(version).is_file() {
            anyhow::bail!(
                "nats-server {version} is not installed in {}; run `make tools` or set nats_version",
                binaries.servers_dir.display()
            );
        }
        Ok(binaries)
    }

    fn nats_server(&self, version: &str) -> PathBuf {
        self.servers_dir.join(version).join("nats-server")
    }
}

/// Where the lab's processes run: here, or in containers.
pub enum Launcher {
    /// Processes of these binaries.
    Processes(Binaries),
    /// Containers of the local Docker engine.
    Containers(super::docker::Launcher),
}

/// The lab's paths and addresses as its processes see them.
pub struct View {
    /// The control plane's URL.
    pub control_url: String,
    /// `geolb-agent`.
    pub agent: PathBuf,
    /// Installed nats-server versions, `<dir>/<version>/nats-server`.
    pub servers_dir: PathBuf,
}

impl View {
    /// nats-server `version`, as the processes see it.
    pub(super) fn nats_server(&self, version: &str) -> String {
        self.servers_dir
            .join(version)
            .join("nats-server")
            .display()
            .to_string()
    }
}

impl Launcher {
    /// The backend the state of a lab in `dir` (canonical) keeps.
    pub(super) fn backend(&self, dir: &Path) -> Backend {
        match self {
            Launcher::Processes(bins) => Backend::Processes {
                servers_dir: bins
                    .servers_dir
                    .canonicalize()
                    .unwrap_or_else(|_| bins.servers_dir.clone()),
            },
            Launcher::Containers(engine) => Backend::Containers(docker::DockerLab {
                nats_versions: engine.nats_versions.clone(),
                images: engine.images.clone(),
                ..docker::DockerLab::new(dir)
            }),
        }
    }

    /// Paths and addresses as the processes see them.
    pub(super) fn view(&self, state: &LabState) -> View {
        match self {
            Launcher::Processes(bins) => View {
                control_url: state.control_url.clone(),
                agent: bins.agent.clone(),
                servers_dir: bins.servers_dir.clone(),
            },
            Launcher::Containers(_) => View {
                control_url: format!("nats://{CONTROL_HOST}:4222"),
                agent: docker::AGENT.into(),
                servers_dir: docker::SERVERS_DIR.into(),
            },
        }
    }

    /// A path of the lab directory as the processes see it.
    pub(super) fn path(&self, state: &LabState, path: &Path) -> String {
        match self {
            Launcher::Processes(_) => path.display().to_string(),
            Launcher::Containers(_) => docker::seen(state, path).display().to_string(),
        }
    }

    /// Starts `command` as the lab process `name` of `kind`.
    pub(super) async fn launch(
        &self,
        state: &mut LabState,
        t: &Topology,
        name: &str,
        kind: docker::Kind,
        command: Vec<String>,
    ) -> anyhow::Result<()> {
        match self {
            Launcher::Processes(_) => {
                let (program, args) = command.split_first().expect("a command");
                launch(state, name, Path::new(program), args)
            }
            Launcher::Containers(engine) => {
                let lab =
                    state.backend.docker().cloned().ok_or_else(|| {
                        anyhow::anyhow!("a container launched in a lab of processes")
                    })?;
                let spec = docker::spec(&lab, state, t, name, &kind, command);
                engine.launch(state, spec).await
            }
        }
    }
}

/// Starts one process and records it at once, so a crash leaves it findable.
pub(super) fn launch(
    state: &mut LabState,
    name: &str,
    program: &Path,
    args: &[String],
) -> anyhow::Result<()> {
    let log = state.dir.join("logs").join(format!("{name}.log"));
    let pid = process::spawn(program, args, &log)?;
    state.processes.push(LabProcess {
        name: name.into(),
        pid,
    });
    state.save()
}
