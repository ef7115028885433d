//! Benchmark runner (`make bench`): measures the release binaries against their
//! targets, prints every figure and a final table, and writes `target/bench.json`
//! (`{name: {value, unit, target, met, detail}}`).
//!
//! Targets are informative: a missed target is reported, not a failure. The runner
//! exits non-zero only when a measurement could not be taken.
//! `GEOLB_BENCH_QUICK=1` shortens the idle CPU window from 60 s to 10 s.
//! `GEOLB_BENCH_ONLY=<group>[,<group>...]` runs only those groups (`binary_size`,
//! `agent_idle`, `ack_latency`, `fanout_500`, `inject`, `geo`, `dashboard`, `lab`, `fleet`, `strategies`, `clients`, `lab_docker`, `archive`) and merges their figures into
//! an existing `bench.json` instead of replacing it; e.g.
//! `GEOLB_BENCH_ONLY=geo cargo run --release -p geolb-tests --bin bench`.
//!
//! # Layout
//! - [`agents`]: the release binaries, spawning agents, and killing what is left.
//! - [`binaries`]: sizes of the release binaries.
//! - [`agent_idle`]: memory and CPU of one idle agent.
//! - [`latency`]: `status` acks (unsigned, signed) beside a nats-py responder and the raw floor, timed by nats-py.
//! - [`nats_py`]: the nats-py responder and timing client (`make tools` installs nats-py).
//! - [`fanout`]: 500 agents: one `status` to all, and the fleet listing.
//! - [`inject`]: a 16 MB nats-server delivered to 9 and 100 agents over the back channel, and the local-disk peer.
//! - [`dashboard`]: the dashboard following 500 agents, and a 10,000-entry report page against `report show`.
//! - [`geo`]: 90 headless clients in a `GeoLab`: failover gaps, landing, loss, memory.
//! - [`scenarios`]: the four lab scenarios on the default lab, from their reports.
//! - [`clients`]: 12 to 1,020 `rtt` clients packed to a process on the default lab: memory, CPU, probes, failover.
//! - [`compare`]: the four client strategies side by side through a region's outage.
//! - [`fleet`]: dc-outage on a fleet started by hand beside the lab's, and a front link's cost.
//! - [`archive`]: `geolb archive` to the local S3 server: rate, RSS, bytes per message.
//! - [`report`]: figures, the table and `bench.json`.
//! - [`stats`]: nearest-rank percentiles.
//! - [`strategies`]: the GeoDNS's queries per second beside peers, and the anycast router's cost per connection.

mod agent_idle;
mod agents;
mod archive;
mod binaries;
mod clients;
mod compare;
mod dashboard;
mod fanout;
mod fleet;
mod geo;
mod inject;
mod latency;
mod nats_py;
mod report;
mod scenarios;
mod stats;
mod strategies;

use agents::Bench;
use geolb_tests::tools::target_dir;
use report::Report;
use std::process::ExitCode;

fn main() -> ExitCode {
    agents::install_cleanup();
    let quick = std::env::var("GEOLB_BENCH_QUICK").is_ok_and(|v| v == "1");
    let only = Only::from_env();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut report = Report::default();
    let interrupted = runtime.block_on(async {
        tokio::select! {
            _ = run_all(quick, &only, &mut report) => false,
            _ = tokio::signal::ctrl_c() => true,
        }
    });
    // Anything a benchmark could not drop in time (interrupted) dies here.
    agents::kill_marked();
    if interrupted {
        eprintln!("bench: interrupted; nothing written");
        return ExitCode::from(130);
    }
    println!("\n{}", report.table());
    let out = target_dir().join("bench.json");
    if let Err(e) = report.write_json(&out, only.is_partial()) {
        eprintln!("bench: cannot write {}: {e:#}", out.display());
        return ExitCode::FAILURE;
    }
    println!("wrote {}", out.display());
    if report.failures() > 0 {
        eprintln!(
            "bench: {} benchmark(s) could not be measured",
            report.failures()
        );
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The groups `GEOLB_BENCH_ONLY` selects; every group when it is unset or empty.
struct Only(Option<Vec<String>>);

impl Only {
    fn from_env() -> Only {
        let groups = std::env::var("GEOLB_BENCH_ONLY").unwrap_or_default();
        let groups: Vec<String> = groups
            .split(',')
            .map(|g| g.trim().to_string())
            .filter(|g| !g.is_empty())
            .collect();
        Only((!groups.is_empty()).then_some(groups))
    }

    fn runs(&self, group: &str) -> bool {
        self.0.as_ref().is_none_or(|g| g.iter().any(|g| g == group))
    }

    fn is_partial(&self) -> bool {
        self.0.is_some()
    }
}

/// Runs every selected benchmark in turn; one that cannot be measured does not
/// stop the others.
async fn run_all(quick: bool, only: &Only, report: &mut Report) {
    let bench = match Bench::new(quick) {
        Ok(bench) => bench,
        Err(e) => return report.outcome("setup", Err(e)),
    };
    if only.runs("binary_size") {
        println!("binary sizes");
        let outcome = binaries::run(&bench, report);
        report.outcome("binary_size", outcome);
    }
    if only.runs("agent_idle") {
        println!("idle agent");
        let outcome = agent_idle::run(&bench, report).await;
        report.outcome("agent_idle", outcome);
    }
    if only.runs("ack_latency") {
        println!("status latency");
        let outcome = latency::run(&bench, report).await;
        report.outcome("ack_latency", outcome);
    }
    if only.runs("fanout_500") {
        println!("fan-out to 500 agents");
        let outcome = fanout::run(&bench, report).await;
        report.outcome("fanout_500", outcome);
    }
    if only.runs("inject") {
        println!("binaries over the back channel");
        let outcome = inject::run(&bench, report).await;
        report.outcome("inject", outcome);
    }
    if only.runs("geo") {
        println!("headless clients in a GeoLab");
        let outcome = geo::run(&bench, report).await;
        report.outcome("geo", outcome);
    }
    if only.runs("dashboard") {
        println!("the dashboard");
        let outcome = dashboard::run(&bench, report).await;
        report.outcome("dashboard", outcome);
    }
    if only.runs("lab") {
        println!("the lab's scenarios");
        let outcome = scenarios::run(report, false).await;
        report.outcome("lab", outcome);
    }
    if only.runs("fleet") {
        println!("scenarios on a fleet started by hand (compare with the lab's above)");
        let outcome = fleet::run(report).await;
        report.outcome("fleet", outcome);
    }
    if only.runs("archive") {
        println!("the archiver, to the local S3 server");
        let outcome = archive::run(report).await;
        report.outcome("archive", outcome);
    }
    if only.runs("strategies") {
        println!("GeoDNS and anycast router (the routing part of the strategies)");
        let outcome = strategies::run(report).await;
        report.outcome("strategies", outcome);
        println!("the four strategies through a region's outage");
        let outcome = compare::run(report).await;
        report.outcome("strategies", outcome);
    }
    if only.runs("clients") {
        println!("many clients to a process on the default lab");
        let outcome = clients::run(report).await;
        report.outcome("clients", outcome);
    }
    let images = [
        geolb_tests::docker::SERVER_IMAGE,
        geolb_tests::docker::CLIENT_IMAGE,
    ];
    if only.runs("lab_docker") && geolb_tests::docker::available("lab_docker", &images).is_some() {
        println!("the lab's scenarios, in containers");
        let outcome = scenarios::run(report, true).await;
        report.outcome("lab_docker", outcome);
    }
}
