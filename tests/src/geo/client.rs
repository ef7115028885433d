//! `ClientProc`: one `geolb-agent client` process whose JSON-line records
//! (`ClientRecord`, `proto/src/client.rs`) are read into shared state by a thread.
//!
//! Records of stock clients run with `--no-probes` name their server but not its
//! region; the region is filled in from the server's name (`<region>-<i>`).

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use geolb_proto::client::{ClientMove, ClientRecord, ClientStatus, ServerRef, Traffic};
use nix::sys::signal::Signal;

use crate::process::ProcessGuard;
use crate::tools::agent_bin;
use crate::wait::wait_for;

/// Statuses kept per client (the latest).
const KEEP_STATUSES: usize = 1000;

/// How to run one client: id, region, strategy, extra flags, binary.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    /// `--id`.
    pub id: String,
    /// `--region`: where the client lives.
    pub region: String,
    /// `--strategy`: `rtt`, `random` or `ordered`.
    pub strategy: String,
    /// Further flags, e.g. `--hold 1s`.
    pub args: Vec<String>,
    /// The `geolb-agent` binary (default: the debug build).
    pub bin: Option<PathBuf>,
}

impl ClientSpec {
    /// An `rtt` client `id` living in `region`.
    pub fn new(id: &str, region: &str) -> ClientSpec {
        ClientSpec {
            id: id.to_string(),
            region: region.to_string(),
            strategy: "rtt".to_string(),
            args: Vec::new(),
            bin: None,
        }
    }

    /// Sets the strategy.
    pub fn strategy(mut self, strategy: &str) -> Self {
        self.strategy = strategy.to_string();
        self
    }

    /// Appends flags.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Runs `bin` instead of the debug `geolb-agent`.
    pub fn bin(mut self, bin: PathBuf) -> Self {
        self.bin = Some(bin);
        self
    }
}

/// What a client has reported so far.
#[derive(Debug, Clone, Default)]
pub struct ClientLog {
    /// The latest statuses, oldest first (at most 1000).
    pub statuses: VecDeque<ClientStatus>,
    /// Every move, in order.
    pub moves: Vec<ClientMove>,
    /// The server from the latest record (status or move); `None` while it has none.
    pub current: Option<ServerRef>,
    /// Lines that were not records.
    pub bad_lines: Vec<String>,
    /// Whether stdout has closed (the process ended).
    pub ended: bool,
}

/// A running client; dropping it kills the process (and removes its log unless
/// the thread is panicking).
#[derive(Debug)]
pub struct ClientProc {
    id: String,
    guard: ProcessGuard,
    log: Arc<Mutex<ClientLog>>,
    stderr: PathBuf,
}

