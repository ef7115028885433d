//! `geolb lab up`: the control plane, the WAN emulator, every server under
//! an agent, then the client agents, each stage gated on what the back
//! channel reports (servers healthy with routes and gateways, clients
//! connected). On any failure it stops what it started and says why.

use super::config::LabConfig;
use super::docker;
use super::launch::View;
pub use super::launch::{Binaries, Launcher};
use super::ready;
use super::state::LabState;
use super::topology::{Placement, Topology};
use crate::control::Control;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Brings the lab of `config` up in `dir`; returns its state.
pub async fn up(mut config: LabConfig, dir: &Path, launcher: Launcher) -> anyhow::Result<LabState> {
    if let Launcher::Containers(_) = &launcher {
        config.clients = config.clients.for_containers()?;
    }
    if let Some(old) = LabState::load(dir)? {
        if old.running().await.unwrap_or(0) > 0 {
            anyhow::bail!(
                "a lab is already running in {} (control plane {}); `geolb lab down` first",
                dir.display(),
                old.control_url
            );
        }
        LabState::remove(dir)?;
    }
    std::fs::create_dir_all(dir.join("logs"))?;
    let dir = dir.canonicalize()?;
    let backend = launcher.backend(&dir);
    let topology = Topology::plan_for(&config, backend.placement());
    check_ports_free(&config, &topology)?;
    if let Some(archive) = &config.archive {
        crate::archive::lab::check(archive).await?;
    }
    let mut state = LabState {
        dir: dir.clone(),
        control_url: format!("nats://127.0.0.1:{}", topology.control_port),
        gateway_secret: (0..24).map(|_| fastrand::alphanumeric()).collect(),
        backend,
        config,
        started_at_ms: geolb_proto::now_ms(),
        ready: false,
        dashboard_url: None,
        processes: Vec::new(),
        identities: Vec::new(),
    };
    let started = async {
        if let Launcher::Containers(engine) = &launcher {
            engine.networks(&mut state).await?;
        }
        start(&mut state, &topology, &launcher).await
    };
    match started.await {
        Ok(()) => {
            state.ready = true;
            state.save()?;
            Ok(state)
        }
        Err(e) => {
            super::down::teardown(&state).await?;
            LabState::remove(&dir)?;
            Err(e.context("the lab did not come up; everything it started was stopped (logs in <lab dir>/logs, or `docker logs`)"))
        }
    }
}

