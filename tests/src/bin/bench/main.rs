//! Benchmark runner (`make bench`): measures the release binaries against their
//! targets, prints every figure and a final table, and writes `target/bench.json`
//! (`{name: {value, unit, target, met, detail}}`).
//!
//! Targets are informative: a missed target is reported, not a failure. The runner
//! exits non-zero only when a measurement could not be taken.
//! `GEOLB_BENCH_QUICK=1` shortens the idle CPU window from 60 s to 10 s.
//!
//! # Layout
//! - [`agents`]: the release binaries, spawning agents, and killing what is left.
//! - [`binaries`]: sizes of the release binaries.
//! - [`agent_idle`]: memory and CPU of one idle agent.
//! - [`latency`]: `status` round trips through the coordinator, and the raw floor.
//! - [`fanout`]: 500 agents: one `status` to all, and the fleet listing.
//! - [`report`]: figures, the table and `bench.json`.
//! - [`stats`]: nearest-rank percentiles.

mod agent_idle;
mod agents;
mod binaries;
mod fanout;
mod latency;
mod report;
mod stats;

use agents::Bench;
use geolb_tests::tools::target_dir;
use report::Report;
use std::process::ExitCode;

fn main() -> ExitCode {
    agents::install_cleanup();
    let quick = std::env::var("GEOLB_BENCH_QUICK").is_ok_and(|v| v == "1");
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
            _ = run_all(quick, &mut report) => false,
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
    if let Err(e) = report.write_json(&out) {
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

/// Runs every benchmark in turn; one that cannot be measured does not stop the others.
async fn run_all(quick: bool, report: &mut Report) {
    let bench = match Bench::new(quick) {
        Ok(bench) => bench,
        Err(e) => return report.outcome("setup", Err(e)),
    };
    println!("binary sizes");
    let outcome = binaries::run(&bench, report);
    report.outcome("binary_size", outcome);
    println!("idle agent");
    let outcome = agent_idle::run(&bench, report).await;
    report.outcome("agent_idle", outcome);
    println!("status latency");
    let outcome = latency::run(&bench, report).await;
    report.outcome("ack_latency", outcome);
    println!("fan-out to 500 agents");
    let outcome = fanout::run(&bench, report).await;
    report.outcome("fanout_500", outcome);
}
