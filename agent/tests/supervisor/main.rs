//! The supervisor against real processes (`sh`, `bash`, `sleep`).
//!
//! The actor reaps with `waitpid(-1)` and makes this process a child
//! subreaper, so two supervisors in one process would steal each other's
//! children: every test holds [`LOCK`].

mod flaps;
mod lifecycle;
mod stops;

use geolb_agent::signals::Signal;
use geolb_agent::supervisor::{
    Backoff, FlapPlan, Handle, Outcome, RestartPolicy, Snapshot, Spec, Supervisor,
};
use geolb_proto::{ChildState, ErrorKind, EventKind, FlapMode, StopMode};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every await in these tests is bounded.
async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(10), fut).await {
        Ok(value) => value,
        Err(_) => panic!("timed out: {what}"),
    }
}

fn spec(program: &str, args: &[&str]) -> Spec {
    Spec {
        program: PathBuf::from(program),
        args: args.iter().map(Into::into).collect(),
        env: Vec::new(),
        replicas: 1,
        restart: RestartPolicy::Never,
        backoff: Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_secs(2),
            factor: 2.0,
            jitter: 0.0,
            reset_after: Duration::from_secs(10),
        },
        term_grace: Duration::from_secs(5),
        ldm_grace: Duration::from_secs(5),
        drain_probe: None,
    }
}

fn bash(script: &str) -> Spec {
    spec("/bin/bash", &["-c", script])
}

struct Sup {
    handle: Handle,
    task: JoinHandle<Outcome>,
    events: mpsc::Receiver<EventKind>,
}

impl Sup {
    fn start(spec: Spec) -> Sup {
        let (tx, events) = mpsc::channel(256);
        let (handle, task) = Supervisor::start(spec, tx);
        Sup {
            handle,
            task,
            events,
        }
    }

    /// Waits for an event matching `want`, skipping others.
    async fn event(&mut self, what: &str, want: impl Fn(&EventKind) -> bool) -> EventKind {
        within(what, async {
            loop {
                match self.events.recv().await {
                    Some(event) if want(&event) => return event,
                    Some(_) => continue,
                    None => panic!("events closed while waiting for {what}"),
                }
            }
        })
        .await
    }

    /// Waits until the snapshot satisfies `want`.
    async fn until(&self, what: &str, want: impl FnMut(&Snapshot) -> bool) -> Snapshot {
        let mut watch = self.handle.watch();
        within(what, async {
            watch.wait_for(want).await.map(|s| s.clone())
        })
        .await
        .expect("the supervisor is running")
    }

    fn pid(&self) -> u32 {
        self.handle
            .snapshot()
            .pids()
            .first()
            .map(|p| p.1)
            .expect("a running child")
    }

    /// Ends the supervisor with a forwarded SIGTERM and returns its outcome.
    async fn shut_down(self) -> Outcome {
        self.handle.forward(Signal::Term).await;
        within("the supervisor to end", self.task)
            .await
            .expect("the actor does not panic")
    }
}

/// Waits until `pid` catches (`SigCgt`) or ignores (`SigIgn`) signal
/// `number`, so a fixture's `trap` is in place before we signal it.
async fn until_trapped(pid: u32, field: &str, number: u32) {
    let bit = 1u64 << (number - 1);
    within("the fixture's trap", async {
        loop {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let mask = status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
                .unwrap_or(0);
            if mask & bit != 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// Waits until `pid`'s state letter satisfies `want` (signals act
/// asynchronously).
async fn until_state(pid: u32, want: impl Fn(Option<char>) -> bool) {
    within("a process state", async {
        while !want(proc_state(pid)) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// Process state letter from /proc/<pid>/stat ('S', 'T', 'Z', ...).
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

fn running(s: &Snapshot) -> bool {
    s.state() == ChildState::Running
}

/// Pids of zombie processes whose parent is `parent`.
fn zombies_of(parent: u32) -> Vec<u32> {
    processes_of(parent, true)
}

/// Pids of processes whose parent is `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    processes_of(parent, false)
}

fn processes_of(parent: u32, zombies_only: bool) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
                    .unwrap_or_default()
            };
            (!zombies_only || field("State:").starts_with('Z'))
                && field("PPid:") == parent.to_string()
        })
        .collect()
}
