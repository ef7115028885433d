//! `geolb lab up --docker`: the default lab (three regions of three
//! servers) as containers, the same scenarios through the same back
//! channel, and `lab down` removing every container and network of the lab
//! and nothing else. Skipped by name without a Docker engine or the images
//! (`make images`); a failure under `GEOLB_REQUIRE_DOCKER=1`.

use geolb_tests::docker::{self, available, docker, CLIENT_IMAGE, SERVER_IMAGE};
use geolb_tests::lab_dir::{assert_servers, stderr, LabDir};
use geolb_tests::ports::LAB_PORTS;
use serde_json::Value;

/// The label `lab up --docker` puts on everything it creates.
const OWNER_LABEL: &str = "io.nats-geolb.owner";

fn lab_config(ports_base: u16) -> String {
    format!("ports_base = {ports_base}\n")
}

fn rtt_clients(report: &Value) -> Vec<&Value> {
    report["clients"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["strategy"] == "rtt")
        .collect()
}

fn ours(kind: &str, owner: &str) -> Vec<String> {
    docker::list(kind, &format!("{OWNER_LABEL}={owner}"))
}

#[test]
fn the_lab_runs_in_containers_and_leaves_nothing() {
    if available(
        "the_lab_runs_in_containers_and_leaves_nothing",
        &[SERVER_IMAGE, CLIENT_IMAGE],
    )
    .is_none()
    {
        return;
    }
    // Something that is not the lab's: `lab down` must leave it alone.
    let bystanders = docker::Cleanup::new("lab-docker-bystander");
    let mut args = vec!["network".to_string(), "create".to_string()];
    args.extend(bystanders.label());
    args.push(bystanders.name("net"));
    docker(&args.iter().map(String::as_str).collect::<Vec<_>>()).expect("bystander network");

    let lab = LabDir::new("docker");
    let config = lab.config(&lab_config(LAB_PORTS.start + 1500));
    let up = lab.geolb(&["lab", "up", "--docker", "--config", &config]);
    assert!(up.status.success(), "lab up --docker: {}", stderr(&up));
    let owner = format!(
        "lab:{}",
        lab.0.join("lab").canonicalize().unwrap().display()
    );
    assert_eq!(
        ours("ps", &owner).len(),
        2 + 9 + 6,
        "control, wan, 9 servers, 6 client groups"
    );
    assert_eq!(ours("network", &owner).len(), 4, "control and 3 regions");

    let status = lab.json(&["lab", "status", "--json"]);
    assert_servers(&status, 9, geolb_tests::default_version());
    assert_eq!(status["processes"], "17/17");
    let clients = status["clients"].as_array().unwrap();
    for c in clients.iter().filter(|c| c["strategy"] == "rtt") {
        assert_eq!(c["server_region"], c["region"], "rtt elects at home: {c}");
    }

    // Region outage by killing lon's servers: lon's rtt clients land in ams
    // (the nearest other region) with one gap each. How short the gaps are
    // is `make bench`'s (group lab_docker); here a generous limit only.
    let outage = lab.scenario(
        "dc-outage",
        &[
            "--region",
            "lon",
            "--mode",
            "kill",
            "--duration",
            "3s",
            "--max-gap",
            "1s",
        ],
    );
    for c in rtt_clients(&outage)
        .into_iter()
        .filter(|c| c["region"] == "lon")
    {
        assert_eq!(c["landed_region"], "ams", "{c}");
        assert_eq!(c["gaps_ms"].as_array().unwrap().len(), 1, "{c}");
    }
    assert_eq!(
        outage["summary"]["by_strategy"]["rtt"]["landed_expected_pct"],
        100.0
    );

    // The same outage from a second, independent fault source: the engine
    // kills lon's server containers (agents included) and starts them again.
    let engine = lab.scenario(
        "dc-outage",
        &[
            "--region",
            "lon",
            "--mode",
            "kill",
            "--fault",
            "engine",
            "--duration",
            "3s",
        ],
    );
    assert_eq!(
        engine["summary"]["by_strategy"]["rtt"]["landed_expected_pct"],
        100.0
    );
    assert!(
        engine["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["detail"].as_str().unwrap_or("").contains("docker kill")),
        "{}",
        engine["timeline"]
    );

    // Rolling upgrade, one server per region at a time, inside the
    // containers (the image carries both versions): no rtt client loses
    // a message from another rtt client of its region.
    let upgrade = lab.scenario("rolling-upgrade", &["--to", "2.14.6"]);
    let messages = &upgrade["summary"]["by_strategy"]["rtt"]["messages"];
    let in_region = messages["lost_same_strategy"].as_u64().unwrap()
        - messages["lost_same_strategy_cross_region"]
            .as_u64()
            .unwrap();
    assert_eq!(in_region, 0, "{messages}");
    assert_servers(&lab.json(&["lab", "status", "--json"]), 9, "2.14.6");

    let down = lab.geolb(&["lab", "down", "--docker"]);
    assert!(down.status.success(), "lab down: {}", stderr(&down));
    assert!(
        ours("ps", &owner).is_empty(),
        "no container of the lab left"
    );
    assert!(
        ours("network", &owner).is_empty(),
        "no network of the lab left"
    );
    assert!(lab.0.join("lab/logs/lon-1.log").is_file(), "logs kept");
    assert!(
        docker(&["network", "inspect", &bystanders.name("net")]).is_ok(),
        "the bystander network is still there"
    );
    let again = lab.geolb(&["lab", "down", "--docker"]);
    assert!(again.status.success(), "{}", stderr(&again));
}

#[test]
fn without_an_engine_docker_says_so_in_one_line() {
    let lab = LabDir::new("no-engine");
    let up = lab.geolb_with(
        &["lab", "up", "--docker"],
        &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")],
    );
    assert!(!up.status.success());
    let text = stderr(&up);
    assert_eq!(text.trim().lines().count(), 1, "{text}");
    assert!(text.contains("no Docker engine"), "{text}");
    assert!(
        !lab.0.join("lab/lab.json").exists(),
        "nothing was started or recorded"
    );
}

#[test]
fn a_missing_image_names_the_make_target() {
    if available("a_missing_image_names_the_make_target", &[CLIENT_IMAGE]).is_none() {
        return;
    }
    let lab = LabDir::new("no-image");
    let up = lab.geolb(&[
        "lab",
        "up",
        "--docker",
        "--server-image",
        "geolb-server:no-such-tag",
    ]);
    assert!(!up.status.success());
    let text = stderr(&up);
    assert_eq!(text.trim().lines().count(), 1, "{text}");
    assert!(
        text.contains("geolb-server:no-such-tag") && text.contains("make images"),
        "{text}"
    );
    assert!(!lab.0.join("lab/lab.json").exists(), "nothing was started");
}
