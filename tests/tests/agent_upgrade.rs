//! `upgrade` between two real nats-server versions inside a super-cluster
//! (version checked in `/varz`, routes and gateways back before the ack), a
//! missing version refused before anything stops, `--check` asking without
//! changing anything, and an `ldm` stop of a
//! server with connected clients.

use geolb_tests::agent::{geolb_json, AgentBuilder, AgentServer};
use geolb_tests::http::get_json;
use geolb_tests::{
    default_version, free_port, upgrade_version, wait_for, with_timeout, NatsServer, ProcessGuard,
    ServerConfig,
};
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn cmd(control: &str, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["cmd"];
    all.extend_from_slice(args);
    let (output, rows) = geolb_json(control, &all);
    (output.status.code().unwrap_or(-1), rows[0].clone())
}

fn varz(server: &AgentServer) -> Value {
    get_json(&format!("{}/varz", server.monitor_url())).unwrap_or(Value::Null)
}

fn route_peers(server: &AgentServer) -> usize {
    let routez = get_json(&format!("{}/routez", server.monitor_url())).unwrap_or(Value::Null);
    let mut names: Vec<String> = routez["routes"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|r| r["remote_name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.dedup();
    names.len()
}

fn outbound_gateways(server: &AgentServer) -> Vec<String> {
    let gatewayz = get_json(&format!("{}/gatewayz", server.monitor_url())).unwrap_or(Value::Null);
    gatewayz["outbound_gateways"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// lon-1 and lon-2 in cluster lon, ams-1 in cluster ams, joined by gateways, all under agents.
fn super_cluster(control: &str) -> Vec<(ProcessGuard, AgentServer)> {
    let names = ["lon-1", "lon-2", "ams-1"];
    let routes: Vec<u16> = names.iter().map(|_| free_port()).collect();
    let gateways: Vec<u16> = names.iter().map(|_| free_port()).collect();
    let gateway_list = vec![
        (
            "lon".to_string(),
            vec![
                format!("nats://127.0.0.1:{}", gateways[0]),
                format!("nats://127.0.0.1:{}", gateways[1]),
            ],
        ),
        (
            "ams".to_string(),
            vec![format!("nats://127.0.0.1:{}", gateways[2])],
        ),
    ];
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let region = &name[..3];
            let peers: Vec<String> = (0..2)
                .filter(|j| region == "lon" && *j != i)
                .map(|j| format!("nats-route://127.0.0.1:{}", routes[j]))
                .collect();
            let config = ServerConfig::default()
                .server_name(*name)
                .cluster(region, routes[i], peers)
                .gateway(region, gateways[i], gateway_list.clone());
            AgentBuilder::new(name, region)
                .control(control)
                .server(default_version(), config)
        })
        .collect()
}

#[tokio::test]
async fn upgrades_a_server_in_a_super_cluster() {
    let control = NatsServer::start(default_version(), ServerConfig::default().jetstream());
    let url = control.client_url();
    let fleet = super_cluster(&url);
    let lon1 = &fleet[0].1;
    wait_for("the super-cluster forms", T, || async {
        (route_peers(lon1) == 1 && outbound_gateways(lon1) == vec!["ams".to_string()]).then_some(())
    })
    .await;
    assert_eq!(varz(lon1)["version"], default_version());

    let (code, row) = cmd(&url, &["upgrade", "lon-1", "--to", "9.9.9"]);
    assert_eq!(code, 1);
    assert_eq!(row["reply"]["error"]["kind"], "not_installed", "{row}");
    assert_eq!(
        varz(lon1)["version"],
        default_version(),
        "nothing was stopped"
    );

    let (code, row) = cmd(&url, &["upgrade", "lon-1", "--to", "9.9.9", "--check"]);
    assert_eq!(code, 1);
    assert_eq!(row["reply"]["error"]["kind"], "not_installed", "{row}");
    let (code, row) = cmd(
        &url,
        &["upgrade", "lon-1", "--to", upgrade_version(), "--check"],
    );
    assert_eq!(code, 0, "check: {row}");
    assert_eq!(
        row["reply"]["state"]["version"],
        default_version(),
        "a check changes nothing"
    );
    assert_eq!(varz(lon1)["version"], default_version());

    let (code, row) = cmd(&url, &["upgrade", "lon-1", "--to", upgrade_version()]);
    assert_eq!(code, 0, "upgrade: {row}");
    assert_eq!(row["reply"]["state"]["version"], upgrade_version());
    // The ack came only after health, routes and gateways were back: check right away.
    assert_eq!(varz(lon1)["version"], upgrade_version());
    assert_eq!(route_peers(lon1), 1, "the route to lon-2 is back");
    assert_eq!(
        outbound_gateways(lon1),
        vec!["ams".to_string()],
        "the gateway to ams is back"
    );
    let (status, _) =
        geolb_tests::http::http_get(&format!("{}/healthz", lon1.monitor_url())).unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        varz(&fleet[1].1)["version"],
        default_version(),
        "lon-2 is untouched"
    );
}

#[tokio::test]
async fn ldm_stop_drains_connected_clients_and_ends_early_once_they_left() {
    let control = NatsServer::start(default_version(), ServerConfig::default());
    let url = control.client_url();
    let (_agent, server) = AgentBuilder::new("ldm-1", "lon")
        .control(&url)
        .arg("--ldm-grace")
        .arg("50s")
        .server(
            default_version(),
            ServerConfig::default().server_name("ldm-1"),
        );
    wait_for("the agent answers with its server up", T, || {
        let url = url.clone();
        async move {
            let (_, row) = cmd(&url, &["status", "ldm-1"]);
            (row["reply"]["state"]["state"] == "running").then_some(())
        }
    })
    .await;
    wait_for("the server is up", T, || async {
        varz(&server)["version"].as_str().map(|_| ())
    })
    .await;

    let (clients, mut notices) =
        geolb_tests::agent::lame_duck_listeners(&server.client_url(), 3).await;
    wait_for("3 clients connected", T, || async {
        (varz(&server)["connections"] == 3).then_some(())
    })
    .await;

    let control_url = url.clone();
    let stop =
        tokio::task::spawn_blocking(move || cmd(&control_url, &["stop", "ldm-1", "--mode", "ldm"]));
    for _ in 0..3 {
        with_timeout(T, notices.recv())
            .await
            .expect("every client is told lame-duck mode");
    }
    // The clients move elsewhere, as a geo-aware client would.
    drop(clients);
    let (code, row) = with_timeout(T, stop).await.expect("stop task");
    assert_eq!(code, 0, "{row}");
    assert_eq!(row["reply"]["state"]["state"], "stopped");
    let events = row["reply"]["state"]["replicas"][0]["last_exit"].clone();
    assert!(!events.is_null(), "the server exited: {row}");
}
