//! `geolb fleet ls` against real agents: every agent listed with its state
//! and version, and an agent that stops sending heartbeats shows as stale,
//! then lost, while the others stay live.

use geolb_tests::agent::{geolb, geolb_json, AgentBuilder};
use geolb_tests::{default_version, wait_for, NatsServer, ServerConfig};
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn fleet(url: &str) -> Vec<Value> {
    let (output, rows) = geolb_json(url, &["fleet", "ls"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    rows.as_array().cloned().unwrap_or_default()
}

fn liveness_of(rows: &[Value], id: &str) -> Option<String> {
    let row = rows.iter().find(|r| r["id"] == id)?;
    row["liveness"].as_str().map(String::from)
}

#[tokio::test]
async fn lists_agents_and_tells_stale_from_lost() {
    let control = NatsServer::start(default_version(), ServerConfig::default().jetstream());
    let url = control.client_url();
    let (_server_agent, _server) = AgentBuilder::new("fl-srv", "lon").control(&url).server(
        default_version(),
        ServerConfig::default().server_name("fl-srv"),
    );
    let doomed = AgentBuilder::new("fl-doomed", "ams")
        .control(&url)
        .arg("--role")
        .arg("client")
        .spawn(&["sleep", "60"]);

    let rows = wait_for("both agents live with the server's version", T, || async {
        let rows = fleet(&url);
        let live = rows.iter().filter(|r| r["liveness"] == "live").count();
        let server = rows.iter().find(|r| r["id"] == "fl-srv")?;
        (live == 2 && server["version"] == default_version()).then_some(rows)
    })
    .await;
    let server = rows.iter().find(|r| r["id"] == "fl-srv").unwrap();
    assert_eq!(server["region"], "lon");
    assert_eq!(server["role"], "server");
    assert_eq!(server["state"], "running");

    drop(doomed);
    wait_for("the killed agent shows as stale", T, || async {
        let rows = fleet(&url);
        (liveness_of(&rows, "fl-doomed").as_deref() == Some("stale")).then_some(())
    })
    .await;
    let rows = wait_for("then as lost", T, || async {
        let rows = fleet(&url);
        (liveness_of(&rows, "fl-doomed").as_deref() == Some("lost")).then_some(rows)
    })
    .await;
    assert_eq!(liveness_of(&rows, "fl-srv").as_deref(), Some("live"));

    let text = String::from_utf8_lossy(&geolb(&url, &["fleet", "ls"]).stdout).to_string();
    assert!(
        text.lines().next().unwrap_or_default().contains("LIVENESS"),
        "{text}"
    );
    assert!(
        text.contains("fl-doomed") && text.contains("lost"),
        "{text}"
    );
}

#[tokio::test]
async fn lists_agents_from_the_telemetry_stream_once_it_replaced_the_heartbeat_stream() {
    let control = NatsServer::start(default_version(), ServerConfig::default().jetstream());
    let url = control.client_url();
    let _agent = AgentBuilder::new("fl-tel", "lon")
        .control(&url)
        .arg("--role")
        .arg("client")
        .spawn(&["sleep", "60"]);
    let live = || async {
        let rows = fleet(&url);
        (liveness_of(&rows, "fl-tel").as_deref() == Some("live")).then_some(())
    };
    wait_for("the agent listed from GEOLB_HEARTBEATS", T, live).await;
    let client = async_nats::connect(&url).await.unwrap();
    let js = async_nats::jetstream::new(client.clone());
    assert!(js.get_stream("GEOLB_HEARTBEATS").await.is_ok());

    let coordinator = geolb::Control::from_client(client, url.clone());
    let limits = geolb::archive::stream::StreamLimits::default();
    geolb::archive::stream::ensure(&coordinator, limits, None)
        .await
        .unwrap();
    assert!(js.get_stream("GEOLB_HEARTBEATS").await.is_err(), "replaced");
    wait_for("the agent listed from GEOLB_TELEMETRY", T, live).await;
    assert!(
        js.get_stream("GEOLB_HEARTBEATS").await.is_err(),
        "fleet ls reads the telemetry stream and makes no other"
    );
    let telemetry = js.get_stream("GEOLB_TELEMETRY").await.unwrap();
    wait_for("every heartbeat kept, not only the last", T, || {
        let mut telemetry = telemetry.clone();
        async move { (telemetry.info().await.ok()?.state.messages >= 3).then_some(()) }
    })
    .await;
}