impl ClientProc {
    /// Spawns the client with `servers` (`REGION=URL`); `regions` maps server names
    /// to regions, to complete records that lack the region.
    pub fn spawn(
        spec: ClientSpec,
        servers: &[String],
        regions: HashMap<String, String>,
    ) -> std::io::Result<ClientProc> {
        let bin = spec.bin.clone().unwrap_or_else(agent_bin);
        let dir = std::env::temp_dir().join("geolb-tests");
        std::fs::create_dir_all(&dir)?;
        let stderr = dir.join(format!("{}-client-{}.log", std::process::id(), spec.id));
        let mut cmd = Command::new(bin);
        cmd.arg("client")
            .args(["--id", &spec.id, "--region", &spec.region])
            .args(["--strategy", &spec.strategy])
            .args(servers.iter().flat_map(|s| ["--server", s.as_str()]))
            .args(&spec.args)
            .env_remove("GEOLB_REPORT_SOCKET")
            .env_remove("GEOLB_REPLICA")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr)?);
        let mut guard = ProcessGuard::spawn(&format!("client {}", spec.id), &mut cmd)?;
        let stdout = guard.child_mut().stdout.take().expect("stdout is piped");
        let log = Arc::new(Mutex::new(ClientLog::default()));
        let shared = log.clone();
        std::thread::Builder::new()
            .name(format!("client-{}", spec.id))
            .spawn(move || read_records(BufReader::new(stdout), &shared, &regions))?;
        Ok(ClientProc {
            id: spec.id,
            guard,
            log,
            stderr,
        })
    }

    /// The client id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// Sends `sig` to the client.
    pub fn signal(&self, sig: Signal) -> nix::Result<()> {
        self.guard.signal(sig)
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        self.guard.try_status().is_some()
    }

    /// Everything reported so far, locked.
    pub fn log(&self) -> MutexGuard<'_, ClientLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The server the latest record names.
    pub fn current(&self) -> Option<ServerRef> {
        self.log().current.clone()
    }

    /// Every move so far.
    pub fn moves(&self) -> Vec<ClientMove> {
        self.log().moves.clone()
    }

    /// How many moves so far (to look only at later ones).
    pub fn move_count(&self) -> usize {
        self.log().moves.len()
    }

    /// The latest statuses, oldest first.
    pub fn statuses(&self) -> Vec<ClientStatus> {
        self.log().statuses.iter().cloned().collect()
    }

    /// The latest status.
    pub fn status(&self) -> Option<ClientStatus> {
        self.log().statuses.back().cloned()
    }

    /// Traffic counters of the latest status.
    pub fn traffic(&self) -> Option<Traffic> {
        self.status().map(|s| s.traffic)
    }

    /// Path of the client's stderr log.
    pub fn stderr_path(&self) -> &std::path::Path {
        &self.stderr
    }

    /// The last `n` lines of the client's stderr.
    pub fn stderr_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Waits until the client is on a server of `region`; returns it.
    pub async fn wait_region(&self, region: &str, timeout: Duration) -> ServerRef {
        let what = format!("client {} to be on a server of {region}", self.id);
        wait_for(&what, timeout, || {
            let current = self.current().filter(|s| s.region == region);
            async move { current }
        })
        .await
    }

    /// Waits until the client is on a server other than `name`; returns it.
    pub async fn wait_off(&self, name: &str, timeout: Duration) -> ServerRef {
        let what = format!("client {} to leave {name}", self.id);
        wait_for(&what, timeout, || {
            let current = self.current().filter(|s| s.name != name);
            async move { current }
        })
        .await
    }

    /// Waits for the first move after the first `after` moves that reached a server.
    pub async fn wait_landed(&self, after: usize, timeout: Duration) -> ClientMove {
        let what = format!("client {} to land after move {after}", self.id);
        wait_for(&what, timeout, || {
            let found = self
                .moves()
                .into_iter()
                .skip(after)
                .find(|m| m.to.is_some());
            async move { found }
        })
        .await
    }

    /// Waits for a status record newer than the latest one now; returns it.
    pub async fn fresh_status(&self, timeout: Duration) -> ClientStatus {
        let seen = self.status().map_or(0, |s| s.at_ms);
        let what = format!("a fresh status from client {}", self.id);
        wait_for(&what, timeout, || {
            let status = self.status().filter(|s| s.at_ms > seen);
            async move { status }
        })
        .await
    }
}

impl Drop for ClientProc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "client {} stderr kept in {}; last lines:\n{}",
                self.id,
                self.stderr.display(),
                self.stderr_tail(15)
            );
        } else {
            let _ = std::fs::remove_file(&self.stderr);
        }
    }
}

/// Reads JSON-line records into `log` until EOF.
fn read_records(reader: impl BufRead, log: &Mutex<ClientLog>, regions: &HashMap<String, String>) {
    let complete = |server: &mut Option<ServerRef>| {
        if let Some(s) = server.as_mut().filter(|s| s.region.is_empty()) {
            s.region = regions.get(&s.name).cloned().unwrap_or_default();
        }
    };
    for line in reader.lines() {
        let Ok(line) = line else { break };
        let record = ClientRecord::decode(line.as_bytes());
        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
        match record {
            Ok(ClientRecord::Status(mut status)) => {
                complete(&mut status.server);
                log.current = status.server.clone();
                if log.statuses.len() == KEEP_STATUSES {
                    log.statuses.pop_front();
                }
                log.statuses.push_back(status);
            }
            Ok(ClientRecord::Moved(mut moved)) => {
                complete(&mut moved.to);
                complete(&mut moved.from);
                log.current = moved.to.clone();
                log.moves.push(moved);
            }
            Err(_) => log.bad_lines.push(line),
        }
    }
    log.lock().unwrap_or_else(|e| e.into_inner()).ended = true;
}