async fn start(state: &mut LabState, t: &Topology, launcher: &Launcher) -> anyhow::Result<()> {
    let dir = state.dir.clone();
    let view = launcher.view(state);
    let layout = identities(state, t)?;
    let conf = dir.join("control.conf");
    let (bind, port, http, store) = match t.placement {
        Placement::Processes => (
            "127.0.0.1",
            t.control_port,
            t.control_http_port,
            dir.join("control").display().to_string(),
        ),
        Placement::Containers => {
            std::fs::create_dir_all(dir.join("control"))?;
            ("0.0.0.0", 4222, 8222, "/data".to_string())
        }
    };
    let control_conf = format!(
        "server_name: geolb-control\nlisten: \"{bind}:{port}\"\nhttp: \"{bind}:{http}\"\njetstream {{ store_dir: {store:?} }}\n{}",
        layout.server_config
    );
    write_private(&conf, &control_conf)?;
    let nats = view.nats_server(&state.config.nats_version);
    let command = vec![nats, "-c".into(), launcher.path(state, &conf)];
    launcher
        .launch(state, t, "control", docker::Kind::Control, command)
        .await?;
    let control = ready::control_plane(state, Duration::from_secs(10)).await?;
    let limits = crate::archive::stream::StreamLimits::default();
    crate::archive::stream::ensure(&control, limits, None).await?;
    start_archiver(state)?;

    for (id, links) in t.emulators() {
        let file = dir.join(format!("links-{id}.json"));
        std::fs::write(&file, serde_json::to_vec_pretty(&links)?)?;
        let mut wan = vec![
            view.agent.display().to_string(),
            "wan".into(),
            "--id".into(),
            id.clone(),
            "--links".into(),
            launcher.path(state, &file),
        ];
        with_identity(&mut wan, state, launcher, &view, &format!("wan-{id}"))?;
        launcher
            .launch(state, t, &id, docker::Kind::Wan, wan)
            .await?;
        ready::emulator(&control, &id, links.len(), Duration::from_secs(10)).await?;
    }

    for server in &t.servers {
        let conf = dir.join(format!("{}.conf", server.id));
        let store = match t.placement {
            Placement::Processes => dir.join("jetstream").join(&server.id),
            Placement::Containers => PathBuf::from("/data/jetstream"),
        };
        write_private(
            &conf,
            &t.server_config(&state.config, server, &store, &state.gateway_secret),
        )?;
        let mut args = agent_args(state, launcher, &view, &server.id, &server.region, "server")?;
        args.extend([
            "--monitor".into(),
            format!("http://127.0.0.1:{}", server.http_port),
            "--servers-dir".into(),
            view.servers_dir.display().to_string(),
        ]);
        // Binaries fetched for `upgrade --to obj:NAME`: one folder per agent,
        // as on separate machines (a container keeps them in its own file system).
        if t.placement == Placement::Processes {
            let objects = dir.join("objects").join(&server.id);
            args.extend(["--objects-dir".into(), objects.display().to_string()]);
        }
        args.extend([
            "--".into(),
            view.nats_server(&state.config.nats_version),
            "-c".into(),
            launcher.path(state, &conf),
        ]);
        let kind = docker::Kind::Server(server.region.clone());
        launcher.launch(state, t, &server.id, kind, args).await?;
    }
    let ids: Vec<String> = t.servers.iter().map(|s| s.id.clone()).collect();
    ready::servers(&control, &state.config, &ids, Duration::from_secs(90)).await?;
    let payload = match state.config.clients.payload.clone() {
        Some(payload) => Some(stored_payload(&control, &payload).await?),
        None => None,
    };
    super::routing_up::start(state, t, launcher, &view, &control).await?;

    for group in &t.clients {
        let mut args = agent_args(
            state,
            launcher,
            &view,
            &group.agent_id,
            &group.region,
            "client",
        )?;
        let processes = group.replicas / group.per_process.max(1);
        args.extend(["--replicas".into(), processes.to_string(), "--".into()]);
        args.push(view.agent.display().to_string());
        args.extend(client_args(state, t, group));
        if let Some(payload) = &payload {
            // The client reads `obj:NAME` from the control plane as its agent.
            args.extend(["--payload".into(), payload.clone()]);
            let identity = format!("agent-{}", group.agent_id);
            with_identity(&mut args, state, launcher, &view, &identity)?;
        }
        let kind = docker::Kind::Client(group.region.clone());
        launcher
            .launch(state, t, &group.agent_id, kind, args)
            .await?;
    }
    let total = t.clients.iter().map(|g| g.replicas as usize).sum();
    // A minute, and more for many clients (dialling every candidate each).
    let wait = Duration::from_secs(60) + Duration::from_millis(60) * total as u32;
    ready::clients(&control, total, wait).await?;
    super::dashboard::start(state).await
}

