//! `geolb-agent run --container NAME`: an agent on the host drives a real
//! `geolb-server` container through the Docker API. Every verb is sent to it
//! and to a process-mode agent around a nats-server: the replies and the
//! events must be the same. Also: an LDM stop ended early once the clients
//! left, a bad container name refused at start, exits the agent did not
//! cause reported, and the container left running when the agent ends.

use futures::StreamExt;
use geolb_proto::{subject, Event, Reply};
use geolb_tests::agent::AgentBuilder;
use geolb_tests::docker::{self, Cleanup, SERVER_IMAGE};
use geolb_tests::{
    agent_bin, default_version, free_port, upgrade_version, wait_for, with_timeout, NatsServer,
    ProcessGuard, ServerConfig,
};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);
/// Events that come after this much silence are not part of the step.
const QUIET: Duration = Duration::from_millis(500);

static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// Whether the engine, `images` and an agent built with the `docker`
/// feature (`make test` builds it so) are there; otherwise the test is
/// reported skipped by name (a failure under `GEOLB_REQUIRE_DOCKER=1`).
fn ready(test: &str, images: &[&str]) -> bool {
    if docker::available(test, images).is_none() {
        return false;
    }
    let probe = std::process::Command::new(agent_bin())
        .args(["run", "--container", "geolb-feature-probe"])
        .output()
        .expect("run the agent");
    if !String::from_utf8_lossy(&probe.stderr).contains("without the `docker` feature") {
        return true;
    }
    let why = "geolb-agent was built without the `docker` feature; run `make test` \
               or `cargo build -p geolb-agent --features docker`";
    assert!(
        !docker::required(),
        "{test}: {why}, and GEOLB_REQUIRE_DOCKER=1 forbids skipping"
    );
    eprintln!("SKIPPED {test}: {why}");
    false
}

/// A `geolb-server` container with its monitoring (and client) port
/// published on 127.0.0.1, removed with its `Cleanup`.
struct Container {
    name: String,
    monitor: String,
    client_port: u16,
}

impl Container {
    fn run(cleanup: &Cleanup, what: &str) -> Container {
        let name = cleanup.name(what);
        let (monitor_port, client_port) = (free_port(), free_port());
        cleanup.run(&[
            "--name",
            &name,
            "-p",
            &format!("127.0.0.1:{monitor_port}:8222"),
            "-p",
            &format!("127.0.0.1:{client_port}:4222"),
            SERVER_IMAGE,
        ]);
        Container {
            name,
            monitor: format!("http://127.0.0.1:{monitor_port}"),
            client_port,
        }
    }

    fn healthz(&self) -> u16 {
        geolb_tests::http::http_get_within(
            &format!("{}/healthz", self.monitor),
            Duration::from_millis(500),
        )
        .map(|(status, _)| status)
        .unwrap_or(0)
    }

    fn inspect(&self, format: &str) -> String {
        docker::inspect(&self.name, format).unwrap_or_else(|e| panic!("inspect: {e}"))
    }

    /// An agent on the host supervising this container.
    fn agent(&self, id: &str, control: &str, extra: &[&str]) -> ProcessGuard {
        let mut builder = AgentBuilder::new(id, "lon")
            .control(control)
            .arg("--monitor")
            .arg(&self.monitor)
            .arg("--container")
            .arg(&self.name);
        for arg in extra {
            builder = builder.arg(*arg);
        }
        builder.spawn(&[])
    }
}

/// One agent as a test sees it: its commands and its events.
struct Agent {
    id: String,
    client: async_nats::Client,
    events: async_nats::Subscriber,
    /// The highest event `seq` seen: repeats (a batch sent again) are dropped.
    seq: u64,
}

impl Agent {
    async fn new(client: &async_nats::Client, id: &str) -> Agent {
        let events = client
            .subscribe(subject::event("lon", id))
            .await
            .expect("subscribe to events");
        Agent {
            id: id.to_string(),
            client: client.clone(),
            events,
            seq: 0,
        }
    }

