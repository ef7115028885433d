//! Standard NATS tooling finds the agents: ADR-32 `$SRV.PING`, `$SRV.INFO`
//! and `$SRV.STATS` are answered with the instance's id, region and role,
//! and every verb is an endpoint on the agent's own subject.

use futures::StreamExt;
use geolb_proto::{subject, Metrics};
use geolb_tests::agent::AgentBuilder;
use geolb_tests::{default_version, wait_for, with_timeout, NatsServer, ServerConfig};
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

/// Scatter-gather: every answer to `subject` within `window`.
async fn gather(client: &async_nats::Client, subject: &str, window: Duration) -> Vec<Value> {
    let inbox = client.new_inbox();
    let mut answers = client.subscribe(inbox.clone()).await.unwrap();
    client
        .publish_with_reply(subject.to_string(), inbox, "".into())
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Ok(Some(message)) = tokio::time::timeout(window, answers.next()).await {
        // An empty message is the server's "no responders" notice.
        if !message.payload.is_empty() {
            out.push(serde_json::from_slice(&message.payload).expect("JSON answer"));
        }
    }
    out
}

#[tokio::test]
async fn agents_answer_adr32_discovery() {
    let control = NatsServer::start(default_version(), ServerConfig::default());
    let url = control.client_url();
    let client = async_nats::connect(&url).await.expect("connect");
    let _a = AgentBuilder::new("disc-a", "lon")
        .control(&url)
        .arg("--role")
        .arg("client")
        .spawn(&["sleep", "60"]);
    let _b = AgentBuilder::new("disc-b", "ams")
        .control(&url)
        .arg("--role")
        .arg("client")
        .spawn(&["sleep", "60"]);

    let pings = wait_for("two agents answer $SRV.PING", T, || async {
        let pings = gather(&client, "$SRV.PING.geolb-agent", Duration::from_millis(300)).await;
        (pings.len() == 2).then_some(pings)
    })
    .await;
    for ping in &pings {
        assert_eq!(ping["type"], "io.nats.micro.v1.ping_response");
        assert_eq!(ping["name"], subject::SERVICE_NAME);
    }

    let infos = gather(&client, "$SRV.INFO.geolb-agent", Duration::from_millis(300)).await;
    let mut seen: Vec<(String, String, String)> = infos
        .iter()
        .map(|i| {
            let m = &i["metadata"];
            (
                m["id"].as_str().unwrap().into(),
                m["region"].as_str().unwrap().into(),
                m["role"].as_str().unwrap().into(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("disc-a".into(), "lon".into(), "client".into()),
            ("disc-b".into(), "ams".into(), "client".into())
        ]
    );
    let info_a = infos
        .iter()
        .find(|i| i["metadata"]["id"] == "disc-a")
        .unwrap();
    let mut endpoints: Vec<(String, String)> = info_a["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().into(),
                e["subject"].as_str().unwrap().into(),
            )
        })
        .collect();
    endpoints.sort();
    let mut want: Vec<(String, String)> = geolb_proto::Verb::ALL
        .iter()
        .map(|v| (v.as_str().to_string(), subject::command("disc-a", *v)))
        .collect();
    want.sort();
    assert_eq!(
        endpoints, want,
        "one endpoint per verb on the agent's own subject"
    );

    let stats = gather(
        &client,
        "$SRV.STATS.geolb-agent",
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(stats.len(), 2);
    assert!(stats
        .iter()
        .all(|s| s["type"] == "io.nats.micro.v1.stats_response"));
}

#[tokio::test]
async fn a_server_agent_ships_server_and_process_metrics() {
    let control = NatsServer::start(default_version(), ServerConfig::default());
    let url = control.client_url();
    let client = async_nats::connect(&url).await.expect("connect");
    let mut metrics = client
        .subscribe(subject::metrics("lon", "met-1"))
        .await
        .unwrap();
    let (_agent, server) = AgentBuilder::new("met-1", "lon").control(&url).server(
        default_version(),
        ServerConfig::default().server_name("met-1"),
    );

    let sample = with_timeout(T, async {
        while let Some(message) = metrics.next().await {
            let m: Metrics = serde_json::from_slice(&message.payload).expect("metrics JSON");
            if m.server.as_ref().is_some_and(|s| s.healthy) && !m.children.is_empty() {
                return m;
            }
        }
        panic!("the metrics subscription ended");
    })
    .await;
    let s = sample.server.unwrap();
    assert_eq!(s.version, default_version());
    assert_eq!(s.server_name, "met-1");
    assert_eq!(s.healthz_status, 200);
    assert!(
        sample.children[0].rss_bytes > 1 << 20,
        "nats-server uses more than 1 MiB"
    );
    assert!(sample.host.mem_total_bytes > 0 && sample.host.cpus > 0);
    assert!(sample.agent_process.is_some());
    drop(server);
}
