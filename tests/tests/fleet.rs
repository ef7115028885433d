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
