//! `fanout_500_*`, `fleet_list_500_ms`, `fleet_ls_cli_500_ms`: 500 real release agents
//! (each supervising `sleep 3600`) on one control plane with JetStream; one `status`
//! fanned out to all of them until every ack is in, and the fleet listing.

use crate::agents::{connect, kill_all, Bench};
use crate::report::Report;
use crate::stats::{median, ms};
use anyhow::Context as _;
use futures::StreamExt;
use geolb::liveness::Liveness;
use geolb::{cmd, fleet, Control};
use geolb_proto::{subject, Request};
use geolb_tests::{procfs, NatsServer, ProcessGuard, ServerConfig};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Agents in the fleet.
const AGENTS: usize = 500;
/// Agents spawned before waiting for their first heartbeats.
const BATCH: usize = 50;
/// Longest the whole fleet may take to come up.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);
/// Timed fan-outs, and the timeout of each request in them.
const FANOUT_RUNS: usize = 5;
const FANOUT_TIMEOUT: Duration = Duration::from_secs(5);
/// Timed listings (library and CLI each).
const LIST_RUNS: usize = 3;
/// Targets.
const FANOUT_TARGET_MS: f64 = 200.0;
const LIST_TARGET_MS: f64 = 1000.0;
const REGIONS: [&str; 3] = ["lon", "ams", "dfw"];

/// Starts the fleet, measures, kills everything and checks nothing is left.
pub async fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    let server = NatsServer::start(bench.nats_version, ServerConfig::default().jetstream());
    let url = server.client_url();
    let control = connect(&url).await?;
    // Creates the heartbeat stream, so it holds every agent's first heartbeat.
    fleet::list(&control).await?;
    let mut guards = Vec::with_capacity(AGENTS);
    let outcome = measure(bench, report, &control, &server, &mut guards).await;
    let teardown = kill_all(std::mem::take(&mut guards));
    println!(
        "  killed {AGENTS} agents in {:.1} s",
        teardown.as_secs_f64()
    );
    bench.report_leftovers("agent, child or server");
    outcome
}

