//! Agents under test: `geolb-agent run` around a real nats-server or any
//! command, and `geolb` runs whose output tests read.
//!
//! ```no_run
//! use geolb_tests::{agent::AgentBuilder, default_version, ServerConfig};
//! let control = geolb_tests::NatsServer::start(default_version(), ServerConfig::default().jetstream());
//! let (agent, server) = AgentBuilder::new("lon-1", "lon")
//!     .control(&control.client_url())
//!     .server(default_version(), ServerConfig::default().server_name("lon-1"));
//! ```

use crate::config::ServerConfig;
use crate::process::ProcessGuard;
use crate::tools::{agent_bin, geolb_bin, nats_server_bin, tools_dir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

/// A nats-server run by an agent rather than by the testkit.
#[derive(Debug, Clone)]
pub struct AgentServer {
    /// Its configuration (ports resolved).
    pub config: ServerConfig,
    /// Its folder (config file, JetStream store).
    pub dir: PathBuf,
}

impl AgentServer {
    /// `nats://127.0.0.1:<port>`.
    pub fn client_url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.config.port)
    }

    /// `http://127.0.0.1:<http_port>`.
    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.config.http_port)
    }
}

impl Drop for AgentServer {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Builds a `geolb-agent run` command line.
#[derive(Debug, Clone)]
pub struct AgentBuilder {
    id: String,
    region: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    quiet: bool,
    bin: Option<PathBuf>,
}

impl AgentBuilder {
    /// An agent with this id and region, heartbeats every 200 ms.
    pub fn new(id: &str, region: &str) -> AgentBuilder {
        AgentBuilder {
            id: id.to_string(),
            region: region.to_string(),
            args: vec![
                "--heartbeat".into(),
                "200ms".into(),
                "--metrics-interval".into(),
                "500ms".into(),
            ],
            env: Vec::new(),
            quiet: false,
            bin: None,
        }
    }

    /// Runs this agent binary (e.g. the release build) instead of the debug one.
    pub fn bin(mut self, bin: &Path) -> AgentBuilder {
        self.bin = Some(bin.to_path_buf());
        self
    }

    /// Replaces the default heartbeat and metrics intervals (200 ms, 500 ms), e.g. `("1s", "5s")`.
    pub fn intervals(mut self, heartbeat: &str, metrics: &str) -> AgentBuilder {
        self.args.splice(
            0..4,
            [
                "--heartbeat".to_string(),
                heartbeat.to_string(),
                "--metrics-interval".to_string(),
                metrics.to_string(),
            ],
        );
        self
    }

    /// Connects to the control plane at `url`.
    pub fn control(self, url: &str) -> AgentBuilder {
        self.arg("--control").arg(url)
    }

    /// Adds one raw flag or value.
    pub fn arg(mut self, arg: impl Into<String>) -> AgentBuilder {
        self.args.push(arg.into());
        self
    }

    /// Sets an environment variable for the agent.
    pub fn env(mut self, key: &str, value: &str) -> AgentBuilder {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Sends the agent's (and child's) output to /dev/null instead of the test's.
    pub fn quiet(mut self) -> AgentBuilder {
        self.quiet = true;
        self
    }

    /// The full argument list for `command` (after `--`; none when it is
    /// empty, as with `--container`).
    pub fn command_line(&self, command: &[&str]) -> Vec<String> {
        let mut line = vec![
            "run".to_string(),
            "--id".into(),
            self.id.clone(),
            "--region".into(),
            self.region.clone(),
            "--servers-dir".into(),
            tools_dir().display().to_string(),
        ];
        line.extend(self.args.iter().cloned());
        if !command.is_empty() {
            line.push("--".into());
            line.extend(command.iter().map(|s| s.to_string()));
        }
        line
    }

    /// Spawns the agent (debug, unless [`AgentBuilder::bin`]) around `command`.
    pub fn spawn(&self, command: &[&str]) -> ProcessGuard {
        let bin = self.bin.clone().unwrap_or_else(agent_bin);
        self.try_spawn_bin(&bin, command)
            .unwrap_or_else(|e| panic!("spawn geolb-agent: {e}"))
    }

    /// Spawns the agent binary `bin` (e.g. the release build) around `command`.
    pub fn try_spawn_bin(&self, bin: &Path, command: &[&str]) -> std::io::Result<ProcessGuard> {
        let mut cmd = Command::new(bin);
        cmd.args(self.command_line(command));
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if self.quiet {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        ProcessGuard::spawn(&format!("geolb-agent {}", self.id), &mut cmd)
    }

    /// Spawns the agent around nats-server `version` with `config` (ports
    /// resolved, monitor passed to the agent). Does not wait for readiness.
    pub fn server(self, version: &str, mut config: ServerConfig) -> (ProcessGuard, AgentServer) {
        config.resolve_ports();
        let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join("geolb-tests").join(format!(
            "{}-agent-{n}-{}",
            std::process::id(),
            self.id
        ));
        std::fs::create_dir_all(&dir).expect("create agent server dir");
        if config.jetstream && config.store_dir.is_none() {
            config.store_dir = Some(dir.join("jetstream"));
        }
        let conf = dir.join("nats-server.conf");
        std::fs::write(&conf, config.render()).expect("write nats-server config");
        let server = AgentServer { config, dir };
        let monitor = server.monitor_url();
        let bin = nats_server_bin(version).display().to_string();
        let guard = self
            .arg("--role")
            .arg("server")
            .arg("--monitor")
            .arg(monitor)
            .spawn(&[&bin, "-c", &conf.display().to_string()]);
        (guard, server)
    }
}

/// Runs `geolb --control <control> <args>` to completion.
pub fn geolb(control: &str, args: &[&str]) -> Output {
    geolb_with(&geolb_bin(), control, args)
}

/// Runs the coordinator binary `bin` with `--control <control> <args>` to completion.
pub fn geolb_with(bin: &Path, control: &str, args: &[&str]) -> Output {
    Command::new(bin)
        .arg("--control")
        .arg(control)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run geolb: {e}"))
}

/// Runs `geolb` with `--json` appended and parses its stdout.
pub fn geolb_json(control: &str, args: &[&str]) -> (Output, serde_json::Value) {
    let mut all: Vec<&str> = args.to_vec();
    all.push("--json");
    let output = geolb(control, &all);
    let value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "geolb {args:?} printed no JSON ({e}); stdout: {} stderr: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output, value)
}

/// Connects `count` NATS clients to `url`; the receiver gets one `()` per
/// lame-duck notice any of them hears.
pub async fn lame_duck_listeners(
    url: &str,
    count: usize,
) -> (
    Vec<async_nats::Client>,
    tokio::sync::mpsc::UnboundedReceiver<()>,
) {
    let (tx, notices) = tokio::sync::mpsc::unbounded_channel();
    let mut clients = Vec::new();
    for _ in 0..count {
        let tx = tx.clone();
        let client = async_nats::ConnectOptions::new()
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    if matches!(event, async_nats::Event::LameDuckMode) {
                        let _ = tx.send(());
                    }
                }
            })
            .connect(url)
            .await
            .unwrap_or_else(|e| panic!("connect a client to {url}: {e}"));
        clients.push(client);
    }
    (clients, notices)
}
