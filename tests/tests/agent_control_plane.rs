//! The agent and its control plane: the control plane killed and restarted
//! while commands and heartbeats flow (events buffered and delivered in
//! order, the child untouched), a bounded outbox that counts what it drops,
//! and a control plane that is down when the agent starts.

use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use geolb_proto::{subject, Command, Event, EventKind, Heartbeat, Reply, Request};
use geolb_tests::agent::AgentBuilder;
use geolb_tests::http::http_get;
use geolb_tests::{
    default_version, free_port, wait_for, with_timeout, NatsServer, ProcessGuard, ServerConfig,
};
use nix::sys::signal::Signal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

/// A bash child that survives the forwarded signals used to make events.
const SURVIVOR: &[&str] = &[
    "bash",
    "-c",
    "trap '' USR1 HUP; while true; do sleep 0.2; done",
];

fn control_plane() -> NatsServer {
    NatsServer::start(default_version(), ServerConfig::default().jetstream())
}

async fn connect(url: &str) -> async_nats::Client {
    with_timeout(T, async_nats::connect(url))
        .await
        .expect("connect to the control plane")
}

/// A file-backed stream of every event, so nothing is missed across restarts.
async fn record_events(client: &async_nats::Client) -> stream::Stream {
    let js = jetstream::new(client.clone());
    with_timeout(
        T,
        js.create_stream(stream::Config {
            name: "TEST_EVENTS".into(),
            subjects: vec![subject::EVENTS_ALL.into()],
            ..Default::default()
        }),
    )
    .await
    .expect("create the event stream")
}

async fn recorded(stream: &stream::Stream) -> Vec<Event> {
    let consumer = stream
        .create_consumer(pull::Config::default())
        .await
        .expect("create consumer");
    let pending = stream
        .clone()
        .info()
        .await
        .expect("stream info")
        .state
        .messages as usize;
    let mut messages = consumer
        .fetch()
        .max_messages(pending.max(1))
        .expires(Duration::from_secs(1))
        .messages()
        .await
        .expect("fetch");
    let mut events = Vec::new();
    while let Some(Ok(message)) = messages.next().await {
        events.push(serde_json::from_slice(&message.payload).expect("event JSON"));
    }
    events
}

