//! `geolb lab down`: stops every process the lab started (clients first,
//! the control plane last), or removes every container and network of a
//! containerised lab, also after a crash of `lab up` or the coordinator,
//! and checks that nothing of the lab is left running. The control plane's
//! JetStream store (reports) and the logs stay.

use super::process;
use super::state::LabState;
use std::path::Path;
use std::time::Duration;

/// What `lab down` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Down {
    /// Processes stopped (containers removed).
    pub stopped: usize,
    /// Networks removed (containers only).
    pub networks: usize,
    /// Processes of the lab still found afterwards (should be none).
    pub left: Vec<String>,
}

/// Stops the lab in `dir`; `Ok(None)` when there is none. With `docker`,
/// containers and networks labelled for `dir` are removed even when no
/// state file says so (a `lab up --docker` killed before writing it).
pub async fn down(dir: &Path, docker: bool) -> anyhow::Result<Option<Down>> {
    let state = LabState::load(dir)?;
    let containers = match &state {
        Some(state) => state.docker.is_some(),
        None => docker,
    };
    if containers {
        // Its host processes (the dashboard) first.
        let pids: Vec<i32> = state
            .iter()
            .flat_map(|s| s.processes.iter().rev().map(|p| p.pid))
            .collect();
        process::stop_all(&pids, Duration::from_secs(5));
        let dir = match &state {
            Some(state) => state.dir.clone(),
            // No directory: no lab was ever started there.
            None => match dir.canonicalize() {
                Ok(dir) => dir,
                Err(_) => return Ok(None),
            },
        };
        let removed = super::docker::remove(&dir).await?;
        LabState::remove(&dir)?;
        if state.is_none() && removed.containers + removed.networks == 0 {
            return Ok(None);
        }
        return Ok(Some(Down {
            stopped: removed.containers,
            networks: removed.networks,
            left: match removed.left {
                0 => Vec::new(),
                n => vec![format!(
                    "{n} containers or networks labelled {}",
                    removed.owner
                )],
            },
        }));
    }
    let Some(state) = state else {
        return Ok(None);
    };
    let pids: Vec<i32> = state.processes.iter().rev().map(|p| p.pid).collect();
    let alive = state.alive().len();
    process::stop_all(&pids, Duration::from_secs(10));
    // Anything else still running from the lab's files (e.g. a nats-server
    // whose agent was killed with SIGKILL before PDEATHSIG could act).
    let needle = state.dir.display().to_string();
    let strays = process::mentioning(&needle);
    let left = process::stop_all(&strays, Duration::from_secs(3))
        .iter()
        .map(|pid| format!("process {pid}"))
        .collect();
    LabState::remove(dir)?;
    Ok(Some(Down {
        stopped: alive + strays.len(),
        networks: 0,
        left,
    }))
}
