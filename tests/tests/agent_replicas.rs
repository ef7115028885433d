//! `--replicas N`: the agent runs N copies of its command, each with
//! `GEOLB_REPLICA=<index>` and leading its own process group; SIGTERM stops
//! them all and the agent exits with replica 0's code (`Outcome` in
//! `agent/src/supervisor/mod.rs`: the child's code, or 128+signal).

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::Duration;

use geolb_tests::agent::AgentBuilder;
use geolb_tests::process::{descendants, is_alive};
use geolb_tests::procfs::{children, stat, Marker, MARK_VAR};
use geolb_tests::wait_for;
use nix::sys::signal::Signal;

/// Upper bound for one step: replicas starting, the agent exiting.
const STEP: Duration = Duration::from_secs(5);

/// A temp folder, removed unless the test panics.
struct Scratch(PathBuf);

impl Scratch {
    fn new(label: &str) -> Scratch {
        let dir = std::env::temp_dir()
            .join("geolb-tests")
            .join(format!("{}-{label}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[tokio::test]
async fn three_replicas_start_with_their_index_and_stop_on_sigterm() {
    let dir = Scratch::new("replicas");
    let out = dir.0.join("replicas").display().to_string();
    let mark = Marker::new("replicas");
    let mut agent = AgentBuilder::new("replicas", "local")
        .arg("--restart")
        .arg("never")
        .arg("--replicas")
        .arg("3")
        .env("OUT", &out)
        .env(MARK_VAR, mark.value())
        .spawn(&["sh", "-c", r#"echo "$GEOLB_REPLICA" >> "$OUT"; sleep 30"#]);
    let agent_pid = agent.pid() as i32;

    let mut indexes = wait_for("three replicas to write their index", STEP, || {
        let lines: Vec<String> = std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        async move { (lines.len() >= 3).then_some(lines) }
    })
    .await;
    indexes.sort();
    assert_eq!(indexes, ["0", "1", "2"]);

    let replicas: Vec<i32> = children(agent_pid)
        .iter()
        .filter(|s| s.comm == "sh" && !s.is_zombie())
        .map(|s| s.pid)
        .collect();
    assert_eq!(
        replicas.len(),
        3,
        "replica processes: {:?}",
        children(agent_pid)
    );
    for pid in &replicas {
        let group = stat(*pid).map(|s| s.pgrp);
        assert_eq!(
            group,
            Some(*pid),
            "replica {pid} does not lead its own process group"
        );
    }
    // Each replica's `sleep 30` too.
    wait_for("each replica's sleep to start", STEP, || {
        let sleeps = descendants(agent_pid)
            .into_iter()
            .filter_map(stat)
            .filter(|s| s.comm == "sleep")
            .count();
        async move { (sleeps == 3).then_some(()) }
    })
    .await;
    let tree = descendants(agent_pid);

    agent.signal(Signal::SIGTERM).expect("SIGTERM the agent");
    let Some(status) = agent.wait_exit(STEP).await else {
        panic!("the agent still runs {STEP:?} after SIGTERM");
    };
    // Replica 0 died from the forwarded SIGTERM: 128 + 15.
    assert_eq!(
        status.code(),
        Some(143),
        "{status} (signal {:?})",
        status.signal()
    );
    let alive: Vec<i32> = tree.into_iter().filter(|p| is_alive(*p)).collect();
    assert!(
        alive.is_empty(),
        "still running after the agent exited: {alive:?}"
    );
    assert!(mark.live().is_empty(), "left behind: {:?}", mark.live());
}
