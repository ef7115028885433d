//! `LabDir`: a temporary lab directory for `geolb lab` tests, whose lab is
//! brought down (processes, or containers and networks) on `Drop`, also
//! when a test fails.

use crate::tools::{geolb_bin, tools_dir};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

/// A lab directory; `geolb` runs against `<dir>/lab`. It holds this test
/// binary's turn until it is dropped.
pub struct LabDir(
    pub PathBuf,
    #[allow(
        dead_code,
        reason = "held, never read: the turn lasts as long as the lab"
    )]
    MutexGuard<'static, ()>,
);

/// One lab at a time in a test binary: a lab keeps two cores busy, and two
/// side by side (a process lab beside one in containers) stalled every
/// server past the clients' probe timeout, which the scenarios then
/// rightly failed.
static TURN: Mutex<()> = Mutex::new(());

impl LabDir {
    /// A fresh directory for test `name`, once no other lab of this binary runs.
    pub fn new(name: &str) -> LabDir {
        let turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
        let dir = std::env::temp_dir().join(format!("geolb-lab-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        LabDir(dir, turn)
    }

    /// Runs `geolb ARGS` on this lab.
    pub fn geolb(&self, args: &[&str]) -> Output {
        self.geolb_with(args, &[])
    }

    /// Runs `geolb ARGS` on this lab with extra environment variables.
    pub fn geolb_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(geolb_bin())
            .args(args)
            .env("GEOLB_LAB_DIR", self.0.join("lab"))
            .env("GEOLB_SERVERS_DIR", tools_dir())
            .envs(env.iter().copied())
            .output()
            .expect("run geolb")
    }

    /// Runs `geolb ARGS`, which must succeed, and parses its JSON output.
    pub fn json(&self, args: &[&str]) -> Value {
        let output = self.geolb(args);
        assert!(
            output.status.success(),
            "geolb {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("JSON")
    }

    /// Runs `geolb scenario run NAME ARGS`, which must succeed and pass,
    /// and returns its JSON report.
    pub fn scenario(&self, name: &str, args: &[&str]) -> Value {
        let file = self.0.join(format!("{name}.json"));
        let mut all = vec!["scenario", "run", "--report", file.to_str().unwrap(), name];
        all.extend(args);
        let run = self.geolb(&all);
        assert!(
            run.status.success(),
            "{name}: {}\n{}",
            String::from_utf8_lossy(&run.stdout),
            stderr(&run)
        );
        let report: Value =
            serde_json::from_slice(&std::fs::read(&file).expect("a report")).expect("JSON");
        assert_eq!(report["passed"], true, "{name}: {}", report["reasons"]);
        report
    }

    /// Writes a lab configuration; returns its path.
    pub fn config(&self, text: &str) -> String {
        let path = self.0.join("lab.toml");
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

impl Drop for LabDir {
    /// Stops the lab; removes its folder, unless the test failed: then its
    /// logs and reports stay for the reader, and the path is printed.
    fn drop(&mut self) {
        let _ = self.geolb(&["lab", "down"]);
        match std::thread::panicking() {
            true => eprintln!("the failed lab's logs and reports: {}", self.0.display()),
            false => {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}

/// The standard error of a run, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// Checks `geolb lab status --json` output: `count` servers, every one
/// healthy and running nats-server `version`.
pub fn assert_servers(status: &Value, count: usize, version: &str) {
    let servers = status["servers"].as_array().expect("a server list");
    assert_eq!(servers.len(), count, "{servers:?}");
    assert!(
        servers
            .iter()
            .all(|s| s["healthy"] == true && s["version"] == version),
        "{servers:?}"
    );
}
