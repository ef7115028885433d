//! `geolb lab up`: the control plane, the WAN emulator, every server under
//! an agent, then the client agents, each stage gated on what the back
//! channel reports (servers healthy with routes and gateways, clients
//! connected). On any failure it stops what it started and says why.

use super::config::LabConfig;
use super::process;
use super::ready;
use super::state::{LabProcess, LabState};
use super::topology::Topology;
use crate::control::Control;
use geolb_proto::connect::ControlArgs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where `lab up` finds its binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `geolb-agent`.
    pub agent: PathBuf,
    /// Folder of installed versions, `<dir>/<version>/nats-server`.
    pub servers_dir: PathBuf,
}

impl Binaries {
    /// `geolb-agent` next to this `geolb`, and `servers_dir`; checks both.
    pub fn find(servers_dir: PathBuf, version: &str) -> anyhow::Result<Binaries> {
        let agent = std::env::current_exe()?.with_file_name("geolb-agent");
        if !agent.is_file() {
            anyhow::bail!(
                "{} is missing; build it with `cargo build --workspace --bins`",
                agent.display()
            );
        }
        let binaries = Binaries { agent, servers_dir };
        if !binaries.nats_server(version).is_file() {
            anyhow::bail!(
                "nats-server {version} is not installed in {}; run `make tools` or set nats_version",
                binaries.servers_dir.display()
            );
        }
        Ok(binaries)
    }

    fn nats_server(&self, version: &str) -> PathBuf {
        self.servers_dir.join(version).join("nats-server")
    }
}

/// Brings the lab of `config` up in `dir`; returns its state.
pub async fn up(config: LabConfig, dir: &Path, bins: &Binaries) -> anyhow::Result<LabState> {
    if let Some(old) = LabState::load(dir)? {
        if !old.alive().is_empty() {
            anyhow::bail!(
                "a lab is already running in {} (control plane {}); `geolb lab down` first",
                dir.display(),
                old.control_url
            );
        }
        LabState::remove(dir)?;
    }
    let topology = Topology::plan(&config);
    check_ports_free(&config)?;
    std::fs::create_dir_all(dir.join("logs"))?;
    let dir = dir.canonicalize()?;
    let mut state = LabState {
        dir: dir.clone(),
        control_url: format!("nats://127.0.0.1:{}", topology.control_port),
        gateway_secret: (0..24).map(|_| fastrand::alphanumeric()).collect(),
        servers_dir: bins
            .servers_dir
            .canonicalize()
            .unwrap_or_else(|_| bins.servers_dir.clone()),
        config,
        started_at_ms: geolb_proto::now_ms(),
        ready: false,
        processes: Vec::new(),
        identities: Vec::new(),
    };
    match start(&mut state, &topology, bins).await {
        Ok(()) => {
            state.ready = true;
            state.save()?;
            Ok(state)
        }
        Err(e) => {
            let pids: Vec<i32> = state.processes.iter().rev().map(|p| p.pid).collect();
            process::stop_all(&pids, Duration::from_secs(5));
            LabState::remove(&dir)?;
            Err(e.context("the lab did not come up; everything it started was stopped (logs in <lab dir>/logs)"))
        }
    }
}

async fn start(state: &mut LabState, t: &Topology, bins: &Binaries) -> anyhow::Result<()> {
    let dir = state.dir.clone();
    let layout = identities(state, t)?;
    let conf = dir.join("control.conf");
    let control_conf = format!(
        "server_name: geolb-control\nlisten: \"127.0.0.1:{}\"\nhttp: \"127.0.0.1:{}\"\njetstream {{ store_dir: {:?} }}\n{}",
        t.control_port,
        t.control_http_port,
        dir.join("control").display().to_string(),
        layout.server_config
    );
    write_private(&conf, &control_conf)?;
    let nats = bins.nats_server(&state.config.nats_version);
    launch(
        state,
        "control",
        &nats,
        &["-c".into(), conf.display().to_string()],
    )?;
    let control = ready::control_plane(state, Duration::from_secs(10)).await?;
    crate::fleet::ensure_heartbeat_stream(&control).await?;

    let links = dir.join("links.json");
    std::fs::write(&links, serde_json::to_vec_pretty(&t.links)?)?;
    let wan = vec![
        "wan".into(),
        "--id".into(),
        "wan".into(),
        "--links".into(),
        links.display().to_string(),
    ];
    let wan = with_identity(wan, state, "wan-wan")?;
    launch(state, "wan", &bins.agent, &wan)?;
    ready::emulator(&control, t.links.len(), Duration::from_secs(10)).await?;

    for server in &t.servers {
        let conf = dir.join(format!("{}.conf", server.id));
        let store = dir.join("jetstream").join(&server.id);
        write_private(
            &conf,
            &t.server_config(&state.config, server, &store, &state.gateway_secret),
        )?;
        let mut args = agent_args(state, &server.id, &server.region, "server")?;
        args.extend([
            "--monitor".into(),
            format!("http://127.0.0.1:{}", server.http_port),
            "--servers-dir".into(),
            bins.servers_dir.display().to_string(),
            "--".into(),
            bins.nats_server(&state.config.nats_version)
                .display()
                .to_string(),
            "-c".into(),
            conf.display().to_string(),
        ]);
        launch(state, &server.id, &bins.agent, &args)?;
    }
    let ids: Vec<String> = t.servers.iter().map(|s| s.id.clone()).collect();
    ready::servers(&control, &state.config, &ids, Duration::from_secs(90)).await?;

    for group in &t.clients {
        let mut args = agent_args(state, &group.agent_id, &group.region, "client")?;
        args.extend(["--replicas".into(), group.replicas.to_string(), "--".into()]);
        args.push(bins.agent.display().to_string());
        args.extend(client_args(state, t, group));
        launch(state, &group.agent_id, &bins.agent, &args)?;
    }
    let total = t.clients.iter().map(|g| g.replicas as usize).sum();
    ready::clients(&control, total, Duration::from_secs(60)).await?;
    Ok(())
}

