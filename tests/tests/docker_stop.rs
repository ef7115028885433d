//! `docker stop` of a geolb-server container drains it: the agent (PID 1)
//! turns SIGTERM into lame-duck mode, the `rtt` clients of a geolb-client
//! container move to the other server of the cluster on the notice, make
//! before break, without losing a message, and the container exits 0 well
//! inside Docker's 10 s stop timeout.
//!
//! Three containers of the server image (servers `a` and `b` routed into one
//! cluster, and a plain nats-server as the control plane, published on
//! 127.0.0.1) and one of the client image with [`REPLICAS`] clients, on a
//! network of the test's own. The test reads the clients' status records and
//! `client_moved` events on the control plane.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use geolb_proto::client::{ClientMove, ClientRecord, ClientStatus, MoveReason, ServerRef};
use geolb_proto::{subject, Event, EventKind};
use geolb_tests::docker::{
    available, docker, exit_code, host_port, logs, Cleanup, CLIENT_IMAGE, SERVER_IMAGE,
};
use geolb_tests::{wait_for, with_timeout};

/// Upper bound for a container to start and answer.
const STEP: Duration = Duration::from_secs(15);
/// Upper bound for the clients to report a state.
const SETTLE: Duration = Duration::from_secs(30);
/// The nats-server the server image runs (its default version).
fn nats_server() -> String {
    format!(
        "/opt/nats-server/{}/nats-server",
        geolb_tests::default_version()
    )
}
/// Client replicas in the client container.
const REPLICAS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_stop_drains_a_server_and_its_clients_move_without_loss() {
    let test = "docker_stop_drains_a_server_and_its_clients_move_without_loss";
    let Some(()) = available(test, &[SERVER_IMAGE, CLIENT_IMAGE]) else {
        return;
    };
    let guard = Cleanup::new("img-drain");
    let lab = Lab::new(&guard);
    let nats = with_timeout(STEP, connect_when_up(host_port(&lab.control(), 4222))).await;
    let records = Records::collect(&nats).await;

    // Only a runs when the clients start, so every one of them elects a;
    // b, as close, never beats a by the hysteresis, so they stay there.
    let a = lab.server("a");
    lab.clients(&["a", "b"]);
    records.wait_all("every client on a", |s| on(s, "a")).await;
    let b = lab.server("b");
    records
        .wait_all("every client to see b healthy", |s| {
            on(s, "a") && s.traffic.received > 0 && is_candidate(s, &b)
        })
        .await;

    let started = now_ms();
    let clock = Instant::now();
    let stop = a.clone();
    let stopped = tokio::task::spawn_blocking(move || docker(&["stop", &stop]))
        .await
        .expect("docker stop task");
    let took = clock.elapsed();
    eprintln!("docker stop of a server with {REPLICAS} clients took {took:.2?}");
    stopped.expect("docker stop");
    assert!(took < Duration::from_secs(9), "docker stop took {took:?}");
    assert_drained(&a);

    // Two status rounds after the stop, every client is on b and has lost nothing.
    let settled = now_ms() + 2_000;
    let statuses = records
        .wait_all("every client on b, two reports after the stop", |s| {
            on(s, "b") && s.at_ms > settled
        })
        .await;
    let moves = records.moves_since(started);
    for (client, status) in &statuses {
        let moved: Vec<&ClientMove> = moves.iter().filter(|m| &m.client == client).collect();
        let t = &status.traffic;
        let gaps: Vec<String> = moved
            .iter()
            .map(|m| {
                format!(
                    "{:?} to {} gap {} ms",
                    m.reason,
                    server_name(&m.to),
                    m.gap_ms
                )
            })
            .collect();
        eprintln!(
            "{client}: {gaps:?}, sent {}, received {}, lost {}, duplicated {}",
            t.sent, t.received, t.lost, t.duplicated
        );
        assert_eq!(t.lost, 0, "{client} lost messages: {status:?}");
        assert!(
            moved
                .iter()
                .any(|m| m.reason == MoveReason::LameDuck && server_name(&m.to) == "b"),
            "{client} moved to b on the lame-duck notice: {moved:?}"
        );
    }
}

