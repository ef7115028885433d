//! A flood of commands cannot grow the agent without bound: 100,000
//! requests published at once (and oversized ones) are answered or refused
//! `rate_limited`, the refusal events are themselves rate-limited, the
//! agent's memory stays bounded, and it answers normally afterwards.

use futures::StreamExt;
use geolb_proto::{subject, EventKind, Reply};
use geolb_tests::agent::AgentBuilder;
use geolb_tests::{default_version, procfs, wait_for, NatsServer, ServerConfig};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);
const FLOOD: usize = 100_000;

#[tokio::test]
async fn a_flood_of_commands_is_rate_limited_and_bounded() {
    let control = NatsServer::start(default_version(), ServerConfig::default());
    let url = control.client_url();
    let client = async_nats::connect(&url).await.unwrap();
    let agent = AgentBuilder::new("flood-1", "lon")
        .control(&url)
        .arg("--role")
        .arg("client")
        .quiet()
        .spawn(&["sleep", "120"]);
    let status = subject::command("flood-1", geolb_proto::Verb::Status);
    wait_for("flood-1 answers", T, || async {
        let request = client.request(status.clone(), "".into());
        tokio::time::timeout(Duration::from_millis(500), request)
            .await
            .ok()?
            .ok()
    })
    .await;
    let pid = agent.pid() as i32;
    let rss_before = procfs::rss_kib(pid).unwrap();
    let mut events = client
        .subscribe(subject::event("lon", "flood-1"))
        .await
        .unwrap();
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(format!("{inbox}.*")).await.unwrap();
    client.flush().await.unwrap();

    let started = Instant::now();
    let target = subject::command("flood-1", geolb_proto::Verb::Start);
    let oversized = vec![b'x'; 100 * 1024];
    for n in 0..FLOOD {
        let body = if n % 100 == 0 {
            oversized.clone()
        } else {
            format!(r#"{{"v":1,"id":"flood-{n}"}}"#).into_bytes()
        };
        client
            .publish_with_reply(target.clone(), format!("{inbox}.{n}"), body.into())
            .await
            .unwrap();
    }
    client.flush().await.unwrap();
    let mut kinds: HashMap<String, usize> = HashMap::new();
    let mut peak_rss = rss_before;
    let quiet = Duration::from_secs(3);
    while let Ok(Some(message)) = tokio::time::timeout(quiet, replies.next()).await {
        let reply = Reply::decode(&message.payload).expect("a reply");
        let kind = reply.error.map_or("ok", |e| e.kind.as_str()).to_string();
        *kinds.entry(kind).or_default() += 1;
        if kinds.values().sum::<usize>() % 5_000 == 0 {
            peak_rss = peak_rss.max(procfs::rss_kib(pid).unwrap_or(0));
        }
    }
    let elapsed = started.elapsed();
    peak_rss = peak_rss.max(procfs::rss_kib(pid).unwrap_or(0));
    let answered: usize = kinds.values().sum();
    eprintln!(
        "flood of {FLOOD}: {answered} answers in {elapsed:?} {kinds:?}; RSS {rss_before} KiB before, {peak_rss} KiB at most"
    );
    assert!(
        kinds.get("rate_limited").copied().unwrap_or(0) > 0,
        "{kinds:?}"
    );
    assert!(
        kinds.get("conflict").copied().unwrap_or(0) <= 400 + 200 * (elapsed.as_secs() as usize + 1),
        "at most the rate limit is applied: {kinds:?}"
    );
    assert!(
        peak_rss < rss_before + 64 * 1024,
        "memory stays bounded: {rss_before} -> {peak_rss} KiB"
    );

    // Still answering, and the refusal events were rate-limited too.
    wait_for("flood-1 answers again", T, || async {
        let request = client.request(status.clone(), "".into());
        let message = tokio::time::timeout(Duration::from_millis(500), request)
            .await
            .ok()?
            .ok()?;
        Reply::decode(&message.payload).ok()?.ok.then_some(())
    })
    .await;
    let mut refused = 0;
    while let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(1), events.next()).await
    {
        let event: geolb_proto::Event = serde_json::from_slice(&message.payload).unwrap();
        if matches!(event.event, EventKind::CommandRefused { .. }) {
            refused += 1;
        }
    }
    let bound = 20 + 10 * (started.elapsed().as_secs() as usize + 1);
    assert!(
        refused <= bound,
        "{refused} refusal events, more than {bound}"
    );
}
