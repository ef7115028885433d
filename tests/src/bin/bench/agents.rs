//! Release agents for the benchmarks. The runner puts a marker in its own environment,
//! which every process it starts inherits, so that whatever is left (servers, agents,
//! their `sleep` children) can be found and killed, even from the panic hook (the
//! release profile aborts on panic, so no `Drop` runs).

use anyhow::Context as _;
use geolb::Control;
use geolb_proto::connect::ControlArgs;
use geolb_proto::Request;
use geolb_tests::agent::AgentBuilder;
use geolb_tests::procfs::{self, Marker, MARK_VAR};
use geolb_tests::wait::Backoff;
use geolb_tests::{default_version, release_bin, ProcessGuard};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The marker every agent of this run carries.
static MARKER: OnceLock<Marker> = OnceLock::new();

/// What every benchmark needs: the release binaries and the nats-server version.
#[derive(Debug, Clone)]
pub struct Bench {
    /// The agent that ships: the static one of the images (`make
    /// static-agent`), else `target/release/geolb-agent`.
    pub agent: PathBuf,
    /// `target/release/geolb`.
    pub geolb: PathBuf,
    /// The nats-server version of the control plane.
    pub nats_version: &'static str,
    /// `GEOLB_BENCH_QUICK=1`: shorter windows.
    pub quick: bool,
}

impl Bench {
    /// Finds the release binaries; fails with what to run when they are missing.
    pub fn new(quick: bool) -> anyhow::Result<Bench> {
        let shipped = geolb_tests::tools::static_agent_bin();
        let bins = (release_bin("geolb-agent"), release_bin("geolb"));
        let (agent, geolb) = (
            match shipped {
                Some(agent) => agent,
                None => bins.0.map_err(anyhow::Error::msg)?,
            },
            bins.1.map_err(anyhow::Error::msg)?,
        );
        println!("  agent: {}", agent.display());
        // Fails here, with what to run, rather than inside a benchmark.
        let _ = geolb_tests::nats_server_bin(default_version());
        Ok(Bench {
            agent,
            geolb,
            nats_version: default_version(),
            quick,
        })
    }

    /// Spawns a quiet release agent `id` (role client, heartbeat `heartbeat`, metrics
    /// every `metrics`) supervising `sleep 3600`, connected to `control`.
    pub fn spawn_agent(
        &self,
        id: &str,
        region: &str,
        control: &str,
        heartbeat: &str,
        metrics: &str,
    ) -> anyhow::Result<ProcessGuard> {
        AgentBuilder::new(id, region)
            .intervals(heartbeat, metrics)
            .arg("--role")
            .arg("client")
            .control(control)
            .quiet()
            .try_spawn_bin(&self.agent, &["sleep", "3600"])
            .with_context(|| format!("spawn {} for agent {id}", self.agent.display()))
    }

    /// Live processes started by this run, or running our release agent binary.
    pub fn leftovers(&self) -> Vec<procfs::Stat> {
        let mut left = marked();
        for s in procfs::all() {
            let ours = procfs::exe(s.pid).is_some_and(|exe| exe == self.agent);
            if ours && !s.is_zombie() && !left.iter().any(|l| l.pid == s.pid) {
                left.push(s);
            }
        }
        left
    }

    /// Prints that nothing of ours (`what`) is left running, or warns with
    /// what is.
    pub fn report_leftovers(&self, what: &str) {
        let left = self.leftovers();
        if left.is_empty() {
            println!("  no {what} left running");
            return;
        }
        let names: Vec<String> = left
            .iter()
            .map(|s| format!("{}:{}", s.pid, s.comm))
            .collect();
        eprintln!(
            "WARNING: {} process(es) left running: {}",
            left.len(),
            names.join(" ")
        );
    }
}

/// The marker of this run.
pub fn marker() -> &'static Marker {
    MARKER.get_or_init(|| Marker::new("geolb-bench"))
}

/// Live processes carrying the marker, this one excepted.
fn marked() -> Vec<procfs::Stat> {
    let me = std::process::id() as i32;
    marker()
        .live()
        .into_iter()
        .filter(|s| s.pid != me)
        .collect()
}

/// SIGKILLs every live process carrying the marker; returns how many there were.
pub fn kill_marked() -> usize {
    let live = marked();
    for s in &live {
        let _ = kill(Pid::from_raw(s.pid), Signal::SIGKILL);
    }
    live.len()
}

/// Kills `guards` fast (one `/proc` scan for the whole tree instead of one per guard),
/// reaps them and drops them; returns how long it took.
pub fn kill_all(mut guards: Vec<ProcessGuard>) -> Duration {
    let started = Instant::now();
    kill_marked();
    for guard in &guards {
        let _ = guard.signal(Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && guards.iter_mut().any(|g| g.try_status().is_none()) {
        std::thread::sleep(Duration::from_millis(20));
    }
    // The guards kill and reap whatever is still there.
    drop(guards);
    kill_marked();
    started.elapsed()
}

/// Marks this process, so that every process it starts (servers, agents, their
/// children) inherits the marker, and installs a panic hook that kills them all.
pub fn install_cleanup() {
    // Single-threaded still: called first thing in `main`, before the runtime starts.
    std::env::set_var(MARK_VAR, marker().value());
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        let n = kill_marked();
        eprintln!("bench: panicked; killed {n} process(es) it had started");
    }));
}

/// Connects the coordinator's way (`Control::connect`) to the control plane at `url`.
pub async fn connect(url: &str) -> anyhow::Result<Control> {
    let args = ControlArgs {
        url: Some(url.to_string()),
        ..ControlArgs::default()
    };
    Ok(Control::connect(&args).await?)
}

/// Waits up to `timeout` until agent `id` answers `status`.
pub async fn wait_answering(control: &Control, id: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut backoff = Backoff::default();
    loop {
        let outcome = control
            .request(id, &Request::Status, Duration::from_secs(1))
            .await;
        match outcome {
            Ok(reply) if reply.ok => return Ok(()),
            Ok(reply) => anyhow::bail!(
                "agent {id} answered status with an error: {:?}",
                reply.error
            ),
            Err(e) if Instant::now() >= deadline => {
                anyhow::bail!("agent {id} did not answer within {timeout:?}: {e}")
            }
            Err(_) => tokio::time::sleep(backoff.next().unwrap_or_default()).await,
        }
    }
}