/// Checks that `container` was drained: exit code 0 (not Docker's SIGKILL,
/// 137), and lame-duck mode in its logs.
fn assert_drained(container: &str) {
    assert_eq!(
        exit_code(container),
        Some(0),
        "the drained server's exit code"
    );
    let text = logs(container);
    for line in [
        "SIGTERM: draining the children in lame-duck mode",
        "Entering lame duck mode",
        "Server Exiting",
    ] {
        assert!(text.contains(line), "no {line:?} in the logs:\n{text}");
    }
    // Whichever comes first: the agent sees no connection left and sends
    // SIGINT, or nats-server has closed its last one and exits by itself.
    let ended_by = match text.contains("The server has drained") {
        true => "the agent (no client left, SIGINT)",
        false => "nats-server (lame-duck mode done)",
    };
    eprintln!("lame-duck mode ended by {ended_by}");
}

/// The test's containers: servers and a control plane from the server
/// image, clients from the client image, on one network of the test's own.
struct Lab<'a> {
    guard: &'a Cleanup,
    net: String,
    config: ConfigDir,
}

impl<'a> Lab<'a> {
    fn new(guard: &'a Cleanup) -> Lab<'a> {
        let net = guard.network("net");
        let config = ConfigDir::new(&cluster_config(&guard.name("a"), &guard.name("b")));
        Lab { guard, net, config }
    }

    /// Plain nats-server on the control plane, its port published on 127.0.0.1.
    fn control(&self) -> String {
        let name = self.guard.name("control");
        let nats_server = nats_server();
        self.guard.run(&[
            "--network",
            &self.net,
            "--name",
            &name,
            "-p",
            "127.0.0.1::4222",
            "--entrypoint",
            &nats_server,
            SERVER_IMAGE,
            "-p",
            "4222",
        ]);
        name
    }

    /// The image's default command on the cluster config, as server `short`;
    /// the container's name.
    fn server(&self, short: &str) -> String {
        let name = self.guard.name(short);
        let mount = format!("{}:/etc/nats/cluster.conf:ro", self.config.file().display());
        self.guard.run(&[
            "--network",
            &self.net,
            "--name",
            &name,
            "-v",
            &mount,
            SERVER_IMAGE,
            "nats-server",
            "-c",
            "/etc/nats/cluster.conf",
            "--name",
            short,
        ]);
        name
    }

    /// [`REPLICAS`] `rtt` clients of region lon given `servers`, all in one
    /// shard (each hears every other), reporting to the control plane.
    fn clients(&self, servers: &[&str]) {
        let servers: Vec<String> = servers
            .iter()
            .map(|s| format!("lon=nats://{}:4222", self.guard.name(s)))
            .collect();
        let env = [
            format!("GEOLB_CONTROL=nats://{}:4222", self.guard.name("control")),
            "GEOLB_ID=cl".to_string(),
            "GEOLB_REGION=lon".to_string(),
            format!("GEOLB_REPLICAS={REPLICAS}"),
            "GEOLB_CLIENT_SHARDS=1".to_string(),
            format!("GEOLB_CLIENT_SERVERS={}", servers.join(",")),
        ];
        let name = self.guard.name("clients");
        let mut args = vec!["--network", &self.net, "--name", &name];
        for kv in &env {
            args.extend(["-e", kv.as_str()]);
        }
        args.push(CLIENT_IMAGE);
        self.guard.run(&args);
    }
}

/// What the control plane has heard from the clients.
#[derive(Default)]
struct Seen {
    /// The latest status of each client, by client id.
    statuses: BTreeMap<String, ClientStatus>,
    /// Every move, in arrival order.
    moves: Vec<ClientMove>,
}

/// Status records and moves of every client, as the control plane gets them.
#[derive(Clone, Default)]
struct Records {
    seen: Arc<Mutex<Seen>>,
}

impl Records {
    /// Subscribes to every client status and event, and keeps them.
    async fn collect(nats: &async_nats::Client) -> Records {
        let records = Records::default();
        let mut statuses = nats.subscribe(subject::CLIENTS_ALL).await.expect("sub");
        let mut events = nats.subscribe(subject::EVENTS_ALL).await.expect("sub");
        nats.flush().await.expect("flush");
        let keep = records.clone();
        tokio::spawn(async move {
            while let Some(message) = statuses.next().await {
                if let Ok(ClientRecord::Status(status)) = ClientRecord::decode(&message.payload) {
                    keep.lock().statuses.insert(status.client.clone(), status);
                }
            }
        });
        let keep = records.clone();
        tokio::spawn(async move {
            while let Some(message) = events.next().await {
                let Ok(event) = serde_json::from_slice::<Event>(&message.payload) else {
                    continue;
                };
                if let EventKind::ClientMoved { report } = event.event {
                    keep.lock().moves.push(*report);
                }
            }
        });
        records
    }