/// The `geolb-agent client` arguments of one group.
pub fn client_args(
    state: &LabState,
    t: &Topology,
    group: &super::topology::ClientGroup,
) -> Vec<String> {
    let c = &state.config.clients;
    let mut args: Vec<String> = vec![
        "client".into(),
        "--id".into(),
        group.agent_id.clone(),
        "--region".into(),
        group.region.clone(),
        "--strategy".into(),
        group.strategy.clone(),
        "--profile".into(),
        c.profile.clone(),
        "--rate".into(),
        c.rate.to_string(),
        "--shards".into(),
        c.shards.to_string(),
    ];
    for server in t.client_servers(&group.region) {
        args.extend(["--server".into(), server]);
    }
    args
}

/// `geolb-agent run` flags of one agent: its identity, and the key whose
/// signed commands it obeys.
fn agent_args(state: &LabState, id: &str, region: &str, role: &str) -> anyhow::Result<Vec<String>> {
    let args = vec![
        "run".into(),
        "--id".into(),
        id.into(),
        "--region".into(),
        region.into(),
        "--role".into(),
        role.into(),
        "--metrics-interval".into(),
        "1s".into(),
        "--trust".into(),
        state.identity("signing")?.public_key.clone(),
    ];
    with_identity(args, state, &format!("agent-{id}"))
}

/// Adds the control plane and the seed file of identity `name`.
fn with_identity(
    mut args: Vec<String>,
    state: &LabState,
    name: &str,
) -> anyhow::Result<Vec<String>> {
    let seed = state.identity(name)?.seed_path.display().to_string();
    args.extend([
        "--control".into(),
        state.control_url.clone(),
        "--nkey-file".into(),
        seed,
    ]);
    Ok(args)
}

/// The least-privilege layout of the lab's control plane: an identity for
/// the coordinator, every agent, the emulator and one observer, and the
/// signing key agents trust. Seeds stay in `<lab dir>/keys` (0600).
fn identities(state: &mut LabState, t: &Topology) -> anyhow::Result<crate::control_plane::Layout> {
    let mut agents: Vec<(String, String)> = t
        .servers
        .iter()
        .map(|s| (s.id.clone(), s.region.clone()))
        .collect();
    agents.extend(
        t.clients
            .iter()
            .map(|g| (g.agent_id.clone(), g.region.clone())),
    );
    let spec = crate::control_plane::LayoutSpec {
        agents,
        clients: 1,
        streams: vec![crate::report::store::STREAM.to_string()],
        coordinator_publish: vec!["geolb.wan.>".to_string(), "geolb.report.>".to_string()],
        emulators: vec!["wan".to_string()],
    };
    let layout = crate::control_plane::layout(&state.dir.join("keys"), &spec)?;
    state.identities = layout
        .identities
        .iter()
        .map(|i| super::state::LabIdentity {
            name: i.name.clone(),
            kind: serde_json::to_value(i.kind)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            seed_path: i.seed_path.clone(),
            public_key: i.public_key.clone(),
        })
        .collect();
    state.save()?;
    Ok(layout)
}

/// Starts one process and records it at once, so a crash leaves it findable.
fn launch(state: &mut LabState, name: &str, program: &Path, args: &[String]) -> anyhow::Result<()> {
    let log = state.dir.join("logs").join(format!("{name}.log"));
    let pid = process::spawn(program, args, &log)?;
    state.processes.push(LabProcess {
        name: name.into(),
        pid,
    });
    state.save()
}

/// Writes a file only its owner can read (it holds gateway passwords).
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    // `mode` applies only to a new file; a file from an earlier lab keeps its bits.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(())
}

fn check_ports_free(config: &LabConfig) -> anyhow::Result<()> {
    let base = config.ports_base;
    for port in base..base + config.ports_needed() as u16 {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            anyhow::bail!(
                "port {port} on 127.0.0.1 is in use; the lab needs {} ports from {base}: set ports_base in the config",
                config.ports_needed()
            );
        }
    }
    Ok(())
}

/// Connects to a running lab's control plane as its coordinator, signing commands.
pub async fn connect(state: &LabState) -> anyhow::Result<Control> {
    let mut args = ControlArgs {
        url: Some(state.control_url.clone()),
        ..ControlArgs::default()
    };
    if state.identities.is_empty() {
        return Ok(Control::connect(&args).await?);
    }
    args.nkey_file = Some(state.identity("coordinator")?.seed_path.clone());
    let signer = geolb_proto::signing::Signer::from_file(&state.identity("signing")?.seed_path)?;
    Ok(Control::connect(&args)
        .await?
        .with_signer(Some(signer), Duration::from_secs(60)))
}
