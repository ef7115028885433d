//! `ProcessGuard`: a child process (agent, coordinator) that cannot outlive the test.
//!
//! The child is expected to lead its own process group (`process_group(0)`, which
//! [`ProcessGuard::spawn`] sets). On `Drop` the guard freezes it, collects its descendants
//! from `/proc` (the agent puts its own children in their own groups), SIGKILLs the group
//! and every descendant, and reaps the child.

use std::collections::HashMap;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use crate::wait::Backoff;

/// Owns a child process; `Drop` kills its process group and descendants, then reaps it.
#[derive(Debug)]
pub struct ProcessGuard {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
}

impl ProcessGuard {
    /// Spawns `cmd` as a process-group leader with stdin closed.
    pub fn spawn(name: &str, cmd: &mut Command) -> io::Result<ProcessGuard> {
        let child = cmd.process_group(0).stdin(Stdio::null()).spawn()?;
        Ok(Self::new(name, child))
    }

    /// Guards an already spawned child (which should lead its own process group).
    pub fn new(name: &str, child: Child) -> ProcessGuard {
        ProcessGuard {
            name: name.to_string(),
            child,
            status: None,
        }
    }

    /// Name used in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child, e.g. to take its stdout.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Sends `sig` to the process alone.
    pub fn signal(&self, sig: Signal) -> nix::Result<()> {
        kill(self.nix_pid(), sig)
    }

    /// Sends `sig` to the whole process group.
    pub fn signal_group(&self, sig: Signal) -> nix::Result<()> {
        killpg(self.nix_pid(), sig)
    }

    /// The exit status if the process has exited (reaping it), else `None`.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits up to `timeout` for the process to exit; `None` if it is still running.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut backoff = Backoff::default();
        loop {
            if let Some(status) = self.try_status() {
                return Some(status);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return None;
            }
            let delay = backoff.next().unwrap_or_default();
            tokio::time::sleep(delay.min(deadline - now)).await;
        }
    }

    /// The pid as nix wants it.
    fn nix_pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        if self.try_status().is_some() {
            return;
        }
        let pid = self.nix_pid();
        // Freeze the root so it cannot spawn or respawn while we collect its tree.
        let _ = kill(pid, Signal::SIGSTOP);
        let tree = descendants(pid.as_raw());
        let _ = killpg(pid, Signal::SIGKILL);
        let _ = kill(pid, Signal::SIGKILL);
        for p in tree {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// Every live descendant of `root`, read from `/proc/*/stat`.
pub fn descendants(root: i32) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some(ppid) = parent_of(pid) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut out = Vec::new();
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        for &c in children.get(&p).into_iter().flatten() {
            out.push(c);
            todo.push(c);
        }
    }
    out
}

/// The parent pid of `pid` (field 4 of `/proc/<pid>/stat`, after the parenthesised name).
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Whether `pid` exists and is not a zombie.
pub fn is_alive(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().next());
    !matches!(state, None | Some("Z") | Some("X"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drop_kills_the_tree() {
        let mut cmd = Command::new("bash");
        cmd.args(["-c", "setsid sleep 300 & echo $!; wait"])
            .stdout(Stdio::piped());
        let mut guard = ProcessGuard::spawn("bash", &mut cmd).expect("spawn bash");
        let mut line = String::new();
        let stdout = guard.child_mut().stdout.take().expect("stdout");
        io::BufRead::read_line(&mut io::BufReader::new(stdout), &mut line).expect("read pid");
        let grandchild: i32 = line.trim().parse().expect("pid");
        assert!(is_alive(grandchild), "sleep is running");
        assert_eq!(guard.wait_exit(Duration::from_millis(50)).await, None);
        drop(guard);
        crate::wait::wait_for("setsid sleep to die", Duration::from_secs(5), || async {
            (!is_alive(grandchild)).then_some(())
        })
        .await;
    }

    #[tokio::test]
    async fn wait_exit_reports_the_status() {
        let mut guard = ProcessGuard::spawn("true", &mut Command::new("true")).expect("spawn");
        let status = guard
            .wait_exit(Duration::from_secs(5))
            .await
            .expect("exits");
        assert!(status.success());
    }
}
