//! `geolb lab down`: stops every process the lab started (clients first,
//! the control plane last), or removes every container and network of a
//! containerised lab, also after a crash of `lab up` or the coordinator,
//! and checks that nothing of the lab is left running. The control plane's
//! JetStream store (reports) and the logs stay.

use super::process;
use super::state::LabState;
use std::path::Path;
use std::time::Duration;

/// How long the archiver may take to store its last batch (its shutdown timeout and some).
const ARCHIVER_GRACE: Duration = Duration::from_secs(35);

/// When a lab process is stopped: 0 first, 2 last.
fn stop_phase(name: &str) -> u8 {
    match name {
        "control" => 2,
        "archiver" => 1,
        _ => 0,
    }
}

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
        // The archiver runs here, beside the containers: it stores what it holds first.
        if let Some(state) = &state {
            let pids: Vec<i32> = state.processes.iter().map(|p| p.pid).collect();
            process::stop_all(&pids, ARCHIVER_GRACE);
        }
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
    let alive = state.alive().len();
    // Agents and the emulator first, so their last telemetry reaches the
    // stream; then the archiver, which stores what it holds and needs the
    // control plane for its acknowledgement; the control plane last.
    for phase in 0..3 {
        let pids: Vec<i32> = state
            .processes
            .iter()
            .rev()
            .filter(|p| stop_phase(&p.name) == phase)
            .map(|p| p.pid)
            .collect();
        let grace = if phase == 1 {
            ARCHIVER_GRACE
        } else {
            Duration::from_secs(10)
        };
        process::stop_all(&pids, grace);
    }
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
