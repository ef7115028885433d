//! `NatsServer`: one real nats-server process, started from a generated config file in its
//! own temp folder, killed and cleaned up on `Drop`.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::config::ServerConfig;
use crate::http::{get_json, http_get};
use crate::tools::nats_server_bin;
use crate::wait::wait_for_blocking;

/// How long a server may take to answer `/healthz` with 200.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Distinguishes the temp folders of the servers of one process.
static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// A running nats-server on 127.0.0.1; `Drop` SIGKILLs it and removes its folder.
#[derive(Debug)]
pub struct NatsServer {
    version: String,
    config: ServerConfig,
    dir: PathBuf,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts nats-server `version` with `config` (0 ports resolved) and waits until ready.
    pub fn start(version: &str, config: ServerConfig) -> NatsServer {
        let mut server = Self::spawn(version, config);
        server.wait_ready();
        server
    }

    /// Starts nats-server without waiting for it (cluster members need each other first).
    pub fn spawn(version: &str, mut config: ServerConfig) -> NatsServer {
        config.resolve_ports();
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let label = if config.server_name.is_empty() {
            "nats"
        } else {
            &config.server_name
        };
        let dir = std::env::temp_dir()
            .join("geolb-tests")
            .join(format!("{}-{id}-{label}", std::process::id()));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        if config.jetstream && config.store_dir.is_none() {
            config.store_dir = Some(dir.join("jetstream"));
        }
        let mut server = NatsServer {
            version: version.to_string(),
            config,
            dir,
            child: None,
        };
        server.launch();
        server
    }

    /// Writes the config file and spawns the process, appending its output to the log.
    fn launch(&mut self) {
        let bin = nats_server_bin(&self.version);
        fs::write(self.config_path(), self.config.render()).expect("write nats-server config");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path());
        let log = log.expect("open nats-server log");
        let child = Command::new(&bin)
            .arg("-c")
            .arg(self.config_path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        self.child = Some(child);
    }

    /// Polls `/healthz` until it answers 200; panics with the log if the process exits.
    pub fn wait_ready(&mut self) {
        let what = format!("nats-server {} /healthz", self.label());
        let url = format!("{}/healthz", self.monitor_url());
        wait_for_blocking(&what, READY_TIMEOUT, || {
            self.assert_alive();
            matches!(http_get(&url), Ok((200, _))).then_some(())
        });
    }

    /// Panics with the last lines of the log if the process has exited.
    fn assert_alive(&mut self) {
        let child = self.child.as_mut().expect("nats-server was killed");
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "nats-server {} exited early ({status}); last lines of {}:\n{}",
                self.label(),
                self.log_path().display(),
                self.log_tail(20)
            );
        }
    }

    /// Kills the process and starts it again with the same config and ports.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
        self.wait_ready();
    }

    /// Kills the process and starts `version` with the same config and ports.
    pub fn restart_with_version(&mut self, version: &str) {
        self.version = version.to_string();
        self.restart();
    }

    /// SIGKILLs the process and reaps it; a no-op when it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `sig` to the process (SIGUSR2: lame duck mode, SIGINT: stop).
    pub fn signal(&self, sig: Signal) -> nix::Result<()> {
        let pid = self.pid().ok_or(nix::Error::ESRCH)?;
        kill(Pid::from_raw(pid as i32), sig)
    }

    /// Whether the process is still running (reaps it if it has exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Process id, or `None` after `kill`.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The nats-server version this server runs.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The resolved configuration (every port is set).
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// `server_name` from the config (may be empty).
    pub fn name(&self) -> &str {
        &self.config.server_name
    }

    /// `server_name`, or the client address when unnamed (for messages).
    pub fn label(&self) -> String {
        match self.name() {
            "" => format!("127.0.0.1:{}", self.config.port),
            name => name.to_string(),
        }
    }

    /// The server's temp folder (config, log, JetStream store).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the generated config file.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("nats-server.conf")
    }

    /// Path of the log file holding the process's stdout and stderr.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("nats-server.log")
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let log = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Client port.
    pub fn client_port(&self) -> u16 {
        self.config.port
    }

    /// Monitoring HTTP port.
    pub fn http_port(&self) -> u16 {
        self.config.http_port
    }

    /// `127.0.0.1:<client port>`.
    pub fn client_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.config.port))
    }

    /// `nats://127.0.0.1:<client port>`.
    pub fn client_url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.config.port)
    }

    /// `http://127.0.0.1:<monitoring port>`.
    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.config.http_port)
    }

    /// `ws://127.0.0.1:<websocket port>` when WebSocket is enabled.
    pub fn websocket_url(&self) -> Option<String> {
        self.config
            .websocket_port
            .map(|p| format!("ws://127.0.0.1:{p}"))
    }

    /// `nats-route://127.0.0.1:<route port>` when clustered.
    pub fn route_url(&self) -> Option<String> {
        let port = self.config.cluster.as_ref()?.port;
        Some(format!("nats-route://127.0.0.1:{port}"))
    }

    /// `nats://127.0.0.1:<gateway port>` when gateways are enabled.
    pub fn gateway_url(&self) -> Option<String> {
        let port = self.config.gateway.as_ref()?.port;
        Some(format!("nats://127.0.0.1:{port}"))
    }

    /// GETs a monitoring endpoint (`"varz"`, `"routez"`, `"gatewayz?accs=1"`) as JSON.
    pub fn monitor(&self, endpoint: &str) -> std::io::Result<serde_json::Value> {
        get_json(&format!("{}/{endpoint}", self.monitor_url()))
    }

    /// `/varz`; panics if the server does not answer.
    pub fn varz(&self) -> serde_json::Value {
        self.monitor("varz")
            .unwrap_or_else(|e| panic!("nats-server {} /varz: {e}", self.label()))
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("nats-server {} kept {}", self.label(), self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}
