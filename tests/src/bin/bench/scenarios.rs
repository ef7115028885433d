//! The lab's scenarios as benchmarks: the default lab (release binaries),
//! `rtt` and `random` clients side by side, every scenario run by `geolb
//! scenario run` and its report's figures recorded against the targets.

use super::report::Report;
use anyhow::Context as _;
use geolb_tests::ports::LAB_PORTS;
use geolb_tests::tools::{release_bin, tools_dir};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// A lab under a temporary directory, brought down on drop.
pub struct BenchLab {
    geolb: PathBuf,
    dir: PathBuf,
    /// Carried by every process of the lab.
    marker: geolb_tests::procfs::Marker,
}

impl BenchLab {
    /// The default lab (with `extra` configuration, in containers with
    /// `docker`), brought up with the release binaries.
    pub fn up(name: &str, extra: &str, docker: bool) -> anyhow::Result<BenchLab> {
        let dir = std::env::temp_dir().join(format!("geolb-bench-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let lab = BenchLab {
            geolb: release_bin("geolb").map_err(anyhow::Error::msg)?,
            dir,
            marker: geolb_tests::procfs::Marker::new(name),
        };
        let config = lab.dir.join("lab.toml");
        let ports = format!("ports_base = {}\n{extra}", LAB_PORTS.start + 500);
        std::fs::write(&config, ports)?;
        let mut up = vec!["lab", "up", "--config", config.to_str().unwrap_or_default()];
        if docker {
            up.push("--docker");
        }
        let up = lab.geolb(&up)?;
        anyhow::ensure!(
            up.status.success(),
            "lab up: {}",
            String::from_utf8_lossy(&up.stderr)
        );
        Ok(lab)
    }

    fn geolb(&self, args: &[&str]) -> anyhow::Result<std::process::Output> {
        Command::new(&self.geolb)
            .args(args)
            .env("GEOLB_LAB_DIR", self.dir.join("lab"))
            .env("GEOLB_SERVERS_DIR", tools_dir())
            .env(geolb_tests::procfs::MARK_VAR, self.marker.value())
            .output()
            .with_context(|| format!("run geolb {args:?}"))
    }

    /// The lab's live processes (those started as processes, not containers).
    pub fn processes(&self) -> Vec<geolb_tests::procfs::Stat> {
        self.marker.live()
    }

    /// Runs a scenario and returns its report (a missed target is not an error).
    pub fn scenario(&self, name: &str, args: &[&str]) -> anyhow::Result<Value> {
        let file = self.dir.join(format!("{name}.json"));
        let mut all = vec![
            "scenario",
            "run",
            "--report",
            file.to_str().unwrap_or_default(),
            name,
        ];
        all.extend_from_slice(args);
        println!("  geolb scenario run {name} {}", args.join(" "));
        let output = self.geolb(&all)?;
        let text = std::fs::read(&file).with_context(|| {
            format!(
                "{name} wrote no report: {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
        let report: Value = serde_json::from_slice(&text)?;
        for reason in report["reasons"].as_array().into_iter().flatten() {
            println!("    missed: {}", reason.as_str().unwrap_or_default());
        }
        Ok(report)
    }
}

impl Drop for BenchLab {
    fn drop(&mut self) {
        let _ = self.geolb(&["lab", "down"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A figure of `strategy`'s summary in `report`.
pub fn figure(report: &Value, strategy: &str, path: &[&str]) -> f64 {
    let mut v = &report["summary"]["by_strategy"][strategy];
    for key in path {
        v = &v[*key];
    }
    v.as_f64().unwrap_or(f64::NAN)
}

/// Runs the four scenarios on the default lab: processes, or with
/// `docker` containers (`lab up --docker`; figures named `lab_docker_*`).
pub async fn run(report: &mut Report, docker: bool) -> anyhow::Result<()> {
    let prefix = if docker { "lab_docker" } else { "lab" };
    let started = std::time::Instant::now();
    let lab = BenchLab::up(prefix, "", docker)?;
    let up_s = started.elapsed().as_secs_f64();
    println!("  lab up in {up_s:.1} s");
    report.add(
        &format!("{prefix}_up_s"),
        up_s,
        "s",
        None,
        "lab up, until every server and client is ready",
    );

    let kill = lab.scenario(
        "dc-outage",
        &["--region", "lon", "--mode", "kill", "--duration", "5s"],
    )?;
    let limit = 3.0 * 8.0 + 50.0;
    for (strategy, target) in [("rtt", Some(limit)), ("random", None)] {
        let p99 = figure(&kill, strategy, &["failover_gap_ms", "p99"]);
        report.add(
            &format!("{prefix}_kill_gap_p99_{strategy}_ms"),
            p99,
            "ms",
            target,
            "dc-outage lon, SIGKILL",
        );
    }
    let landed = figure(&kill, "rtt", &["landed_expected_pct"]);
    report.add_at_least(
        &format!("{prefix}_kill_landed_rtt_pct"),
        landed,
        "%",
        Some(99.0),
        "every rtt client, after the kill",
    );

    let cut = lab.scenario(
        "dc-outage",
        &["--region", "lon", "--mode", "partition", "--duration", "5s"],
    )?;
    for (strategy, target) in [("rtt", Some(1000.0)), ("random", None)] {
        let p99 = figure(&cut, strategy, &["failover_gap_ms", "p99"]);
        let moved = figure(&cut, strategy, &["clients_with_gaps"]);
        report.add(
            &format!("{prefix}_partition_gap_p99_{strategy}_ms"),
            p99,
            "ms",
            target,
            format!("dc-outage lon, links cut; {moved} clients moved within the 5 s outage"),
        );
    }

    let upgrade = lab.scenario(
        "rolling-upgrade",
        &["--to", "2.14.6", "--strategy", "one-per-region"],
    )?;
    let duration = upgrade["duration_ms"].as_f64().unwrap_or(f64::NAN);
    report.add(
        &format!("{prefix}_upgrade_duration_ms"),
        duration,
        "ms",
        Some(30_000.0),
        "9 servers, one per region at a time",
    );
    let lost = figure(&upgrade, "rtt", &["messages", "lost_same_strategy"]);
    let across = figure(
        &upgrade,
        "rtt",
        &["messages", "lost_same_strategy_cross_region"],
    );
    report.add(
        &format!("{prefix}_upgrade_rtt_lost_in_region"),
        lost - across,
        "msgs",
        Some(0.0),
        "rtt->rtt within a region",
    );
    report.add(
        &format!("{prefix}_upgrade_rtt_lost_across_regions"),
        across,
        "msgs",
        None,
        "rtt->rtt across regions (gateway reconnects)",
    );
    let gap = figure(&upgrade, "rtt", &["failover_gap_ms", "max"]);
    report.add(
        &format!("{prefix}_upgrade_rtt_gap_max_ms"),
        gap,
        "ms",
        Some(100.0),
        "longest rtt client cut-off",
    );

    let flap = lab.scenario(
        "flap",
        &[
            "--region",
            "ams",
            "--servers",
            "1",
            "--mode",
            "pause",
            "--cycles",
            "3",
        ],
    )?;
    let per_client = figure(&flap, "rtt", &["switches_per_client"]);
    report.add(
        &format!("{prefix}_flap_rtt_switches_per_cycle"),
        per_client / 3.0,
        "switches",
        Some(1.0),
        "pause, 3 cycles",
    );

    let scale = lab.scenario("scale", &["--region", "dfw", "--clients", "50"])?;
    let home = at_home(&scale, "dfw");
    report.add_at_least(
        &format!("{prefix}_scale_50_at_home_pct"),
        home,
        "%",
        Some(100.0),
        "dfw scaled to 50 rtt clients",
    );
    Ok(())
}

/// Percent of `region`'s rtt clients that landed at home.
fn at_home(report: &Value, region: &str) -> f64 {
    let clients: Vec<&Value> = report["clients"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["region"] == region && c["strategy"] == "rtt")
        .collect();
    let home = clients
        .iter()
        .filter(|c| c["landed_region"] == region)
        .count();
    100.0 * home as f64 / clients.len().max(1) as f64
}
