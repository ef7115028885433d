//! Scenarios on a fleet started by hand (regions `syd` and `sin`, names no
//! default uses; two servers each; geography from WAN links the test owns
//! and never registers), the coordinator given only `--control`: every
//! scenario runs and meets the lab's targets, partitions go through the
//! agents' own front links, a Fly outage through a stand-in flyctl, and
//! every bad input is refused before anything changes.

use geolb_tests::hand_fleet::{HandFleet, HandSpec};
use geolb_tests::lab_dir::stderr;
use geolb_tests::{upgrade_version, with_timeout};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(300);

/// Runs `geolb --control URL scenario run NAME ARGS --report FILE`; its exit code and report.
fn scenario(fleet: &HandFleet, dir: &Path, name: &str, args: &[&str]) -> (i32, Value, String) {
    let file = dir.join(format!("{name}-{}.json", fastrand::u32(..)));
    let mut all = vec!["scenario", "run", "--report", file.to_str().unwrap(), name];
    all.extend(args);
    let run = fleet.geolb(&all);
    let report = std::fs::read(&file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let text = format!("{}\n{}", String::from_utf8_lossy(&run.stdout), stderr(&run));
    (run.status.code().unwrap_or(-1), report, text)
}

fn rtt_clients_of<'a>(report: &'a Value, region: &str) -> Vec<&'a Value> {
    report["clients"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter(|c| c["region"] == region && c["strategy"] == "rtt")
                .collect()
        })
        .unwrap_or_default()
}

