//! `geolb lab` and `geolb scenario run` end to end on a small lab (two
//! regions, two servers each, the `rtt` clients two to a process): up,
//! status, a region outage with its report stored and listed, a scale in
//! clients, every bad input the lab refuses, and down leaving nothing behind.

use geolb_tests::lab_dir::{assert_servers, stderr, LabDir};
use geolb_tests::ports::LAB_PORTS;
use std::path::Path;

fn small_lab(ports_base: u16) -> String {
    format!(
        r#"regions = ["lon", "ams"]
servers_per_region = 2
ports_base = {ports_base}
[clients]
rtt = 2
random = 1
dns = 0
anycast = 0
per_process = 2
[latency.pairs]
"lon-ams" = "8ms"
"#
    )
}

/// Live processes whose command line mentions `dir`.
fn processes_mentioning(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&needle))
        .collect()
}

#[test]
fn a_lab_runs_a_scenario_and_keeps_its_report() {
    let lab = LabDir::new("run");
    let config = lab.config(&small_lab(LAB_PORTS.start + 1000));

    let up = lab.geolb(&["lab", "up", "--config", &config]);
    assert!(up.status.success(), "lab up: {}", stderr(&up));
    let again = lab.geolb(&["lab", "up", "--config", &config]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already running"),
        "{}",
        stderr(&again)
    );

    let status = lab.json(&["lab", "status", "--json"]);
    assert!(status["control_url"]
        .as_str()
        .unwrap()
        .starts_with("nats://127.0.0.1:"));
    assert_servers(&status, 4, geolb_tests::default_version());
    let identities = status["identities"].as_array().unwrap();
    for name in [
        "coordinator",
        "agent-lon-1",
        "agent-ams-rtt",
        "wan-wan-lon",
        "client-1",
        "signing",
    ] {
        let identity = identities
            .iter()
            .find(|i| i["name"] == name)
            .unwrap_or_else(|| panic!("identity {name}"));
        let seed = identity["seed_path"].as_str().unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(seed).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "{seed} is owner-only");
    }
    let clients = status["clients"].as_array().unwrap();
    assert_eq!(clients.len(), 6, "{clients:?}");
    for c in clients.iter().filter(|c| c["strategy"] == "rtt") {
        assert_eq!(
            c["server_region"], c["region"],
            "an rtt client elects at home: {c}"
        );
    }

    // The geography the clients measure is the configured one (lon-ams 8 ms,
    // 0.5 ms inside a region), within the emulator's and the probes' error.
    let measured = lab.json(&["fleet", "rtt", "--json"]);
    let rtt = |from: &str, to: &str| {
        measured
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["from"] == from && r["to"] == to)
            .and_then(|r| r["rtt_ms"].as_f64())
            .unwrap_or_else(|| panic!("no {from}->{to} in {measured}"))
    };
    for (from, to, configured) in [
        ("lon", "ams", 8.0),
        ("ams", "lon", 8.0),
        ("lon", "lon", 0.5),
    ] {
        let got = rtt(from, to);
        assert!(
            got >= configured && got < configured + 3.0,
            "{from}->{to}: measured {got} ms, configured {configured} ms"
        );
    }
    let links = lab.json(&["fleet", "links", "--json"]);
    assert!(
        links
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["emulator"] == format!("wan-{}", l["link"]["path"]["from"].as_str().unwrap_or("?"))),
        "every lab link is announced with its path, by the emulator of its diallers' region: {links}"
    );

    let report = lab.scenario(
        "dc-outage",
        &["--region", "lon", "--mode", "kill", "--duration", "3s"],
    );
    for key in [
        "scenario",
        "params",
        "started_at",
        "finished_at",
        "passed",
        "reasons",
        "timeline",
        "clients",
        "summary",
    ] {
        assert!(!report[key].is_null(), "report has {key}");
    }
    let rtt = &report["summary"]["by_strategy"]["rtt"];
    for key in [
        "failover_gap_ms",
        "landed_expected_pct",
        "messages",
        "switches_per_client",
    ] {
        assert!(!rtt[key].is_null(), "summary has {key}: {rtt}");
    }
    for c in report["clients"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["region"] == "lon" && c["strategy"] == "rtt")
    {
        assert_eq!(c["landed_region"], "ams", "{c}");
        assert_eq!(
            c["expected_region"], "ams",
            "the region its own probes found nearest is the configured one: {c}"
        );
        assert_eq!(c["gaps_ms"].as_array().unwrap().len(), 1, "{c}");
    }
    let timeline = report["timeline"].as_array().unwrap();
    assert!(
        timeline.iter().any(|t| t["kind"] == "client_moved"),
        "moves are in the timeline"
    );

    let id = report["id"].as_str().unwrap();
    let listed = lab.json(&["report", "ls", "--json"]);
    assert!(
        listed.as_array().unwrap().iter().any(|r| r["id"] == id),
        "{listed}"
    );
    let shown = lab.json(&["report", "show", id, "--json"]);
    assert_eq!(shown["id"], id);

    // Two clients to a process: scale counts clients, in whole processes.
    let odd = lab.geolb(&[
        "scenario",
        "run",
        "scale",
        "--region",
        "ams",
        "--clients",
        "3",
    ]);
    assert_eq!(odd.status.code(), Some(2), "{}", stderr(&odd));
    assert!(stderr(&odd).contains("multiple of 2"), "{}", stderr(&odd));
    let scaled = lab.scenario("scale", &["--region", "ams", "--clients", "4"]);
    assert_eq!(scaled["passed"], true, "{scaled}");
    let ams: Vec<&serde_json::Value> = scaled["clients"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["region"] == "ams" && c["strategy"] == "rtt")
        .collect();
    assert_eq!(ams.len(), 4, "{scaled}");
    assert!(
        ams.iter().all(|c| c["region_at_end"] == "ams"),
        "every client elected at home: {scaled}"
    );

    let bad_region = lab.geolb(&["scenario", "run", "flap", "--region", "nowhere"]);
    assert_eq!(bad_region.status.code(), Some(2), "{}", stderr(&bad_region));
    assert!(
        stderr(&bad_region).contains("not in the lab"),
        "{}",
        stderr(&bad_region)
    );
    let bad_version = lab.geolb(&["scenario", "run", "rolling-upgrade", "--to", "9.9.9"]);
    assert_eq!(
        bad_version.status.code(),
        Some(2),
        "{}",
        stderr(&bad_version)
    );
    assert!(
        stderr(&bad_version).contains("not installed"),
        "{}",
        stderr(&bad_version)
    );
    let status = lab.json(&["lab", "status", "--json"]);
    assert!(
        status["servers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["healthy"] == true),
        "nothing was stopped"
    );

    let down = lab.geolb(&["lab", "down"]);
    assert!(down.status.success(), "{}", stderr(&down));
    assert!(
        processes_mentioning(&lab.0).is_empty(),
        "left behind: {:?}",
        processes_mentioning(&lab.0)
    );
    let no_lab = lab.geolb(&[
        "scenario",
        "run",
        "scale",
        "--region",
        "lon",
        "--clients",
        "3",
    ]);
    assert_eq!(no_lab.status.code(), Some(1));
    assert!(stderr(&no_lab).contains("no lab"), "{}", stderr(&no_lab));
}

