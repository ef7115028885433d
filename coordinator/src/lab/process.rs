//! Starting and stopping the lab's processes. Each one leads its own
//! process group and is not waited for: it outlives `geolb lab up`, and
//! `geolb lab down` stops its whole group.

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `program args` in its own process group, output appended to `log`.
pub fn spawn(program: &Path, args: &[String], log: &Path) -> anyhow::Result<i32> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", log.display()))?;
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .process_group(0)
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", program.display()))?;
    Ok(child.id() as i32)
}

/// Whether `pid` runs (a zombie does not count).
pub fn alive(pid: i32) -> bool {
    if kill(Pid::from_raw(pid), None).is_err() {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|rest| rest.split_whitespace().next());
    !matches!(state, Some("Z") | Some("X") | None)
}

/// Sends SIGTERM to every group, waits up to `grace` for them to go, then
/// SIGKILLs what is left. Returns the pids that would not die.
pub fn stop_all(pids: &[i32], grace: Duration) -> Vec<i32> {
    for pid in pids {
        let _ = killpg(Pid::from_raw(*pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && pids.iter().any(|p| alive(*p)) {
        reap();
        std::thread::sleep(Duration::from_millis(50));
    }
    for pid in pids.iter().filter(|p| alive(**p)) {
        let _ = killpg(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && pids.iter().any(|p| alive(*p)) {
        reap();
        std::thread::sleep(Duration::from_millis(20));
    }
    pids.iter().copied().filter(|p| alive(*p)).collect()
}

/// Reaps our own exited children (when `lab up` stops what it started).
fn reap() {
    use nix::sys::wait::{waitpid, WaitPidFlag};
    while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
        if status == nix::sys::wait::WaitStatus::StillAlive {
            break;
        }
    }
}

/// Pids of processes whose command line mentions `needle` (the lab
/// directory): what `lab down` checks is gone.
pub fn mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me && alive(*pid))
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).contains(needle)
        })
        .collect()
}
