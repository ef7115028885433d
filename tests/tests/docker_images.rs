//! The images `make images` builds, run by the local Docker engine: the
//! server image runs a standalone server with no configuration at all, and
//! the agent is PID 1 of its container: it forwards signals, reaps orphans
//! and exits with its child's code. (`docker stop` draining a server with
//! clients is in `docker_stop.rs`.)
//!
//! Each test reports itself skipped when there is no engine or no image
//! (`make images`), and removes what it started, by label, on `Drop`.
//! Ports are published on 127.0.0.1 only. Processes are inspected from the
//! host's `/proc` (the container's PID 1 is `.State.Pid`).

use std::time::Duration;

use futures::StreamExt;
use geolb_tests::docker::{
    available, docker, exit_code, host_pid, host_port, image_size, inspect, logs, Cleanup,
    CLIENT_IMAGE, SERVER_IMAGE,
};
use geolb_tests::http::{get_json, http_get};
use geolb_tests::procfs::{children, cmdline, ns_pids, stat, Stat};
use geolb_tests::{wait_for, with_timeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Upper bound for one step: a container starting, a signal's effect, an exit.
const STEP: Duration = Duration::from_secs(15);
/// The agent in both images.
const AGENT: &str = "/usr/local/bin/geolb-agent";
/// Generous upper bounds on the image sizes (bytes).
const MAX_SERVER_IMAGE: u64 = 80_000_000;
const MAX_CLIENT_IMAGE: u64 = 20_000_000;

#[tokio::test]
async fn the_server_image_runs_a_standalone_server_with_no_configuration() {
    let test = "the_server_image_runs_a_standalone_server_with_no_configuration";
    let Some(()) = available(test, &[SERVER_IMAGE, CLIENT_IMAGE]) else {
        return;
    };
    let guard = Cleanup::new("img-standalone");
    for (image, max) in [
        (SERVER_IMAGE, MAX_SERVER_IMAGE),
        (CLIENT_IMAGE, MAX_CLIENT_IMAGE),
    ] {
        let size = image_size(image);
        eprintln!("{image}: {:.1} MB", size as f64 / 1e6);
        assert!(size < max, "{image} is {size} bytes, more than {max}");
    }
    let label = guard.label();
    let version = docker(&[
        "run",
        "--rm",
        &label[0],
        &label[1],
        "--entrypoint",
        AGENT,
        CLIENT_IMAGE,
        "--version",
    ]);
    assert!(
        version.as_ref().is_ok_and(|v| v.starts_with("geolb-agent")),
        "the static agent runs in the client image: {version:?}"
    );

    let server = guard.run(&[
        "-p",
        "127.0.0.1::4222",
        "-p",
        "127.0.0.1::8222",
        SERVER_IMAGE,
    ]);
    let monitor = format!("http://{}", host_port(&server, 8222));
    wait_for("the container's /healthz to answer 200", STEP, || {
        let healthy = http_get(&format!("{monitor}/healthz")).is_ok_and(|(code, _)| code == 200);
        async move { healthy.then_some(()) }
    })
    .await;
    let varz = get_json(&format!("{monitor}/varz")).expect("varz");
    assert_eq!(varz["version"], geolb_tests::default_version(), "{varz}");
    assert!(
        varz["jetstream"]["config"]["store_dir"]
            .as_str()
            .is_some_and(|dir| dir.starts_with("/data/jetstream")),
        "JetStream on, in /data/jetstream: {}",
        varz["jetstream"]
    );

    let nats = with_timeout(
        STEP,
        async_nats::connect(format!("nats://{}", host_port(&server, 4222))),
    )
    .await
    .expect("connect to the published client port");
    let mut sub = nats.subscribe("docker.hello").await.expect("subscribe");
    nats.publish("docker.hello", "from the host".into())
        .await
        .expect("publish");
    let got = with_timeout(STEP, sub.next()).await.expect("a message");
    assert_eq!(&got.payload[..], b"from the host");
}

#[tokio::test]
async fn the_agent_is_pid_1_and_forwards_signals() {
    let test = "the_agent_is_pid_1_and_forwards_signals";
    let Some(()) = available(test, &[SERVER_IMAGE]) else {
        return;
    };
    let guard = Cleanup::new("img-pid1");
    let server = guard.run(&[SERVER_IMAGE]);
    let agent = host_pid(&server).expect("the container runs");
    assert_eq!(
        cmdline(agent),
        [
            AGENT,
            "run",
            "--",
            "nats-server",
            "-c",
            "/etc/nats/nats-server.conf"
        ]
    );
    assert_eq!(ns_pids(agent).last(), Some(&1), "the agent is PID 1");
    let nats = nats_child(agent).await;
    wait_logs(&server, "Server is ready").await;

    docker(&["kill", "--signal", "HUP", &server]).expect("docker kill HUP");
    wait_logs(&server, "Reloaded server configuration").await;
    docker(&["kill", "--signal", "USR1", &server]).expect("docker kill USR1");
    wait_logs(&server, "Trapped \"user defined signal 1\" signal").await;
    assert_eq!(
        nats_child(agent).await,
        nats,
        "nats-server handled the signals without a restart"
    );

    docker(&["kill", "--signal", "INT", &server]).expect("docker kill INT");
    assert_eq!(
        wait_exit(&server).await,
        0,
        "nats-server's code after SIGINT"
    );
    assert!(logs(&server).contains("Server Exiting"));
}

#[tokio::test]
async fn the_agent_as_pid_1_reaps_orphans() {
    let test = "the_agent_as_pid_1_reaps_orphans";
    let Some(()) = available(test, &[SERVER_IMAGE]) else {
        return;
    };
    let guard = Cleanup::new("img-reap");
    // PID 1 supervises a second agent, which supervises three nats-servers.
    // SIGKILLing the second agent orphans them: they are reparented to PID 1
    // and die at once (the agent's children have PR_SET_PDEATHSIG=SIGKILL),
    // so only PID 1 can reap them; unreaped, they would stay zombies.
    let container = guard.run(&[
        "-e",
        "GEOLB_RESTART=on-failure",
        SERVER_IMAGE,
        "geolb-agent",
        "run",
        "--restart",
        "never",
        "--replicas",
        "3",
        "--",
        "nats-server",
        "-a",
        "127.0.0.1",
        "-p",
        "-1",
    ]);
    let pid1 = host_pid(&container).expect("the container runs");
    let inner = agent_child(pid1).await;
    let orphans: Vec<i32> = wait_for("the inner agent's three nats-servers", STEP, || {
        let kids: Vec<i32> = live_children(inner)
            .iter()
            .filter(|s| s.comm == "nats-server")
            .map(|s| s.pid)
            .collect();
        async move { (kids.len() == 3).then_some(kids) }
    })
    .await;

    kill(Pid::from_raw(inner), Signal::SIGKILL).expect("SIGKILL the inner agent");
    wait_for(
        "PID 1 to reap the three orphaned nats-servers",
        STEP,
        || {
            let left: Vec<Stat> = orphans.iter().filter_map(|pid| stat(*pid)).collect();
            async move { left.is_empty().then_some(()) }
        },
    )
    .await;
    let restarted = agent_child(pid1).await;
    assert_ne!(restarted, inner, "PID 1 restarted its child");
    let zombies: Vec<Stat> = descendants(pid1)
        .into_iter()
        .filter(Stat::is_zombie)
        .collect();
    assert!(zombies.is_empty(), "zombies in the container: {zombies:?}");
}

#[tokio::test]
async fn the_container_exits_with_the_childs_code() {
    let test = "the_container_exits_with_the_childs_code";
    let Some(()) = available(test, &[SERVER_IMAGE, CLIENT_IMAGE]) else {
        return;
    };
    let guard = Cleanup::new("img-exit");
    let never = ["-e", "GEOLB_RESTART=never"];
    // (image, command after the image's `geolb-agent run --`, expected code)
    let cases: [(&str, &[&str], i32); 3] = [
        (SERVER_IMAGE, &["nats-server", "-c", "/no/such.conf"], 1),
        (CLIENT_IMAGE, &["geolb-agent", "client"], 2),
        (SERVER_IMAGE, &["/no/such/program"], 127),
    ];
    for (image, command, code) in cases {
        let mut args = never.to_vec();
        args.push(image);
        args.extend_from_slice(command);
        let container = guard.run(&args);
        assert_eq!(wait_exit(&container).await, code, "{command:?}");
    }

    // Killed by a signal: 128 + N. SIGKILL on nats-server (137), and
    // SIGALRM on a child agent, which does not handle it (142).
    let mut args = never.to_vec();
    args.extend([SERVER_IMAGE, "nats-server", "-a", "127.0.0.1", "-p", "-1"]);
    let container = guard.run(&args);
    let nats = nats_child(host_pid(&container).expect("running")).await;
    kill(Pid::from_raw(nats), Signal::SIGKILL).expect("SIGKILL nats-server");
    assert_eq!(wait_exit(&container).await, 128 + 9);

    let mut args = never.to_vec();
    args.extend([SERVER_IMAGE, "geolb-agent", "run", "--", "nats-server"]);
    args.extend(["-a", "127.0.0.1", "-p", "-1"]);
    let container = guard.run(&args);
    let inner = agent_child(host_pid(&container).expect("running")).await;
    kill(Pid::from_raw(inner), Signal::SIGALRM).expect("SIGALRM the inner agent");
    assert_eq!(wait_exit(&container).await, 128 + 14);
}

/// The live children of `pid`.
fn live_children(pid: i32) -> Vec<Stat> {
    children(pid)
        .into_iter()
        .filter(|s| !s.is_zombie())
        .collect()
}

/// Every process below `pid`, zombies included.
fn descendants(pid: i32) -> Vec<Stat> {
    let mut found = children(pid);
    let mut i = 0;
    while let Some(s) = found.get(i) {
        let next = children(s.pid);
        found.extend(next);
        i += 1;
    }
    found
}

/// The host pid of `agent`'s nats-server child, once there is one.
async fn nats_child(agent: i32) -> i32 {
    only_child(agent, "nats-server").await
}

/// The host pid of `agent`'s geolb-agent child, once there is one.
async fn agent_child(agent: i32) -> i32 {
    only_child(agent, "geolb-agent").await
}

async fn only_child(parent: i32, comm: &str) -> i32 {
    wait_for(&format!("a {comm} child of {parent}"), STEP, || {
        let kids: Vec<i32> = live_children(parent)
            .iter()
            .filter(|s| s.comm == comm)
            .map(|s| s.pid)
            .collect();
        async move { (kids.len() == 1).then(|| kids[0]) }
    })
    .await
}

/// Waits until `container`'s logs contain `text`.
async fn wait_logs(container: &str, text: &str) {
    wait_for(
        &format!("{text:?} in the logs of {container}"),
        STEP,
        || {
            let found = logs(container).contains(text);
            async move { found.then_some(()) }
        },
    )
    .await
}

/// Waits for `container` to stop; its exit code.
async fn wait_exit(container: &str) -> i32 {
    let what = format!(
        "container {container} ({}) to exit",
        inspect(container, "{{.Config.Cmd}}").unwrap_or_default()
    );
    wait_for(&what, STEP, || {
        let code = exit_code(container);
        async move { code }
    })
    .await
}