async fn status(client: &async_nats::Client, id: &str, command_id: &str) -> Result<Reply, String> {
    let body = Command::new(command_id, &Request::Status).encode();
    let subject = subject::command(id, geolb_proto::Verb::Status);
    match tokio::time::timeout(Duration::from_secs(1), client.request(subject, body.into())).await {
        Ok(Ok(message)) => Reply::decode(&message.payload).map_err(|e| e.to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// The agent's outbox as its Prometheus endpoint shows it: (buffered, dropped).
fn outbox(metrics_port: u16) -> Option<(u64, u64)> {
    let url = format!("http://127.0.0.1:{metrics_port}/metrics");
    let (200, text) = http_get(&url).ok()? else {
        return None;
    };
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
    };
    Some((
        value("geolb_outbox_buffered")?,
        value("geolb_outbox_dropped_total")?,
    ))
}

/// Waits until the agent's outbox satisfies `ok` (buffered, dropped).
async fn until_outbox(metrics_port: u16, what: &str, ok: impl Fn(u64, u64) -> bool) {
    wait_for(what, T, || async {
        outbox(metrics_port).filter(|&(buffered, dropped)| ok(buffered, dropped))
    })
    .await;
}

fn child_pid(reply: &Reply) -> u32 {
    reply.state.replicas[0].pid.expect("the child runs")
}

#[tokio::test]
async fn survives_a_control_plane_restart_without_losing_events() {
    let mut control = control_plane();
    let url = control.client_url();
    let client = connect(&url).await;
    let events = record_events(&client).await;
    let metrics = free_port();
    let agent = AgentBuilder::new("cp-1", "lon")
        .control(&url)
        .arg("--role")
        .arg("client")
        .arg("--prometheus-listen")
        .arg(format!("127.0.0.1:{metrics}"))
        .spawn(SURVIVOR);

    let before = wait_for("the agent answers", T, || async {
        status(&client, "cp-1", "s-0").await.ok()
    })
    .await;
    let pid = child_pid(&before);

    // A command stream that keeps going through the outage.
    let answered = Arc::new(AtomicUsize::new(0));
    let unanswered = Arc::new(AtomicUsize::new(0));
    let stream = {
        let (client, answered, unanswered) = (client.clone(), answered.clone(), unanswered.clone());
        tokio::spawn(async move {
            for n in 0.. {
                match status(&client, "cp-1", &format!("stream-{n}")).await {
                    Ok(_) => answered.fetch_add(1, Ordering::Relaxed),
                    Err(_) => unanswered.fetch_add(1, Ordering::Relaxed),
                };
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    wait_for("the command stream flows", T, || async {
        (answered.load(Ordering::Relaxed) >= 3).then_some(())
    })
    .await;

    until_outbox(metrics, "every event so far sent", |buffered, _| {
        buffered == 0
    })
    .await;
    control.kill();
    for _ in 0..30 {
        agent.signal(Signal::SIGUSR1).expect("signal the agent");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    until_outbox(metrics, "30 events waiting in the outbox", |buffered, _| {
        buffered >= 30
    })
    .await;
    // The outage lasts until the command stream has felt it.
    wait_for("a command unanswered during the outage", T, || async {
        (unanswered.load(Ordering::Relaxed) > 0).then_some(())
    })
    .await;
    let answered_before = answered.load(Ordering::Relaxed);
    control.restart();

    wait_for(
        "the command stream flows again after the restart",
        T,
        || async { (answered.load(Ordering::Relaxed) >= answered_before + 3).then_some(()) },
    )
    .await;
    stream.abort();

    let mut heartbeats = client
        .subscribe(subject::heartbeat("lon", "cp-1"))
        .await
        .unwrap();
    let beat = with_timeout(T, heartbeats.next())
        .await
        .expect("heartbeats resume");
    let beat: Heartbeat = serde_json::from_slice(&beat.payload).expect("heartbeat JSON");
    assert_eq!(
        beat.status.replicas[0].pid,
        Some(pid),
        "the child was not touched"
    );

    let got = wait_for("30 forwarded-signal events recorded", T, || async {
        let got = recorded(&events).await;
        let forwarded = got
            .iter()
            .filter(|e| matches!(e.event, EventKind::SignalForwarded { .. }))
            .count();
        (forwarded >= 30).then_some(got)
    })
    .await;
    // A batch cut off by the outage may be sent again: readers drop repeats
    // by seq. First sightings must then run 1, 2, 3... with no gap.
    let mut first_seen = Vec::new();
    for event in &got {
        if !first_seen.contains(&event.seq) {
            first_seen.push(event.seq);
        }
    }
    let want: Vec<u64> = (1..=first_seen.len() as u64).collect();
    assert_eq!(first_seen, want, "events arrive in order with no gap");
    drop(agent);
}

#[tokio::test]
async fn a_full_outbox_drops_the_oldest_and_says_how_many() {
    let mut control = control_plane();
    let url = control.client_url();
    let client = connect(&url).await;
    let events = record_events(&client).await;
    let metrics = free_port();
    let agent = AgentBuilder::new("cp-2", "lon")
        .control(&url)
        .arg("--role")
        .arg("client")
        .arg("--outbox")
        .arg("10")
        .arg("--prometheus-listen")
        .arg(format!("127.0.0.1:{metrics}"))
        .spawn(SURVIVOR);
    wait_for("the agent answers", T, || async {
        status(&client, "cp-2", "s-0").await.ok()
    })
    .await;

    control.kill();
    for _ in 0..25 {
        agent.signal(Signal::SIGUSR1).expect("signal the agent");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Every forwarded signal in the outbox before reconnecting: 25 events
    // into 10 places drop at least 15.
    until_outbox(
        metrics,
        "15 events dropped from the outbox",
        |_, dropped| dropped >= 15,
    )
    .await;
    control.restart();

    let got = wait_for("the events_dropped event", T, || async {
        let got = recorded(&events).await;
        got.iter()
            .any(|e| matches!(e.event, EventKind::EventsDropped { .. }))
            .then_some(got)
    })
    .await;
    let dropped: u64 = got
        .iter()
        .filter_map(|e| match e.event {
            EventKind::EventsDropped { count } => Some(count),
            _ => None,
        })
        .sum();
    // Events still queued from before the outage may be dropped too, so the
    // exact count varies; what must hold is that the report accounts for
    // every missing sequence number, and that the newest 10 were kept.
    let mut seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    let last = *seqs.last().unwrap();
    let missing = (1..=last)
        .filter(|s| seqs.binary_search(s).is_err())
        .count() as u64;
    assert!(
        dropped >= 15,
        "25 events into an outbox of 10 drop at least 15, got {dropped}"
    );
    assert_eq!(dropped, missing, "the report counts every dropped event");
    let report = got
        .iter()
        .find(|e| matches!(e.event, EventKind::EventsDropped { .. }))
        .unwrap();
    let kept: Vec<u64> = seqs
        .iter()
        .copied()
        .filter(|s| *s < report.seq)
        .rev()
        .take(10)
        .collect();
    assert_eq!(kept.len(), 10);
    assert_eq!(
        kept[0] - kept[9],
        9,
        "the newest 10 before the report were kept, without gaps"
    );

    let mut hb = client
        .subscribe(subject::heartbeat("lon", "cp-2"))
        .await
        .expect("subscribe");
    let beat = with_timeout(T, hb.next()).await.expect("a heartbeat");
    let beat: Heartbeat = serde_json::from_slice(&beat.payload).expect("heartbeat JSON");
    assert_eq!(beat.outbox.dropped, dropped);
    assert_eq!(beat.outbox.capacity, 10);
    drop(agent);
}

#[tokio::test]
async fn starts_while_the_control_plane_is_down() {
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let agent = AgentBuilder::new("cp-3", "lon")
        .control(&url)
        .arg("--role")
        .arg("client")
        .spawn(SURVIVOR);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut agent = agent;
    assert!(
        agent.try_status().is_none(),
        "the agent keeps running without its control plane"
    );

    let control = NatsServer::start(
        default_version(),
        ServerConfig {
            port,
            ..Default::default()
        },
    );
    let client = connect(&control.client_url()).await;
    let reply = wait_for(
        "the agent answers once the control plane is up",
        T,
        || async { status(&client, "cp-3", "s-1").await.ok() },
    )
    .await;
    assert!(reply.ok);
    drop(agent);
}

#[tokio::test]
async fn supervises_with_no_control_plane_at_all() {
    let dir = std::env::temp_dir().join(format!("geolb-nocp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let marker = dir.join("ran");
    let script = format!("touch {}; exit 4", marker.display());
    let mut agent: ProcessGuard = AgentBuilder::new("cp-4", "lon")
        .arg("--restart")
        .arg("never")
        .spawn(&["sh", "-c", &script]);
    let status = agent
        .wait_exit(T)
        .await
        .expect("the agent exits with its child");
    assert_eq!(status.code(), Some(4));
    assert!(marker.exists());
    std::fs::remove_dir_all(dir).unwrap();
}