/// Everything between the fleet's start and its teardown.
async fn measure(
    bench: &Bench,
    report: &mut Report,
    control: &Control,
    server: &NatsServer,
    guards: &mut Vec<ProcessGuard>,
) -> anyhow::Result<()> {
    let ids: Vec<String> = (0..AGENTS).map(|i| format!("f-{i:03}")).collect();
    let started = Instant::now();
    start_fleet(bench, control, &server.client_url(), &ids, guards).await?;
    let startup = started.elapsed();
    let rss = average_kib(guards, procfs::rss_kib);
    let pss = average_kib(guards, procfs::pss_kib);
    let server_rss = server
        .pid()
        .and_then(|p| procfs::rss_kib(p as i32))
        .unwrap_or(0);
    report.add(
        "fanout_500_startup_s",
        startup.as_secs_f64(),
        "s",
        None,
        format!(
            "spawn in batches of {BATCH} until fleet::list shows {AGENTS} live; per agent on average RSS {rss} KiB, PSS {pss} KiB (shared pages split); nats-server RSS {server_rss} KiB"
        ),
    );

    let mut runs = Vec::with_capacity(FANOUT_RUNS);
    for _ in 0..FANOUT_RUNS {
        runs.push(fan_out_once(control, &ids).await?);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let med = median(&runs).context("no fan-out run")?;
    let max = runs.iter().max().copied().unwrap_or_default();
    let all: Vec<String> = runs.iter().map(|d| format!("{:.1}", ms(*d))).collect();
    let detail = format!(
        "cmd::fan_out(status) to {AGENTS} agents, all acks in; runs (ms): {}",
        all.join(" ")
    );
    report.add(
        "fanout_500_all_acks_ms",
        ms(med),
        "ms",
        Some(FANOUT_TARGET_MS),
        format!("median of {FANOUT_RUNS}; {detail}"),
    );
    report.add(
        "fanout_500_all_acks_max_ms",
        ms(max),
        "ms",
        None,
        format!("max of {FANOUT_RUNS}"),
    );

    list_timings(bench, report, control).await
}

/// Spawns the agents in batches, each batch waiting for its first heartbeats, then
/// waits until the fleet listing shows them all live.
async fn start_fleet(
    bench: &Bench,
    control: &Control,
    url: &str,
    ids: &[String],
    guards: &mut Vec<ProcessGuard>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let heard = heartbeat_ids(control).await?;
    for (n, id) in ids.iter().enumerate() {
        let region = REGIONS[n % REGIONS.len()];
        guards.push(bench.spawn_agent(id, region, url, "1s", "60s")?);
        if guards.len().is_multiple_of(BATCH) || guards.len() == ids.len() {
            let wanted = guards.len();
            poll_until(deadline, || async { heard.lock().unwrap().len() >= wanted })
                .await
                .with_context(|| {
                    let heard = heard.lock().unwrap().len();
                    let exited = guards.iter_mut().filter_map(|g| g.try_status()).count();
                    format!("{heard} of {wanted} agents heartbeated in time ({exited} exited)")
                })?;
        }
    }
    let live = || async {
        let entries = fleet::list(control).await.unwrap_or_default();
        live_count(&entries) >= ids.len()
    };
    poll_until(deadline, live)
        .await
        .with_context(|| format!("fleet::list did not show {} agents live in time", ids.len()))
}

/// Ids heard on `geolb.hb.>` from now on, collected by a background task.
async fn heartbeat_ids(control: &Control) -> anyhow::Result<Arc<Mutex<HashSet<String>>>> {
    let mut subscription = control.client().subscribe(subject::HEARTBEATS_ALL).await?;
    control.client().flush().await?;
    let heard = Arc::new(Mutex::new(HashSet::new()));
    let set = heard.clone();
    tokio::spawn(async move {
        while let Some(message) = subscription.next().await {
            set.lock().unwrap().insert(message.subject.to_string());
        }
    });
    Ok(heard)
}

/// Polls `ready` every 100 ms until it holds; an error once `deadline` passes.
async fn poll_until<F, Fut>(deadline: Instant, mut ready: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    while !ready().await {
        anyhow::ensure!(Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// The average of `read` over the guarded processes, in KiB.
fn average_kib(guards: &[ProcessGuard], read: fn(i32) -> Option<u64>) -> u64 {
    let values: Vec<u64> = guards.iter().filter_map(|g| read(g.pid() as i32)).collect();
    values.iter().sum::<u64>() / (values.len().max(1) as u64)
}

/// Agents of this fleet (`f-*`) the listing says are live.
fn live_count(entries: &[fleet::FleetEntry]) -> usize {
    entries
        .iter()
        .filter(|e| e.id.starts_with("f-") && e.liveness == Liveness::Live)
        .count()
}

/// One fan-out of `status` to every id; an error unless every agent acked.
async fn fan_out_once(control: &Control, ids: &[String]) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let outcomes = cmd::fan_out(control, ids, &Request::Status, FANOUT_TIMEOUT).await;
    let took = started.elapsed();
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|(id, outcome)| match outcome {
            Ok(reply) if reply.ok => None,
            Ok(reply) => Some(format!("{id}: {:?}", reply.error)),
            Err(e) => Some(format!("{id}: {e}")),
        })
        .collect();
    anyhow::ensure!(
        failed.is_empty(),
        "{} of {} agents did not ack status (first: {})",
        failed.len(),
        ids.len(),
        failed[0]
    );
    Ok(took)
}

/// `fleet_list_500_ms` (the library call) and `fleet_ls_cli_500_ms` (the whole CLI).
async fn list_timings(bench: &Bench, report: &mut Report, control: &Control) -> anyhow::Result<()> {
    let mut lib = Vec::with_capacity(LIST_RUNS);
    for _ in 0..LIST_RUNS {
        let started = Instant::now();
        let entries = fleet::list(control).await?;
        lib.push(started.elapsed());
        anyhow::ensure!(live_count(&entries) == AGENTS, "fleet::list lost agents");
    }
    let mut cli = Vec::with_capacity(LIST_RUNS);
    for _ in 0..LIST_RUNS {
        let started = Instant::now();
        let output = tokio::process::Command::new(&bench.geolb)
            .args(["--control", control.url(), "fleet", "ls"])
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .context("run geolb fleet ls")?;
        cli.push(started.elapsed());
        let rows = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|l| l.starts_with("f-"))
            .count();
        anyhow::ensure!(
            output.status.success() && rows == AGENTS,
            "geolb fleet ls exited {} with {rows} agent rows: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    for (name, runs, what) in [
        (
            "fleet_list_500_ms",
            &lib,
            "fleet::list on a connected Control",
        ),
        (
            "fleet_ls_cli_500_ms",
            &cli,
            "`geolb --control URL fleet ls` wall time, process start to exit",
        ),
    ] {
        let all: Vec<String> = runs.iter().map(|d| format!("{:.1}", ms(*d))).collect();
        let med = median(runs).context("no listing run")?;
        let detail = format!(
            "median of {LIST_RUNS}, {what}; runs (ms): {}",
            all.join(" ")
        );
        report.add(name, ms(med), "ms", Some(LIST_TARGET_MS), detail);
    }
    Ok(())
}