#[test]
fn bad_lab_configs_start_nothing() {
    let lab = LabDir::new("bad");
    let cases = [
        ("colour = \"blue\"", "unknown field"),
        ("regions = [\"lon\", \"sgp\"]", "not in regions"),
        ("[latency.pairs]\n\"lon-ams\" = \"-8ms\"", "negative"),
        (
            "[latency.pairs]\n\"lon-ams\" = \"8ms\"\n\"ams-lon\" = \"9ms\"",
            "two round-trip times",
        ),
    ];
    for (text, want) in cases {
        let config = lab.config(text);
        let output = lab.geolb(&["lab", "up", "--config", &config]);
        assert_eq!(output.status.code(), Some(2), "{text}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(want),
            "{text}: {}",
            stderr(&output)
        );
    }
    let config = lab.config(&format!(
        "nats_version = \"9.9.9\"\n{}",
        small_lab(LAB_PORTS.start + 1500)
    ));
    let output = lab.geolb(&["lab", "up", "--config", &config]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("not installed"),
        "{}",
        stderr(&output)
    );
    assert!(
        !lab.0.join("lab").join("lab.json").exists(),
        "nothing was started"
    );
    let init = lab.geolb(&["lab", "init", lab.0.join("fresh.toml").to_str().unwrap()]);
    assert!(init.status.success());
    assert!(std::fs::read_to_string(lab.0.join("fresh.toml"))
        .unwrap()
        .contains("[latency.pairs]"));
}