fn assert_passed(name: &str, code: i32, report: &Value, text: &str) {
    assert_eq!(code, 0, "{name}: {text}");
    assert_eq!(report["passed"], true, "{name}: {}", report["reasons"]);
    assert_eq!(report["fleet"]["source"], "control", "{}", report["fleet"]);
    assert_eq!(
        report["fleet"]["regions"],
        serde_json::json!(["sin", "syd"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_on_a_fleet_started_by_hand() {
    let mut fleet = with_timeout(T, HandFleet::start(HandSpec::default())).await;
    let dir = tempdir("fleet");

    // Only the agents' own front links are link controls here.
    let links = fleet.geolb(&["fleet", "links", "--json"]);
    let links: Value = serde_json::from_slice(&links.stdout).unwrap();
    assert_eq!(links.as_array().unwrap().len(), 4, "{links}");
    assert!(links
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["link"]["name"].as_str().unwrap().starts_with("front:")));

    let (code, report, text) = scenario(
        &fleet,
        &dir,
        "dc-outage",
        &["--region", "syd", "--mode", "kill", "--duration", "3s"],
    );
    assert_passed("dc-outage kill", code, &report, &text);
    for c in rtt_clients_of(&report, "syd") {
        assert_eq!(c["landed_region"], "sin", "{c}");
        assert_eq!(c["expected_region"], "sin", "{c}");
    }

    let (code, report, text) = scenario(
        &fleet,
        &dir,
        "dc-outage",
        &["--region", "syd", "--mode", "partition", "--duration", "3s"],
    );
    assert_passed("dc-outage partition (front links)", code, &report, &text);
    for c in rtt_clients_of(&report, "syd") {
        assert_eq!(c["landed_region"], "sin", "{c}");
        let gaps = c["gaps_ms"].as_array().unwrap();
        assert!(!gaps.is_empty(), "a partition moved {c}");
    }

    let (code, report, text) = scenario(
        &fleet,
        &dir,
        "rolling-upgrade",
        &["--to", upgrade_version(), "--strategy", "one-per-region"],
    );
    assert_passed("rolling-upgrade", code, &report, &text);
    let servers = report["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 4);
    assert!(
        servers
            .iter()
            .all(|s| s["version_after"] == upgrade_version()),
        "{servers:?}"
    );

    let (code, report, text) = scenario(
        &fleet,
        &dir,
        "flap",
        &[
            "--region",
            "sin",
            "--servers",
            "1",
            "--mode",
            "pause",
            "--down",
            "2s",
            "--up",
            "2s",
            "--cycles",
            "2",
        ],
    );
    assert_passed("flap", code, &report, &text);

    let (code, report, text) = scenario(
        &fleet,
        &dir,
        "scale",
        &["--region", "syd", "--clients", "4"],
    );
    assert_passed("scale", code, &report, &text);
    let syd: Vec<_> = rtt_clients_of(&report, "syd");
    assert_eq!(syd.len(), 4, "{syd:?}");

    // A Fly region outage through a stand-in flyctl that records its
    // arguments and plays the machines' loss and return through the agents.
    let flyctl = stand_in_flyctl(&dir, &fleet);
    let fly = |extra: &[&str]| {
        let mut args = vec![
            "--region",
            "syd",
            "--mode",
            "kill",
            "--fault",
            "fly",
            "--app",
            "geolb-server",
            "--flyctl",
            flyctl.to_str().unwrap(),
            "--duration",
            "2s",
        ];
        args.extend(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let dry: Vec<String> = fly(&["--dry-run"]);
    let dry: Vec<&str> = dry.iter().map(String::as_str).collect();
    let mut all = vec!["scenario", "run", "dc-outage"];
    all.extend(&dry);
    let plan = fleet.geolb(&all);
    assert!(plan.status.success(), "{}", stderr(&plan));
    let plan = String::from_utf8_lossy(&plan.stdout).to_string();
    assert!(
        plan.contains("scale count 0 --region syd --app geolb-server --yes"),
        "{plan}"
    );
    assert!(
        plan.contains("scale count 2 --region syd --app geolb-server --yes"),
        "{plan}"
    );
    assert!(!dir.join("flyctl.log").exists(), "a dry run runs nothing");
    let args = fly(&[]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, report, text) = scenario(&fleet, &dir, "dc-outage", &args);
    let out = std::fs::read_to_string(dir.join("flyctl.out")).unwrap_or_default();
    assert_passed(
        "dc-outage --fault fly",
        code,
        &report,
        &format!("{text}\nflyctl: {out}"),
    );
    let calls = std::fs::read_to_string(dir.join("flyctl.log")).unwrap();
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        [
            "scale count 0 --region syd --app geolb-server --yes",
            "scale count 2 --region syd --app geolb-server --yes"
        ],
        "scaled to 0, then back to the count before"
    );

    bad_input(&fleet, &dir);

    // An agent lost during a run fails it, and the run's fault is undone.
    let url = fleet.control_url();
    let geolb = geolb_tests::geolb_bin();
    let report_file = dir.join("stale.json");
    let run = std::process::Command::new(&geolb)
        .args(["--control", &url, "scenario", "run", "--report"])
        .arg(&report_file)
        .args([
            "dc-outage",
            "--region",
            "syd",
            "--mode",
            "kill",
            "--duration",
            "20s",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut run = geolb_tests::ProcessGuard::new("geolb scenario", run);
    geolb_tests::wait_for("the outage begins", T, || async {
        let fleet_ls = geolb_tests::agent::geolb(&url, &["fleet", "ls", "--json"]);
        let rows: Value = serde_json::from_slice(&fleet_ls.stdout).unwrap_or(Value::Null);
        rows.as_array()
            .is_some_and(|r| {
                r.iter()
                    .any(|a| a["id"] == "syd-1" && a["state"] == "stopped")
            })
            .then_some(())
    })
    .await;
    fleet.kill_agent("sin-2");
    let status = geolb_tests::wait::wait_for_blocking("the run ends", T, || run.try_status());
    assert_eq!(status.code(), Some(1), "the run failed");
    let report: Value = serde_json::from_slice(&std::fs::read(&report_file).unwrap()).unwrap();
    let reasons = report["reasons"].to_string();
    assert!(
        reasons.contains("sin-2") && reasons.contains("stale"),
        "{reasons}"
    );
    assert!(
        report["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["kind"] == "undo" && t["detail"].as_str().unwrap().contains("start syd-1")),
        "the kill was undone: {}",
        report["timeline"]
    );
    let status = fleet.geolb(&["cmd", "status", "region=syd", "--json"]);
    let rows: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["reply"]["state"]["state"] == "running"),
        "syd's servers run again: {rows}"
    );
}

/// Refused before anything changes, each with a clear line.
fn bad_input(fleet: &HandFleet, dir: &Path) {
    let (code, _, text) = scenario(fleet, dir, "flap", &["--region", "lon"]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("\"lon\" has no servers in the fleet; its regions are"),
        "{text}"
    );
    assert!(text.contains("syd") && text.contains("sin"), "{text}");

    let (code, _, text) = scenario(fleet, dir, "rolling-upgrade", &["--to", "9.9.9"]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("no server was touched") && text.contains("syd-1"),
        "{text}"
    );
    let (code, _, text) = scenario(
        fleet,
        dir,
        "dc-outage",
        &["--region", "sin", "--mode", "partition"],
    );
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("needs link control into sin") && text.contains("--front"),
        "{text}"
    );

    let empty = geolb_tests::NatsServer::start(
        geolb_tests::default_version(),
        geolb_tests::ServerConfig::default().jetstream(),
    );
    let run = geolb_tests::agent::geolb(
        &empty.client_url(),
        &["scenario", "run", "dc-outage", "--region", "syd"],
    );
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("no live server agents"),
        "{}",
        stderr(&run)
    );

    let versions = fleet.geolb(&["cmd", "status", "role=server", "--json"]);
    let rows: Value = serde_json::from_slice(&versions.stdout).unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["reply"]["state"]["state"] == "running"),
        "{rows}"
    );
}

/// A `flyctl` that appends its arguments to `<dir>/flyctl.log`; `scale
/// count 0 --region syd` kills syd's servers and `scale count N` starts
/// them, through their agents (machines lost and created again).
fn stand_in_flyctl(dir: &Path, fleet: &HandFleet) -> std::path::PathBuf {
    let path = dir.join("flyctl");
    let script = format!(
        r#"#!/bin/sh
echo "$@" >> {log}
[ "$1 $2 $4 $5" = "scale count --region syd" ] || exit 0
for server in {servers}; do
  case "$3" in
    0) {geolb} --control {url} cmd stop "$server" --mode kill >>{out} 2>&1 || exit 1 ;;
    *) {geolb} --control {url} cmd start "$server" >>{out} 2>&1 || exit 1 ;;
  esac
done
"#,
        log = dir.join("flyctl.log").display(),
        out = dir.join("flyctl.out").display(),
        servers = fleet.servers_of("syd").join(" "),
        geolb = geolb_tests::geolb_bin().display(),
        url = fleet.control_url(),
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("geolb-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
