//! Every verb end to end through `geolb cmd`, against a nats-server (or a
//! client workload) supervised by a real agent on a real control plane.

use geolb_tests::agent::{geolb, geolb_json, AgentBuilder, AgentServer};
use geolb_tests::{default_version, wait_for, NatsServer, ProcessGuard, ServerConfig};
use serde_json::Value;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn control_plane() -> NatsServer {
    NatsServer::start(default_version(), ServerConfig::default().jetstream())
}

/// Runs `geolb cmd ...` and returns (exit code, the first target's JSON row).
fn cmd(control: &str, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["cmd"];
    all.extend_from_slice(args);
    let (output, rows) = geolb_json(control, &all);
    (output.status.code().unwrap_or(-1), rows[0].clone())
}

fn state(row: &Value) -> String {
    row["reply"]["state"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn pid(row: &Value) -> Option<u64> {
    row["reply"]["state"]["replicas"][0]["pid"].as_u64()
}

fn error_kind(row: &Value) -> String {
    let error = &row["reply"]["error"];
    let kind = error["kind"].as_str().or(row["error"]["kind"].as_str());
    kind.unwrap_or_default().to_string()
}

async fn server_agent(control: &NatsServer, id: &str) -> (ProcessGuard, AgentServer) {
    let (agent, server) = AgentBuilder::new(id, "lon")
        .control(&control.client_url())
        .server(default_version(), ServerConfig::default().server_name(id));
    let url = control.client_url();
    wait_for("the agent runs its server", T, || {
        let url = url.clone();
        async move {
            let (code, row) = cmd(&url, &["status", id]);
            (code == 0 && state(&row) == "running").then_some(())
        }
    })
    .await;
    (agent, server)
}

fn healthz(server: &AgentServer) -> u16 {
    geolb_tests::http::http_get(&format!("{}/healthz", server.monitor_url()))
        .map(|(status, _)| status)
        .unwrap_or(0)
}

#[tokio::test]
async fn stop_start_restart_and_status() {
    let control = control_plane();
    let url = control.client_url();
    let (_agent, server) = server_agent(&control, "v-1").await;
    // `running` means spawned; the server answers /healthz a moment later.
    wait_for("healthz", T, || async {
        (healthz(&server) == 200).then_some(())
    })
    .await;

    for mode in ["ldm", "term", "kill"] {
        let (code, row) = cmd(&url, &["stop", "v-1", "--mode", mode]);
        assert_eq!(code, 0, "stop --mode {mode}: {row}");
        assert_eq!(state(&row), "stopped", "stop --mode {mode}");
        assert_eq!(
            healthz(&server),
            0,
            "the server is down after stop --mode {mode}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_, row) = cmd(&url, &["status", "v-1"]);
        assert_eq!(state(&row), "stopped", "a stopped child stays stopped");

        let (code, row) = cmd(&url, &["start", "v-1"]);
        assert_eq!(code, 0, "start: {row}");
        assert_eq!(state(&row), "running");
        wait_for("healthz after start", T, || async {
            (healthz(&server) == 200).then_some(())
        })
        .await;
    }

    let (_, before) = cmd(&url, &["status", "v-1"]);
    let (code, row) = cmd(&url, &["restart", "v-1", "--mode", "term"]);
    assert_eq!(code, 0, "restart: {row}");
    assert_eq!(state(&row), "running");
    assert_ne!(pid(&row), pid(&before), "restart makes a new process");
}

#[tokio::test]
async fn flap_in_each_mode() {
    let control = control_plane();
    let url = control.client_url();
    let (_agent, server) = server_agent(&control, "v-2").await;

    for mode in ["stop", "kill", "pause"] {
        let (code, row) = cmd(
            &url,
            &[
                "flap", "v-2", "--mode", mode, "--down", "600ms", "--up", "600ms", "--cycles", "2",
            ],
        );
        assert_eq!(code, 0, "flap --mode {mode}: {row}");
        let down = if mode == "pause" { "paused" } else { "stopped" };
        wait_for(&format!("flap {mode} takes it down"), T, || {
            let url = url.clone();
            async move { (state(&cmd(&url, &["status", "v-2"]).1) == down).then_some(()) }
        })
        .await;
        if mode == "pause" {
            let (_, row) = cmd(&url, &["status", "v-2"]);
            let pid = pid(&row).expect("a paused server keeps its pid");
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
            let process_state = stat
                .rsplit(')')
                .next()
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap();
            assert_eq!(process_state, "T", "SIGSTOPped");
            let probe = geolb_tests::http::http_get_within(
                &format!("{}/healthz", server.monitor_url()),
                Duration::from_millis(150),
            );
            assert!(probe.is_err(), "a paused server does not answer: {probe:?}");
        }
        wait_for(&format!("flap {mode} ends with the child up"), T, || {
            let url = url.clone();
            async move {
                let (_, row) = cmd(&url, &["status", "v-2"]);
                (row["reply"]["state"]["flap"].is_null() && state(&row) == "running").then_some(())
            }
        })
        .await;
        wait_for("healthz after the flap", T, || async {
            (healthz(&server) == 200).then_some(())
        })
        .await;
    }

    // A flap ended early by `flap --cancel` and by `start` leaves the child running.
    for how in [&["flap", "v-2", "--cancel"][..], &["start", "v-2"][..]] {
        let (code, _) = cmd(
            &url,
            &[
                "flap", "v-2", "--mode", "pause", "--down", "5s", "--up", "5s",
            ],
        );
        assert_eq!(code, 0);
        let (code, row) = cmd(&url, how);
        assert_eq!(code, 0, "{how:?}: {row}");
        assert_eq!(state(&row), "running", "{how:?}");
        assert!(row["reply"]["state"]["flap"].is_null());
        wait_for("healthz after cancel", T, || async {
            (healthz(&server) == 200).then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn scale_a_client_agent_up_and_down() {
    let control = control_plane();
    let url = control.client_url();
    let _agent = AgentBuilder::new("v-3", "lon")
        .control(&url)
        .arg("--role")
        .arg("client")
        .spawn(&["sh", "-c", "exec sleep 60"]);
    let running = |n: usize| {
        let url = url.clone();
        move || {
            let url = url.clone();
            async move {
                let (_, row) = cmd(&url, &["status", "v-3"]);
                let replicas = row["reply"]["state"]["replicas"].as_array()?.clone();
                let up = replicas.iter().filter(|r| r["state"] == "running").count();
                (replicas.len() == n && up == n).then_some(replicas)
            }
        }
    };
    wait_for("one replica", T, running(1)).await;

    let (code, row) = cmd(&url, &["scale", "v-3", "--replicas", "3"]);
    assert_eq!(code, 0, "{row}");
    let replicas = wait_for("three replicas", T, running(3)).await;
    let indices: Vec<u64> = replicas
        .iter()
        .map(|r| r["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indices, vec![0, 1, 2]);

    let (code, row) = cmd(&url, &["scale", "v-3", "--replicas", "1"]);
    assert_eq!(code, 0, "{row}");
    let replicas = wait_for("back to one", T, running(1)).await;
    assert_eq!(
        replicas[0]["index"], 0,
        "the highest replicas are the ones stopped"
    );
}

#[tokio::test]
async fn selectors_fan_out_and_report_each_target() {
    let control = control_plane();
    let url = control.client_url();
    let _a = AgentBuilder::new("sel-a", "lon")
        .control(&url)
        .arg("--role")
        .arg("client")
        .spawn(&["sleep", "60"]);
    let _b = AgentBuilder::new("sel-b", "ams")
        .control(&url)
        .arg("--role")
        .arg("client")
        .spawn(&["sleep", "60"]);
    wait_for("both agents in the fleet", T, || {
        let url = url.clone();
        async move {
            let (_, rows) = geolb_json(&url, &["fleet", "ls"]);
            (rows.as_array()?.len() == 2).then_some(())
        }
    })
    .await;

    let (output, rows) = geolb_json(&url, &["cmd", "status", "all"]);
    assert!(output.status.success());
    assert_eq!(rows.as_array().unwrap().len(), 2);
    let (_, rows) = geolb_json(&url, &["cmd", "status", "region=ams"]);
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["target"], "sel-b");

    let output = geolb(&url, &["cmd", "status", "region=nowhere"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "nothing matched is a failure"
    );
    let output = geolb(&url, &["cmd", "status", "no-such-agent"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "an absent agent is a failure"
    );
    let (code, row) = cmd(&url, &["start", "sel-a"]);
    assert_eq!(code, 1, "start while running fails");
    assert_eq!(error_kind(&row), "conflict");
}
