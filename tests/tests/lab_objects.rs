//! The lab with what the back channel delivers: `clients.payload` names a
//! real file (stored on the lab's control plane at `lab up`, read by every
//! client as `obj:NAME`), and a rolling upgrade of all 9 servers to a
//! nats-server put with `geolb binary put` (`--to obj:NAME`), in processes
//! and in containers (skipped by name without a Docker engine or the images;
//! a failure under `GEOLB_REQUIRE_DOCKER=1`).

use futures::StreamExt;
use geolb_tests::docker::{available, CLIENT_IMAGE, SERVER_IMAGE};
use geolb_tests::lab_dir::{assert_servers, stderr, LabDir};
use geolb_tests::ports::LAB_PORTS;
use geolb_tests::{nats_server_bin, upgrade_version, with_timeout};
use std::time::Duration;

/// A page of distinct lines, longer than any message.
fn page() -> Vec<u8> {
    (0..500)
        .flat_map(|i| format!("<li>item {i}</li>\n").into_bytes())
        .collect()
}

/// Brings the default lab up with the page as payload, puts nats-server
/// 2.14.6 as `nats-next`, and upgrades every server to it.
fn upgrade_to_an_object(lab: &LabDir, ports_base: u16, docker: bool) {
    let page_path = lab.0.join("page.html");
    std::fs::write(&page_path, page()).unwrap();
    let config = lab.config(&format!(
        "ports_base = {ports_base}\n[clients]\npayload = {:?}\n",
        page_path.display().to_string()
    ));
    let mut up = vec!["lab", "up", "--config", &config];
    if docker {
        up.push("--docker");
    }
    let run = lab.geolb(&up);
    assert!(run.status.success(), "lab up: {}", stderr(&run));
    let data = lab.json(&["data", "ls", "--json"]);
    assert_eq!(data[0]["name"], "page.html", "{data}");
    assert_eq!(data[0]["size"], page().len());

    let bin = nats_server_bin(upgrade_version()).display().to_string();
    let put = lab.geolb(&["binary", "put", &bin, "--name", "nats-next"]);
    assert!(put.status.success(), "binary put: {}", stderr(&put));
    // What is tested is the stored binary; how fast the upgrade is belongs to
    // the bench (group lab): a loaded machine gets time.
    let report = lab.scenario(
        "rolling-upgrade",
        &["--to", "obj:nats-next", "--max-duration", "180s"],
    );
    let servers = report["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 9);
    for s in servers {
        assert_eq!(s["version_after"], upgrade_version(), "{s}");
    }
    assert_servers(
        &lab.json(&["lab", "status", "--json"]),
        9,
        upgrade_version(),
    );
}

#[test]
fn the_process_lab_carries_a_file_and_upgrades_to_a_stored_binary() {
    let lab = LabDir::new("objects");
    upgrade_to_an_object(&lab, LAB_PORTS.start + 200, false);
    // Every agent fetched the binary into its own folder.
    let objects = lab.0.join("lab").join("objects");
    let fetched = geolb_tests::objects::files_under(&objects);
    assert_eq!(fetched.len(), 9, "{fetched:?}");

    // The clients' messages carry the page after their header line.
    let status = lab.json(&["lab", "status", "--json"]);
    let url = status["servers"][0]["client_url"]
        .as_str()
        .unwrap()
        .to_string();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let listener = async_nats::connect(url).await.unwrap();
        let mut traffic = listener.subscribe("geolb.traffic.>").await.unwrap();
        let page = page();
        let twice = [page.clone(), page].concat();
        for _ in 0..5 {
            let message = with_timeout(Duration::from_secs(20), traffic.next())
                .await
                .expect("traffic");
            let line = message.payload.iter().position(|&b| b == b'\n').unwrap() + 1;
            let body = &message.payload[line..];
            assert!(!body.is_empty());
            assert!(
                twice.windows(body.len()).any(|w| w == body),
                "a piece of the page: {:?}",
                String::from_utf8_lossy(body)
            );
        }
    });
}

#[test]
fn the_container_lab_upgrades_to_a_stored_binary() {
    let name = "the_container_lab_upgrades_to_a_stored_binary";
    if available(name, &[SERVER_IMAGE, CLIENT_IMAGE]).is_none() {
        return;
    }
    // Every client container started with its payload read over the back
    // channel (`lab up` waits for every client to report).
    let lab = LabDir::new("objects-docker");
    upgrade_to_an_object(&lab, LAB_PORTS.start + 600, true);
}
