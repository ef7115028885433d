//! The agent reaps orphans: as PID 1 of a PID namespace (`unshare --pid`)
//! and, without one, as a child subreaper. Its child's exit code passes
//! through `unshare`.
//!
//! The orphans are shells started as `(sh orphan.sh &)` by the agent's child:
//! their parent subshell exits at once, so they are reparented to the agent.
//! They run until the test creates a file, so the test sees them arrive
//! before it lets them end, then checks that none is left a zombie.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use geolb_tests::agent::AgentBuilder;
use geolb_tests::procfs::{
    children, cmdline, ns_pids, stat, zombie_children, Marker, Stat, MARK_VAR,
};
use geolb_tests::{agent_bin, wait_for, ProcessGuard};

/// Upper bound for one step: an exit, a process appearing or being reaped.
const STEP: Duration = Duration::from_secs(5);

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

/// The agent's child: two orphans, then wait for `$DONE` and exit 5.
const MAIN: &str = r#"(sh "$ORPHAN" &)
(sh "$ORPHAN" &)
while [ ! -e "$DONE" ]; do sleep 0.02; done
exit 5
"#;

/// An orphan: runs until `$GO` exists.
const ORPHAN: &str = r#"while [ ! -e "$GO" ]; do sleep 0.02; done
"#;

/// A temp folder with the scripts and the files that release them; removed
/// unless the test panics.
struct Scenario {
    dir: PathBuf,
}