    fn lock(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until [`REPLICAS`] clients report and the latest status of
    /// each passes `ok`; those statuses.
    async fn wait_all(
        &self,
        what: &str,
        ok: impl Fn(&ClientStatus) -> bool,
    ) -> BTreeMap<String, ClientStatus> {
        wait_for(what, SETTLE, || {
            let statuses = self.lock().statuses.clone();
            let done = statuses.len() == REPLICAS && statuses.values().all(&ok);
            async move { done.then_some(statuses) }
        })
        .await
    }

    /// Moves whose new connection came at or after `at_ms`.
    fn moves_since(&self, at_ms: u64) -> Vec<ClientMove> {
        self.lock()
            .moves
            .iter()
            .filter(|m| m.at_ms >= at_ms)
            .cloned()
            .collect()
    }
}

/// Whether the client is connected to the server named `name`.
fn on(status: &ClientStatus, name: &str) -> bool {
    server_name(&status.server) == name
}

/// The name of `server` (from its INFO); empty for none.
fn server_name(server: &Option<ServerRef>) -> &str {
    server.as_ref().map_or("", |s| s.name.as_str())
}

/// Whether the client probes the container `server` and finds it healthy.
fn is_candidate(status: &ClientStatus, server: &str) -> bool {
    status
        .candidates
        .iter()
        .any(|c| c.url.contains(server) && c.healthy && c.samples >= 2)
}

/// Two servers routed into cluster `c`; the names are the containers'.
fn cluster_config(a: &str, b: &str) -> String {
    format!(
        r#"listen: "0.0.0.0:4222"
http: "0.0.0.0:8222"
lame_duck_duration: "30s"
lame_duck_grace_period: "1s"
cluster {{
  name: "c"
  listen: "0.0.0.0:6222"
  no_advertise: true
  routes: ["nats-route://{a}:6222", "nats-route://{b}:6222"]
}}
"#
    )
}

/// A temp folder holding one config file to bind-mount; removed unless the test panics.
struct ConfigDir {
    dir: PathBuf,
}

impl ConfigDir {
    fn new(text: &str) -> ConfigDir {
        let dir = std::env::temp_dir()
            .join("geolb-tests")
            .join(format!("{}-docker-config", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let config = ConfigDir { dir };
        std::fs::write(config.file(), text).expect("write the config");
        config
    }

    fn file(&self) -> PathBuf {
        self.dir.join("cluster.conf")
    }
}

impl Drop for ConfigDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Connects to `addr`, retrying while the server starts.
async fn connect_when_up(addr: std::net::SocketAddr) -> async_nats::Client {
    loop {
        match async_nats::connect(format!("nats://{addr}")).await {
            Ok(client) => return client,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Milliseconds since the epoch, the clock of the records.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