/// The clients' `--payload`: `obj:NAME` once it is on the control plane
/// (a file path given in the config is stored there first, as `geolb data
/// put` would, so containers read it as processes do).
async fn stored_payload(control: &Control, payload: &str) -> anyhow::Result<String> {
    if let Some(name) = geolb_proto::objects::reference(payload) {
        crate::objects::store::DATA.info(control, name).await.map_err(|e| {
            anyhow::anyhow!("clients.payload: {e}; store it with `geolb data put FILE --name {name}` (the control plane keeps it across labs), or give the file's path")
        })?;
        return Ok(payload.to_string());
    }
    let path = Path::new(payload);
    let info = crate::objects::put_data(control, path, None)
        .await
        .map_err(|e| anyhow::anyhow!("clients.payload: {e}"))?;
    Ok(format!(
        "{}{}",
        geolb_proto::objects::REFERENCE_PREFIX,
        info.name
    ))
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
        c.shards(state.config.regions.len()).to_string(),
    ];
    if group.per_process > 1 {
        args.extend(["--count".into(), group.per_process.to_string()]);
    }
    if !group.args.is_empty() {
        // dns and anycast: their own target, no server list.
        args.extend(group.args.iter().cloned());
        return args;
    }
    for server in t.client_servers(&group.region) {
        args.extend(["--server".into(), server]);
    }
    args
}

/// With `[archive] telemetry`, `geolb archive` as the lab's process
/// `archiver` (here, also for a lab in containers: the control plane is
/// published on 127.0.0.1), under the `archiver` identity.
fn start_archiver(state: &mut LabState) -> anyhow::Result<()> {
    let Some(archive) = state.config.archive.clone().filter(|a| a.telemetry) else {
        return Ok(());
    };
    let seed = state.identity("archiver")?.seed_path.display().to_string();
    let args = crate::archive::lab::archiver_args(&archive, &state.control_url, &seed);
    super::launch::launch(state, "archiver", &std::env::current_exe()?, &args)
}

/// `geolb-agent run` and its flags for one agent: its identity, and the
/// key whose signed commands it obeys.
fn agent_args(
    state: &LabState,
    launcher: &Launcher,
    view: &View,
    id: &str,
    region: &str,
    role: &str,
) -> anyhow::Result<Vec<String>> {
    let mut args = vec![
        view.agent.display().to_string(),
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
    with_identity(&mut args, state, launcher, view, &format!("agent-{id}"))?;
    Ok(args)
}

/// Adds the control plane and the seed file of identity `name`.
pub(super) fn with_identity(
    args: &mut Vec<String>,
    state: &LabState,
    launcher: &Launcher,
    view: &View,
    name: &str,
) -> anyhow::Result<()> {
    let seed = launcher.path(state, &state.identity(name)?.seed_path);
    args.extend([
        "--control".into(),
        view.control_url.clone(),
        "--nkey-file".into(),
        seed,
    ]);
    Ok(())
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
        coordinator_publish: vec![
            "geolb.wan.>".to_string(),
            "geolb.report.>".to_string(),
            "geolb.dns.>".to_string(),
            "geolb.anycast.>".to_string(),
        ],
        emulators: t.emulators().into_iter().map(|(id, _)| id).collect(),
        archiver: true,
        routers: super::routing_up::identities(t),
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

/// Checks the ports the lab listens on here: all of them for processes,
/// the control plane's published ports for containers.
fn check_ports_free(config: &LabConfig, t: &Topology) -> anyhow::Result<()> {
    let base = config.ports_base;
    let ports = match t.placement {
        Placement::Processes => base..base + config.ports_needed() as u16,
        Placement::Containers => t.control_port..t.control_http_port + 1,
    };
    for port in ports {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            anyhow::bail!(
                "port {port} on 127.0.0.1 is in use; the lab needs {} ports from {base}: set ports_base in the config",
                config.ports_needed()
            );
        }
    }
    super::routing_up::check_dns_addresses(t)
}

/// Connects to a running lab's control plane as its coordinator, signing commands.
pub async fn connect(state: &LabState) -> anyhow::Result<Control> {
    let args = state.control_args(&["coordinator"])?;
    if state.identities.is_empty() {
        return Ok(Control::connect(&args).await?);
    }
    let signer = geolb_proto::signing::Signer::from_file(&state.identity("signing")?.seed_path)?;
    Ok(Control::connect(&args)
        .await?
        .with_signer(Some(signer), Duration::from_secs(60)))
}