impl Scenario {
    fn new(label: &str) -> Scenario {
        let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir()
            .join("geolb-tests")
            .join(format!("{}-{label}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        std::fs::write(dir.join("main.sh"), MAIN).expect("write main.sh");
        std::fs::write(dir.join("orphan.sh"), ORPHAN).expect("write orphan.sh");
        Scenario { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// Environment the scripts read.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("ORPHAN", self.path("orphan.sh")),
            ("GO", self.path("go")),
            ("DONE", self.path("done")),
        ]
    }

    /// The agent's command.
    fn command(&self) -> Vec<String> {
        vec!["sh".to_string(), self.path("main.sh")]
    }

    fn touch(&self, name: &str) {
        std::fs::write(self.path(name), "").unwrap_or_else(|e| panic!("touch {name}: {e}"));
    }

    /// With the agent at host pid `agent` running `main.sh`: waits for both
    /// orphans to be reparented to it, ends them, checks they are reaped,
    /// then lets `main.sh` exit 5.
    async fn orphans_are_reaped(&self, agent: i32) {
        let is_orphan = |s: &Stat| cmdline(s.pid).iter().any(|a| a.ends_with("orphan.sh"));
        wait_for(
            &format!(
                "two orphans to be reparented to the agent {agent} (is it a subreaper / PID 1?)"
            ),
            STEP,
            || {
                let orphans = children(agent)
                    .iter()
                    .filter(|s| !s.is_zombie() && is_orphan(s))
                    .count();
                async move { (orphans >= 2).then_some(()) }
            },
        )
        .await;
        let main: Vec<i32> = children(agent)
            .iter()
            .filter(|s| cmdline(s.pid).iter().any(|a| a.ends_with("main.sh")))
            .map(|s| s.pid)
            .collect();
        assert_eq!(
            main.len(),
            1,
            "one main.sh child of the agent: {:?}",
            children(agent)
        );
        self.touch("go");
        wait_for(
            &format!(
                "the agent {agent} to reap its orphans (no child but main.sh, zombies included)"
            ),
            STEP,
            || {
                let others: Vec<Stat> = children(agent)
                    .into_iter()
                    .filter(|s| s.pid != main[0])
                    .collect();
                async move { others.is_empty().then_some(()) }
            },
        )
        .await;
        assert!(
            zombie_children(agent).is_empty(),
            "{:?}",
            zombie_children(agent)
        );
        self.touch("done");
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs `unshare --pid --fork --mount-proc geolb-agent run --restart never
/// -- <command>`, its stderr to `stderr_file`.
fn unshare_agent(
    mark: &Marker,
    env: &[(&str, String)],
    command: &[&str],
    stderr_file: &str,
) -> ProcessGuard {
    if let Err(e) = Command::new("unshare").arg("--version").output() {
        panic!("cannot run `unshare` ({e}); the PID-namespace tests need util-linux's unshare");
    }
    let agent = agent_bin().display().to_string();
    let line = AgentBuilder::new("pid1", "local")
        .arg("--restart")
        .arg("never")
        .command_line(command);
    let stderr = std::fs::File::create(stderr_file).expect("create stderr file");
    let child = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", &agent])
        .args(line)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env(MARK_VAR, mark.value())
        .process_group(0)
        .stdin(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn unshare: {e}"));
    ProcessGuard::new("unshare", child)
}

/// The agent's host pid: the child of `unshare` once it has exec'd the
/// agent. Panics with unshare's stderr if unshare gave up (EPERM, ...).
async fn agent_in_namespace(unshare: &mut ProcessGuard, stderr_file: &str) -> i32 {
    let parent = unshare.pid() as i32;
    let found = wait_for(
        "unshare to start geolb-agent in a new PID namespace",
        STEP,
        || {
            let exited = unshare.try_status();
            let agent = children(parent)
                .into_iter()
                .find(|s| s.comm == "geolb-agent" && !s.is_zombie());
            let found = match (agent, exited) {
                (Some(agent), _) => Some(Ok(agent.pid)),
                (None, Some(status)) => Some(Err(status)),
                (None, None) => None,
            };
            async move { found }
        },
    )
    .await;
    let agent = found.unwrap_or_else(|status| {
        let stderr = std::fs::read_to_string(stderr_file).unwrap_or_default();
        panic!(
            "unshare --pid --fork --mount-proc failed ({status}) before starting the agent: {}\n\
             these tests need CAP_SYS_ADMIN (root, or unprivileged user namespaces)",
            stderr.trim()
        )
    });
    assert_eq!(
        ns_pids(agent).last(),
        Some(&1),
        "the agent {agent} is not PID 1 in its namespace: {:?}",
        stat(agent)
    );
    agent
}

/// Waits for `guard` to exit and returns its code.
async fn exit_code(guard: &mut ProcessGuard) -> i32 {
    let Some(status) = guard.wait_exit(STEP).await else {
        panic!("{} still running after {STEP:?}", guard.name());
    };
    status
        .code()
        .unwrap_or_else(|| panic!("{} died from signal {:?}", guard.name(), status.signal()))
}

/// Waits until no live process carries `mark`.
async fn nothing_left(mark: &Marker) {
    wait_for(
        &format!("every process marked {} to be gone", mark.value()),
        STEP,
        || {
            let live = mark.live();
            async move { live.is_empty().then_some(()) }
        },
    )
    .await;
}

#[tokio::test]
async fn reaps_orphans_as_pid_1_of_a_pid_namespace() {
    let scenario = Scenario::new("pid1");
    let mark = Marker::new("pid1");
    let stderr = scenario.path("unshare.stderr");
    let command = scenario.command();
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let mut unshare = unshare_agent(&mark, &scenario.env(), &command, &stderr);
    let agent = agent_in_namespace(&mut unshare, &stderr).await;
    scenario.orphans_are_reaped(agent).await;
    assert_eq!(
        exit_code(&mut unshare).await,
        5,
        "main.sh's code through the agent and unshare"
    );
    nothing_left(&mark).await;
}

#[tokio::test]
async fn exit_code_passes_through_unshare() {
    let scenario = Scenario::new("pid1-exit");
    let mark = Marker::new("pid1-exit");
    let stderr = scenario.path("unshare.stderr");
    let mut unshare = unshare_agent(&mark, &[], &["sh", "-c", "exit 5"], &stderr);
    let code = exit_code(&mut unshare).await;
    assert_eq!(
        code,
        5,
        "unshare stderr: {}",
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
    nothing_left(&mark).await;
}

#[tokio::test]
async fn reaps_orphans_as_a_child_subreaper() {
    let scenario = Scenario::new("subreaper");
    let mark = Marker::new("subreaper");
    let mut builder = AgentBuilder::new("subreaper", "local")
        .arg("--restart")
        .arg("never")
        .env(MARK_VAR, mark.value());
    for (k, v) in scenario.env() {
        builder = builder.env(k, &v);
    }
    let command = scenario.command();
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    let mut agent = builder.spawn(&command);
    scenario.orphans_are_reaped(agent.pid() as i32).await;
    assert_eq!(exit_code(&mut agent).await, 5);
    nothing_left(&mark).await;
}
