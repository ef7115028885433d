//! Child processes: spawning a process-group leader, signalling its group,
//! and reaping every child of the agent with `waitpid(-1)`.
//!
//! Children are spawned with `std::process::Command`, never
//! `tokio::process`: the actor reaps with `waitpid(-1)`, which would steal
//! the statuses tokio waits for (nor may any other code of the agent wait
//! on a child: `Command::output()` or `status()` would race the reaper).
//! `PR_SET_PDEATHSIG` fires when the spawning *thread* ends, so the actor
//! must run on a thread that lives as long as the agent (the agent's
//! current-thread runtime).

use crate::signals::Signal;
use geolb_proto::ExitInfo;
use nix::sys::signal::{self, SigHandler, SigSet, SigmaskHow};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Signals whose disposition a child gets back at default, whatever the
/// agent inherited (an ignored signal stays ignored across exec).
const RESET: [signal::Signal; 8] = [
    signal::Signal::SIGTERM,
    signal::Signal::SIGINT,
    signal::Signal::SIGHUP,
    signal::Signal::SIGUSR1,
    signal::Signal::SIGUSR2,
    signal::Signal::SIGQUIT,
    signal::Signal::SIGPIPE,
    signal::Signal::SIGCHLD,
];

/// Spawns `program` as the leader of a new process group, with `env` and
/// `GEOLB_REPLICA=<replica>` added to its environment, stdin from /dev/null, stdout and stderr
/// passed through, an empty signal mask, and SIGKILL when the spawning
/// thread dies. Returns its pid.
pub(super) fn spawn(
    program: &Path,
    args: &[OsString],
    env: &[(OsString, OsString)],
    replica: u32,
) -> std::io::Result<Pid> {
    let parent = nix::unistd::getpid();
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("GEOLB_REPLICA", replica.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .process_group(0);
    // SAFETY: the closure runs between fork and exec and only makes
    // async-signal-safe system calls (prctl, sigaction, sigprocmask, getppid);
    // it allocates nothing.
    unsafe {
        command.pre_exec(move || prepare_child(parent));
    }
    let child = command.spawn()?;
    // Dropping a std Child neither kills nor waits; the actor reaps it.
    let pid = i32::try_from(child.id()).map_err(std::io::Error::other)?;
    Ok(Pid::from_raw(pid))
}

/// Runs in the forked child before exec.
fn prepare_child(parent: Pid) -> std::io::Result<()> {
    nix::sys::prctl::set_pdeathsig(signal::Signal::SIGKILL)?;
    // The agent may have died between fork and prctl.
    if nix::unistd::getppid() != parent {
        return Err(std::io::Error::other("the agent exited while spawning"));
    }
    for sig in RESET {
        // SAFETY: SIG_DFL installs no handler; sigaction is async-signal-safe.
        unsafe { signal::signal(sig, SigHandler::SigDfl) }?;
    }
    signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
    Ok(())
}

/// Sends `sig` to the process group led by `pid`.
pub(super) fn signal_group(pid: Pid, sig: Signal) {
    if let Err(err) = signal::killpg(pid, sig.to_nix()) {
        tracing::debug!(pid = pid.as_raw(), signal = %sig, %err, "Could not signal the process group.");
    }
}

/// Sends `sig` to the process `pid` only.
pub(super) fn signal_pid(pid: Pid, sig: Signal) {
    if let Err(err) = signal::kill(pid, sig.to_nix()) {
        tracing::debug!(pid = pid.as_raw(), signal = %sig, %err, "Could not signal the process.");
    }
}

/// Reaps every child that has ended, without blocking.
pub(super) fn reap_all() -> Vec<(Pid, ExitInfo)> {
    let mut reaped = Vec::new();
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => reaped.push((pid, exit_info(Some(code), None))),
            Ok(WaitStatus::Signaled(pid, sig, _core)) => {
                reaped.push((pid, exit_info(None, Some(sig as i32))))
            }
            Ok(WaitStatus::StillAlive) => break,
            // Stops and continues are only reported with WUNTRACED/WCONTINUED.
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::ECHILD) => break,
            Err(err) => {
                tracing::warn!(%err, "Could not reap children.");
                break;
            }
        }
    }
    reaped
}

/// An exit record stamped now.
pub(super) fn exit_info(code: Option<i32>, signal: Option<i32>) -> ExitInfo {
    ExitInfo {
        code,
        signal,
        at_ms: now_ms(),
    }
}

/// Milliseconds since the epoch.
pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
