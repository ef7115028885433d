//! `geolb lab down`: stops every process the lab started (clients first,
//! the control plane last) and, for a lab in containers, removes every
//! container and network labelled for it, also after a crash of `lab up` or
//! the coordinator, and checks that nothing of the lab is left running. The
//! control plane's JetStream store (reports) and the logs stay.

use super::process;
use super::state::{Backend, LabState};
use std::path::Path;
use std::time::Duration;

/// What `lab down` did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Down {
    /// Processes stopped and containers removed.
    pub stopped: usize,
    /// Networks removed (containers only).
    pub networks: usize,
    /// What of the lab was still found afterwards (should be nothing).
    pub left: Vec<String>,
}

/// Stops the lab in `dir`; `Ok(None)` when there is none. With
/// `sweep_containers`, containers and networks labelled for `dir` are
/// removed even when no state file says so (a `lab up --docker` killed
/// before writing it).
pub async fn down(dir: &Path, sweep_containers: bool) -> anyhow::Result<Option<Down>> {
    let down = match LabState::load(dir)? {
        Some(state) => teardown(&state).await?,
        None if sweep_containers => match dir.canonicalize() {
            Ok(dir) => {
                let down = containers(&dir).await?;
                if down.stopped + down.networks == 0 {
                    return Ok(None);
                }
                down
            }
            // No directory: no lab was ever started there.
            Err(_) => return Ok(None),
        },
        None => return Ok(None),
    };
    LabState::remove(dir)?;
    Ok(Some(down))
}

/// Stops everything `state` says the lab started, by its backend.
pub async fn teardown(state: &LabState) -> anyhow::Result<Down> {
    let mut down = processes(state);
    if let Backend::Containers(_) = state.backend {
        let removed = containers(&state.dir).await?;
        down.stopped += removed.stopped;
        down.networks += removed.networks;
        down.left.extend(removed.left);
    }
    Ok(down)
}

/// Stops the lab's processes on this machine, then any stray process still
/// running from the lab's files (e.g. a nats-server whose agent was killed
/// with SIGKILL before PDEATHSIG could act).
fn processes(state: &LabState) -> Down {
    let pids: Vec<i32> = state.processes.iter().rev().map(|p| p.pid).collect();
    let alive = state.alive().len();
    process::stop_all(&pids, Duration::from_secs(10));
    let needle = state.dir.display().to_string();
    let strays = process::mentioning(&needle);
    let left = process::stop_all(&strays, Duration::from_secs(3))
        .iter()
        .map(|pid| format!("process {pid}"))
        .collect();
    Down {
        stopped: alive + strays.len(),
        networks: 0,
        left,
    }
}

/// Removes every container and network labelled for the lab in `dir`.
async fn containers(dir: &Path) -> anyhow::Result<Down> {
    let removed = super::docker::remove(dir).await?;
    Ok(Down {
        stopped: removed.containers,
        networks: removed.networks,
        left: match removed.left {
            0 => Vec::new(),
            n => vec![format!(
                "{n} containers or networks labelled {}",
                removed.owner
            )],
        },
    })
}
