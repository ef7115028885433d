//! Scenarios on any fleet, as benchmarks: the same `dc-outage` (kill and
//! partition) on a fleet started by hand (`HandFleet`: syd and sin, 90 ms
//! apart, partitions through the agents' front links) and on the default
//! lab, in one run, failover p99 and landed share side by side; and what a
//! front link costs (the extra hop), NATS PING round trips through it
//! against the server's own port.

use super::report::Report;
use geolb_tests::hand_fleet::{HandFleet, HandSpec};
use geolb_tests::tools::release_bin;
use serde_json::Value;
use std::time::{Duration, Instant};

/// Runs one scenario on the hand-started fleet; its report.
fn scenario(fleet: &HandFleet, dir: &std::path::Path, args: &[&str]) -> anyhow::Result<Value> {
    let file = dir.join(format!("fleet-{}.json", fastrand::u32(..)));
    let mut all = vec![
        "scenario",
        "run",
        "--report",
        file.to_str().unwrap_or_default(),
    ];
    all.extend_from_slice(args);
    println!("  geolb --control ... scenario run {}", args.join(" "));
    let out = fleet.geolb(&all);
    let text = std::fs::read(&file).map_err(|e| {
        anyhow::anyhow!("no report ({e}): {}", String::from_utf8_lossy(&out.stderr))
    })?;
    let report: Value = serde_json::from_slice(&text)?;
    for reason in report["reasons"].as_array().into_iter().flatten() {
        println!("    missed: {}", reason.as_str().unwrap_or_default());
    }
    Ok(report)
}

fn figure(report: &Value, path: &[&str]) -> f64 {
    let mut v = &report["summary"]["by_strategy"]["rtt"];
    for key in path {
        v = &v[*key];
    }
    v.as_f64().unwrap_or(f64::NAN)
}

/// The hand-started fleet's figures, and the front link's cost.
pub async fn run(report: &mut Report) -> anyhow::Result<()> {
    let spec = HandSpec {
        agent: release_bin("geolb-agent").map_err(anyhow::Error::msg)?,
        geolb: release_bin("geolb").map_err(anyhow::Error::msg)?,
        clients: 6,
        ..HandSpec::default()
    };
    let rtt_ms = spec.rtt.as_secs_f64() * 1000.0;
    let started = Instant::now();
    let fleet = HandFleet::start(spec).await;
    println!(
        "  hand-started fleet up in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let dir = std::env::temp_dir().join(format!("geolb-bench-fleet-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    let kill = scenario(
        &fleet,
        &dir,
        &[
            "dc-outage",
            "--region",
            "syd",
            "--mode",
            "kill",
            "--duration",
            "5s",
        ],
    )?;
    report.add(
        "fleet_kill_gap_p99_rtt_ms",
        figure(&kill, &["failover_gap_ms", "p99"]),
        "ms",
        Some(3.0 * rtt_ms + 50.0),
        "hand-started fleet, syd SIGKILLed (next region 90 ms away)",
    );
    report.add_at_least(
        "fleet_kill_landed_rtt_pct",
        figure(&kill, &["landed_expected_pct"]),
        "%",
        Some(99.0),
        "hand-started fleet, after the kill",
    );
    let cut = scenario(
        &fleet,
        &dir,
        &[
            "dc-outage",
            "--region",
            "syd",
            "--mode",
            "partition",
            "--duration",
            "5s",
        ],
    )?;
    report.add(
        "fleet_partition_gap_p99_rtt_ms",
        figure(&cut, &["failover_gap_ms", "p99"]),
        "ms",
        Some(1000.0),
        "hand-started fleet, syd's front links cut",
    );
    report.add_at_least(
        "fleet_partition_landed_rtt_pct",
        figure(&cut, &["landed_expected_pct"]),
        "%",
        Some(99.0),
        "hand-started fleet, after the partition",
    );
    drop(fleet);
    let _ = std::fs::remove_dir_all(&dir);

    let (direct, front) = front_hop().await?;
    println!("  PING round trip: direct {direct:.3} ms, through a front link {front:.3} ms");
    report.add(
        "fleet_front_hop_extra_us",
        (front - direct) * 1000.0,
        "us",
        None,
        format!("median NATS PING through a front link {front:.3} ms vs the server's own port {direct:.3} ms"),
    );
    Ok(())
}

/// Median PING round trips (ms) to one agent's server: direct, and through its front link.
async fn front_hop() -> anyhow::Result<(f64, f64)> {
    use geolb_tests::agent::AgentBuilder;
    use geolb_tests::{default_version, free_port, ServerConfig};
    let mut config = ServerConfig::default().server_name("hop-1");
    config.resolve_ports();
    let (inner, front) = (config.port, free_port());
    let (_agent, _server) = AgentBuilder::new("hop-1", "hop")
        .bin(&release_bin("geolb-agent").map_err(anyhow::Error::msg)?)
        .arg("--front")
        .arg(format!("client=127.0.0.1:{front}->127.0.0.1:{inner}"))
        .quiet()
        .server(default_version(), config);
    let direct = median_ping(inner).await?;
    let through = median_ping(front).await?;
    Ok((direct, through))
}

async fn median_ping(port: u16) -> anyhow::Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let client = loop {
        match async_nats::connect(format!("nats://127.0.0.1:{port}")).await {
            Ok(client) => break client,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => anyhow::bail!("cannot connect to 127.0.0.1:{port}: {e}"),
        }
    };
    let mut samples = Vec::new();
    for _ in 0..500 {
        let began = Instant::now();
        // A request to nobody costs one round trip (the no-responders status).
        let _ = client.request("bench.hop", "".into()).await;
        samples.push(began.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    Ok(samples[samples.len() / 2])
}