    /// Sends `verb` with `args`; `None` while nobody answers.
    async fn try_send(&self, verb: &str, args: &Value, wait: Duration) -> Option<Reply> {
        let id = format!("t-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
        let body = json!({"id": id, "args": args}).to_string();
        let subject = format!("{}.{verb}", subject::command_group(&self.id));
        let request = self.client.request(subject, body.into());
        let message = tokio::time::timeout(wait, request).await.ok()?.ok()?;
        Reply::decode(&message.payload).ok()
    }

    async fn send(&self, verb: &str, args: Value) -> Reply {
        self.try_send(verb, &args, Duration::from_secs(90))
            .await
            .unwrap_or_else(|| panic!("{} answers {verb}", self.id))
    }

    async fn wait_state(&self, want: &str) {
        wait_for(&format!("{} is {want}", self.id), T, || async {
            let reply = self.try_send("status", &json!({}), QUIET).await?;
            (reply.state.state.as_str() == want).then_some(())
        })
        .await;
    }

    /// The kinds of the next events: `count` of them, then whatever else
    /// comes before a pause of [`QUIET`].
    async fn events(&mut self, count: usize) -> Vec<String> {
        let mut kinds = Vec::new();
        while kinds.len() < count {
            match tokio::time::timeout(T, self.events.next()).await {
                Ok(Some(message)) => kinds.extend(self.fresh(&message.payload)),
                _ => break,
            }
        }
        while let Ok(Some(message)) = tokio::time::timeout(QUIET, self.events.next()).await {
            kinds.extend(self.fresh(&message.payload));
        }
        kinds
    }

    /// The event's kind, unless it is a repeat.
    fn fresh(&mut self, payload: &[u8]) -> Option<String> {
        let event: Event = serde_json::from_slice(payload).expect("an event");
        let fresh = event.seq > self.seq;
        self.seq = self.seq.max(event.seq);
        fresh.then(|| event.event.name())
    }
}

/// What of a reply must agree between the two modes.
fn outcome(reply: &Reply) -> (bool, String, String) {
    let error = reply.error.as_ref().map(|e| e.kind.as_str().to_string());
    (
        reply.ok,
        error.unwrap_or_default(),
        reply.state.state.as_str().to_string(),
    )
}

/// Sends a command to both agents (arguments per mode) and checks that
/// both give `want` (ok, error kind, state) and the events `events`.
async fn both(
    process: &mut Agent,
    container: &mut Agent,
    verb: &str,
    args: (Value, Value),
    want: (bool, &str, &str),
    events: &[&str],
) -> Reply {
    let want = (want.0, want.1.to_string(), want.2.to_string());
    for (agent, args) in [(process, args.0), (container, args.1)] {
        let began = Instant::now();
        let reply = agent.send(verb, args.clone()).await;
        let took = began.elapsed();
        assert_eq!(
            outcome(&reply),
            want,
            "{} {verb} {args}: {reply:?}",
            agent.id
        );
        let got = agent.events(events.len()).await;
        assert_eq!(got, events, "{} {verb} {args}: events", agent.id);
        if agent.id.starts_with('c') {
            println!("container {verb} {args}: replied in {took:?}");
            return reply;
        }
    }
    unreachable!("the container agent answers last")
}

async fn same(
    process: &mut Agent,
    container: &mut Agent,
    verb: &str,
    args: Value,
    want: (bool, &str, &str),
    events: &[&str],
) -> Reply {
    both(process, container, verb, (args.clone(), args), want, events).await
}

/// `docker tag` for the test, removed on drop.
struct Tag(String);

impl Drop for Tag {
    fn drop(&mut self) {
        let _ = docker::docker(&["rmi", &self.0]);
    }
}

/// What every container test starts with: a `geolb-server` container, a
/// control-plane nats-server, and a client of the control plane.
struct Setup {
    cleanup: Cleanup,
    box_: Container,
    control: NatsServer,
    url: String,
    client: async_nats::Client,
}

impl Setup {
    /// The fixture of `test` (containers labelled for `owner`), or `None`
    /// when it is skipped (see [`ready`]).
    async fn new(test: &str, owner: &str) -> Option<Setup> {
        if !ready(test, &[SERVER_IMAGE]) {
            return None;
        }
        let cleanup = Cleanup::new(owner);
        let box_ = Container::run(&cleanup, "srv");
        let control = NatsServer::start(default_version(), ServerConfig::default());
        let url = control.client_url();
        let client = async_nats::connect(&url).await.expect("connect");
        Some(Setup {
            cleanup,
            box_,
            control,
            url,
            client,
        })
    }
}

#[tokio::test]
async fn every_verb_gives_the_process_mode_replies_and_events() {
    let Some(Setup {
        cleanup,
        box_,
        control: _control,
        url,
        client,
    }) = Setup::new(
        "every_verb_gives_the_process_mode_replies_and_events",
        "agent_container_verbs",
    )
    .await
    else {
        return;
    };
    let mut c = Agent::new(&client, "c-1").await;
    let mut p = Agent::new(&client, "p-1").await;
    let _container_agent = box_.agent("c-1", &url, &[]);
    let (_process_agent, _server) = AgentBuilder::new("p-1", "lon").control(&url).server(
        default_version(),
        ServerConfig::default().server_name("p-1"),
    );
    for agent in [&c, &p] {
        agent.wait_state("running").await;
    }
    wait_for("the container's server is healthy", T, || async {
        (box_.healthz() == 200).then_some(())
    })
    .await;
    c.events(0).await;
    p.events(0).await;
    let no_args = || json!({});

    for mode in ["ldm", "term", "kill"] {
        let reply = same(
            &mut p,
            &mut c,
            "stop",
            json!({"mode": mode}),
            (true, "", "stopped"),
            &["lame_duck", "exited", "stopped"][usize::from(mode != "ldm")..],
        )
        .await;
        assert!(reply.state.replicas[0].pid.is_none());
        assert_eq!(box_.inspect("{{.State.Status}}"), "exited", "{mode}");
        let code = box_.inspect("{{.State.ExitCode}}");
        assert_eq!(code, if mode == "kill" { "137" } else { "0" }, "{mode}");
        assert_eq!(box_.healthz(), 0);
        tokio::time::sleep(Duration::from_millis(600)).await;
        c.wait_state("stopped").await;
        same(
            &mut p,
            &mut c,
            "start",
            no_args(),
            (true, "", "running"),
            &["started"],
        )
        .await;
        assert_eq!(box_.inspect("{{.State.Status}}"), "running");
    }
    same(
        &mut p,
        &mut c,
        "start",
        no_args(),
        (false, "conflict", "running"),
        &[],
    )
    .await;

    let before = c.send("status", no_args()).await.state.replicas[0].pid;
    let reply = same(
        &mut p,
        &mut c,
        "restart",
        json!({"mode": "term"}),
        (true, "", "running"),
        &["exited", "stopped", "started"],
    )
    .await;
    let after = reply.state.replicas[0].pid;
    assert!(
        after.is_some() && after != before,
        "{before:?} -> {after:?}"
    );
    assert_eq!(box_.inspect("{{.State.Pid}}"), after.unwrap().to_string());

    // A pause flap freezes the container: paused for Docker, no answer on /healthz.
    let reply = c
        .send(
            "flap",
            json!({"mode": "pause", "down": "1500ms", "up": "1s", "cycles": 1}),
        )
        .await;
    assert!(reply.ok, "{reply:?}");
    c.wait_state("paused").await;
    assert_eq!(box_.inspect("{{.State.Paused}}"), "true");
    assert_eq!(box_.healthz(), 0, "a paused server does not answer");
    let container_events = c.events(4).await;
    let reply = p
        .send(
            "flap",
            json!({"mode": "pause", "down": "1500ms", "up": "1s", "cycles": 1}),
        )
        .await;
    assert!(reply.ok, "{reply:?}");
    assert_eq!(p.events(4).await, container_events);
    assert_eq!(
        container_events,
        ["flap_began", "paused", "resumed", "flap_ended"]
    );
    assert_eq!(box_.inspect("{{.State.Paused}}"), "false");
    c.wait_state("running").await;

    let flap = json!({"mode": "stop", "down": "700ms", "up": "700ms", "cycles": 1});
    same(
        &mut p,
        &mut c,
        "flap",
        flap,
        (true, "", "stopping"),
        &["flap_began", "exited", "stopped", "started", "flap_ended"],
    )
    .await;
    c.wait_state("running").await;
    p.wait_state("running").await;

    // `flap --cancel` and `start` end a long pause flap with the container up.
    for (verb, args) in [("flap", json!({"cancel": true})), ("start", json!({}))] {
        let long = json!({"mode": "pause", "down": "20s", "up": "20s", "cycles": 2});
        same(
            &mut p,
            &mut c,
            "flap",
            long,
            (true, "", "paused"),
            &["flap_began", "paused"],
        )
        .await;
        assert_eq!(box_.inspect("{{.State.Paused}}"), "true");
        let reply = same(
            &mut p,
            &mut c,
            verb,
            args,
            (true, "", "running"),
            &["resumed", "flap_ended"],
        )
        .await;
        assert!(reply.state.flap.is_none());
        assert_eq!(box_.inspect("{{.State.Paused}}"), "false", "{verb}");
    }
    same(
        &mut p,
        &mut c,
        "flap",
        json!({"cancel": true}),
        (false, "conflict", "running"),
        &[],
    )
    .await;

    // A container is one replica.
    let reply = same(
        &mut p,
        &mut c,
        "scale",
        json!({"replicas": 2}),
        (false, "conflict", "running"),
        &[],
    )
    .await;
    assert_eq!(reply.state.replicas.len(), 1);

    // Upgrade: a missing target is refused before anything stops...
    let missing = (json!({"to": "9.9.9"}), json!({"to": "no-such-tag"}));
    let before = box_.inspect("{{.Id}}");
    let reply = both(
        &mut p,
        &mut c,
        "upgrade",
        missing,
        (false, "not_installed", "running"),
        &[],
    )
    .await;
    let message = &reply.error.as_ref().unwrap().message;
    assert!(message.contains("geolb-server:no-such-tag"), "{message}");
    assert_eq!(box_.inspect("{{.Id}}"), before, "nothing was touched");
    // A binary from the control plane cannot go into a container driven from beside it.
    let reply = c.send("upgrade", json!({"to": "obj:nats-next"})).await;
    let refused = (false, "invalid_argument".to_string(), "running".to_string());
    assert_eq!(outcome(&reply), refused, "{reply:?}");
    assert!(reply.error.unwrap().message.contains("--container"));
    assert_eq!(box_.inspect("{{.Id}}"), before, "nothing was touched");

    // ...and another tag recreates the container, answered after the health gate.
    let tag = Tag(format!("geolb-server:upgrade-test-{}", std::process::id()));
    docker::docker(&["tag", SERVER_IMAGE, &tag.0]).expect("docker tag");
    let bare_tag = tag.0.split_once(':').unwrap().1.to_string();
    let reply = both(
        &mut p,
        &mut c,
        "upgrade",
        (json!({"to": upgrade_version()}), json!({"to": bare_tag})),
        (true, "", "running"),
        &["lame_duck", "exited", "stopped", "started", "upgraded"],
    )
    .await;
    assert_eq!(
        box_.healthz(),
        200,
        "healthy when the upgrade is acknowledged"
    );
    assert_eq!(box_.inspect("{{.Config.Image}}"), tag.0);
    assert_ne!(box_.inspect("{{.Id}}"), before, "a new container");
    assert_eq!(reply.state.program, tag.0);
    let leftovers = docker::list("ps", &cleanup.label()[1]);
    assert_eq!(
        leftovers.len(),
        1,
        "the replaced container is gone: {leftovers:?}"
    );
    // The new container is supervised like the old one.
    same(
        &mut p,
        &mut c,
        "stop",
        json!({"mode": "term"}),
        (true, "", "stopped"),
        &["exited", "stopped"],
    )
    .await;
    same(
        &mut p,
        &mut c,
        "start",
        no_args(),
        (true, "", "running"),
        &["started"],
    )
    .await;
}

#[tokio::test]
async fn an_ldm_stop_ends_once_the_clients_have_left() {
    let Some(Setup {
        cleanup: _cleanup,
        box_,
        control: _control,
        url,
        client,
    }) = Setup::new(
        "an_ldm_stop_ends_once_the_clients_have_left",
        "agent_container_ldm",
    )
    .await
    else {
        return;
    };
    let mut agent = Agent::new(&client, "c-2").await;
    let _agent = box_.agent("c-2", &url, &["--ldm-grace", "50s"]);
    agent.wait_state("running").await;
    wait_for("healthy", T, || async {
        (box_.healthz() == 200).then_some(())
    })
    .await;

    let (clients, mut notices) = geolb_tests::agent::lame_duck_listeners(
        &format!("nats://127.0.0.1:{}", box_.client_port),
        2,
    )
    .await;
    agent.events(0).await;

    let began = Instant::now();
    let stopper = Agent::new(&client, "c-2").await;
    let stop = tokio::spawn(async move { stopper.send("stop", json!({"mode": "ldm"})).await });
    for _ in 0..2 {
        with_timeout(T, notices.recv())
            .await
            .expect("every client is told lame-duck mode");
    }
    drop(clients);
    let reply = with_timeout(T, stop).await.expect("the stop task");
    let took = began.elapsed();
    assert!(reply.ok, "{reply:?}");
    assert_eq!(reply.state.state.as_str(), "stopped");
    // nats-server drains over lame_duck_duration (30 s); the probe ended it once they left.
    assert!(took < Duration::from_secs(20), "the drain took {took:?}");
    println!("LDM stop with 2 clients that left: {took:?}");
    assert_eq!(agent.events(3).await, ["lame_duck", "exited", "stopped"]);
}

#[tokio::test]
async fn a_bad_container_name_is_refused_at_start() {
    let test = "a_bad_container_name_is_refused_at_start";
    if !ready(test, &[]) {
        return;
    }
    let control = NatsServer::start(default_version(), ServerConfig::default());
    let url = control.client_url();
    let name = format!("no-such-container-{}", std::process::id());
    let began = Instant::now();
    let output = std::process::Command::new(agent_bin())
        .args(
            AgentBuilder::new("bad-c", "lon")
                .control(&url)
                .command_line(&[]),
        )
        .args(["--container", &name])
        .output()
        .expect("run the agent");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(began.elapsed() < Duration::from_secs(10));
    let message = stderr.lines().last().unwrap_or_default();
    assert!(
        message.contains(&format!("--container {name}: no container {name}")),
        "{stderr}"
    );
    assert!(message.contains("docker ps -a"), "{stderr}");
    // It never registered: nobody answers its commands.
    let client = async_nats::connect(&url).await.expect("connect");
    let agent = Agent::new(&client, "bad-c").await;
    assert!(agent
        .try_send("status", &json!({}), Duration::from_millis(500))
        .await
        .is_none());

    // A command with --container is refused by the flags.
    let output = std::process::Command::new(agent_bin())
        .args(["run", "--container", &name, "--", "sleep", "1"])
        .output()
        .expect("run the agent");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

#[tokio::test]
async fn exits_are_reported_and_the_container_outlives_the_agent() {
    let Some(Setup {
        cleanup: _cleanup,
        box_,
        control: _control,
        url,
        client,
    }) = Setup::new(
        "exits_are_reported_and_the_container_outlives_the_agent",
        "agent_container_outlives",
    )
    .await
    else {
        return;
    };
    let mut agent = Agent::new(&client, "c-3").await;
    let mut guard = box_.agent("c-3", &url, &[]);
    agent.wait_state("running").await;
    agent.events(0).await;

    // Stopped behind the agent's back: reported, not restarted (that is
    // Docker's restart policy's job), and the agent keeps running.
    docker::docker(&["kill", &box_.name]).expect("docker kill");
    agent.wait_state("exited").await;
    assert_eq!(agent.events(1).await, ["exited"]);
    assert!(guard.try_status().is_none(), "the agent still runs");
    let reply = agent.send("start", json!({})).await;
    assert!(reply.ok, "{reply:?}");
    assert_eq!(agent.events(1).await, ["started"]);

    // The agent ends at SIGTERM, first ending a flap with the container up.
    let long = json!({"mode": "pause", "down": "30s", "up": "30s"});
    assert!(agent.send("flap", long).await.ok);
    agent.wait_state("paused").await;
    assert_eq!(agent.events(2).await, ["flap_began", "paused"]);
    guard
        .signal(nix::sys::signal::Signal::SIGTERM)
        .expect("SIGTERM the agent");
    let status = wait_for("the agent exits", T, || {
        let status = guard.try_status();
        async move { status }
    })
    .await;
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        box_.inspect("{{.State.Status}}"),
        "running",
        "the container runs on"
    );
    wait_for("healthy after the agent left", T, || async {
        (box_.healthz() == 200).then_some(())
    })
    .await;
    assert_eq!(
        agent.events(3).await,
        ["resumed", "flap_ended", "agent_stopping"]
    );
}
