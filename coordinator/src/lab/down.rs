//! `geolb lab down`: stops every process the lab started (clients first,
//! the control plane last), also after a crash of `lab up` or the
//! coordinator, and checks that nothing of the lab is left running. The
//! control plane's JetStream store (reports) and the logs stay.

use super::process;
use super::state::LabState;
use std::path::Path;
use std::time::Duration;

/// What `lab down` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Down {
    /// Processes stopped.
    pub stopped: usize,
    /// Processes of the lab still found afterwards (should be none).
    pub left: Vec<i32>,
}

/// Stops the lab in `dir`; `Ok(None)` when there is none.
pub fn down(dir: &Path) -> anyhow::Result<Option<Down>> {
    let Some(state) = LabState::load(dir)? else {
        return Ok(None);
    };
    let pids: Vec<i32> = state.processes.iter().rev().map(|p| p.pid).collect();
    let alive = state.alive().len();
    process::stop_all(&pids, Duration::from_secs(10));
    // Anything else still running from the lab's files (e.g. a nats-server
    // whose agent was killed with SIGKILL before PDEATHSIG could act).
    let needle = state.dir.display().to_string();
    let strays = process::mentioning(&needle);
    let left = process::stop_all(&strays, Duration::from_secs(3));
    LabState::remove(dir)?;
    Ok(Some(Down {
        stopped: alive + strays.len(),
        left,
    }))
}
