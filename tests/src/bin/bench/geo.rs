//! `client_*`: our `rtt` client against stock async-nats clients (`random`,
//! `ordered`) in a `GeoLab` (lon, ams, dfw; 3 release nats-servers each; lon-ams
//! 8 ms, lon-dfw 105 ms, ams-dfw 115 ms). 30 release clients per strategy, all
//! living in lon, json profile at 2 msg/s, run side by side:
//!
//! 1. `client_rss_kib`: median VmRSS of the `rtt` clients once settled (the
//!    other strategies in the detail; they run with `--no-probes`).
//! 2. `client_kill_gap_<strategy>_{p50,p99,max}_ms` and
//!    `client_landed_expected_pct_<strategy>`: every lon server SIGKILLed at
//!    once; for each client that was on lon, the `gap_ms` of its first move that
//!    reached a server, and whether that server is in ams (the next-nearest).
//!    Then lon restarts, the `rtt` clients return by themselves, and the stock
//!    clients are started again (they would stay away).
//! 3. `client_partition_gap_<strategy>_p99_ms`: lon partitioned (every link to
//!    its servers cut). Stock clients notice only with their ping timer (60 s,
//!    two pings), so the wait stops at 45 s: a client that has not moved by then
//!    counts as 45 000 ms and the value is then a lower bound (said in the
//!    detail). Then the partition heals, and the stock clients stop.
//! 4. `client_ldm_lost_rtt`: the lon server with the most `rtt` clients enters
//!    lame-duck mode; the increase of `traffic.lost` summed over every `rtt`
//!    client, from before the signal to 3 s after the last of them moved.
//!
//! Run it alone with `GEOLB_BENCH_ONLY=geo`. The whole group is bounded by
//! [`WHOLE`]; everything it started is killed at the end and checked gone.

use crate::agents::Bench;
use crate::report::Report;
use crate::stats::{median, percentile};
use anyhow::Context as _;
use futures::future::join_all;
use geolb_tests::geo::{ClientProc, ClientSpec, GeoLab, GeoSpec};
use geolb_tests::procfs;
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};

/// Clients per strategy.
const PER_STRATEGY: usize = 30;
const STRATEGIES: [&str; 3] = ["rtt", "random", "ordered"];
/// Where every client lives, the region that fails, and where it should go.
const HOME: &str = "lon";
const NEXT: &str = "ams";
/// Bounds of the steps, and of the whole group.
const WHOLE: Duration = Duration::from_secs(360);
const CONNECT_WAIT: Duration = Duration::from_secs(60);
const KILL_WAIT: Duration = Duration::from_secs(30);
const PARTITION_CAP: Duration = Duration::from_secs(45);
const RETURN_WAIT: Duration = Duration::from_secs(40);
const LDM_WAIT: Duration = Duration::from_secs(20);
const SETTLE: Duration = Duration::from_secs(5);
/// Targets.
const PARTITION_TARGET_MS: f64 = 1000.0;
const LANDED_TARGET_PCT: f64 = 99.0;

/// One client and its strategy.
struct Member {
    strategy: &'static str,
    proc: ClientProc,
}

/// Where a client was before a fault: its move count and server.
struct Before {
    moves: usize,
    server: Option<String>,
    region: Option<String>,
}

/// Runs the group within [`WHOLE`], then checks nothing is left running.
pub async fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    let outcome = match tokio::time::timeout(WHOLE, measure(bench, report)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(anyhow::anyhow!(
            "the geo benchmark took longer than {WHOLE:?}"
        )),
    };
    bench.report_leftovers("client or server");
    outcome
}

async fn measure(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    let started = Instant::now();
    let lab = GeoLab::start(GeoSpec::default()).await;
    println!("  lab up in {:.1} s", started.elapsed().as_secs_f64());
    let mut fleet = Vec::new();
    for strategy in STRATEGIES {
        fleet.extend(spawn_group(&lab, bench, strategy, 0)?);
    }
    let outcome = phases(&lab, bench, report, &mut fleet).await;
    for member in &fleet {
        let _ = member.proc.signal(Signal::SIGKILL);
    }
    drop(fleet);
    drop(lab);
    println!(
        "  geo group done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    outcome
}

async fn phases(
    lab: &GeoLab,
    bench: &Bench,
    report: &mut Report,
    fleet: &mut Vec<Member>,
) -> anyhow::Result<()> {
    wait_connected(fleet, CONNECT_WAIT).await?;
    wait_home(fleet, "rtt", RETURN_WAIT).await?;
    tokio::time::sleep(SETTLE).await;
    memory(report, fleet)?;

    println!("  SIGKILL every {HOME} server");
    let before = snapshot(fleet);
    lab.kill_region(HOME);
    let landed = landings(fleet, &before, KILL_WAIT).await;
    kill_figures(report, lab, fleet, &before, &landed);

    println!("  restart {HOME}; stock clients start again");
    lab.restart_region(HOME).await;
    wait_home(fleet, "rtt", RETURN_WAIT).await?;
    fleet.retain(|m| m.strategy == "rtt");
    for strategy in ["random", "ordered"] {
        fleet.extend(spawn_group(lab, bench, strategy, 1)?);
    }
    wait_connected(fleet, CONNECT_WAIT).await?;
    tokio::time::sleep(SETTLE).await;

    println!("  partition {HOME} (up to {PARTITION_CAP:?})");
    let before = snapshot(fleet);
    lab.partition(HOME);
    let landed = landings(fleet, &before, PARTITION_CAP).await;
    partition_figures(report, fleet, &before, &landed);
    lab.heal(HOME);
    wait_home(fleet, "rtt", RETURN_WAIT).await?;
    fleet.retain(|m| m.strategy == "rtt");
    tokio::time::sleep(SETTLE).await;

    lame_duck(lab, report, fleet).await
}

/// Spawns the `PER_STRATEGY` clients of `strategy`; `round` tells respawns apart.
fn spawn_group(
    lab: &GeoLab,
    bench: &Bench,
    strategy: &'static str,
    round: usize,
) -> anyhow::Result<Vec<Member>> {
    (0..PER_STRATEGY)
        .map(|i| {
            let id = format!("{strategy}-{round}-{i:02}");
            let mut spec = ClientSpec::new(&id, HOME)
                .strategy(strategy)
                .bin(bench.agent.clone())
                .args([
                    "--profile",
                    "json",
                    "--rate",
                    "2",
                    "--report-interval",
                    "1s",
                ]);
            spec = match strategy {
                "rtt" => spec.args(["--hold", "2s"]),
                _ => spec.args(["--no-probes"]),
            };
            let proc = lab
                .spawn_client(spec)
                .with_context(|| format!("spawn client {id}"))?;
            Ok(Member { strategy, proc })
        })
        .collect()
}

/// Waits until every client reports a server.
async fn wait_connected(fleet: &[Member], timeout: Duration) -> anyhow::Result<()> {
    poll(timeout, || fleet.iter().all(|m| m.proc.current().is_some()))
        .await
        .with_context(|| {
            let missing = fleet.iter().filter(|m| m.proc.current().is_none()).count();
            format!("{missing} client(s) without a server after {timeout:?}")
        })
}

/// Waits until every client of `strategy` is on a server of [`HOME`].
async fn wait_home(fleet: &[Member], strategy: &str, timeout: Duration) -> anyhow::Result<()> {
    let group = || fleet.iter().filter(move |m| m.strategy == strategy);
    let home = |m: &Member| m.proc.current().is_some_and(|s| s.region == HOME);
    poll(timeout, || group().all(home)).await.with_context(|| {
        let away = group().filter(|m| !home(m)).count();
        format!("{away} {strategy} client(s) not back in {HOME} after {timeout:?}")
    })
}

/// Polls `done` every 100 ms until it holds or `timeout` passes.
async fn poll(timeout: Duration, mut done: impl FnMut() -> bool) -> Option<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return Some(());
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn snapshot(fleet: &[Member]) -> Vec<Before> {
    fleet
        .iter()
        .map(|m| {
            let server = m.proc.current();
            Before {
                moves: m.proc.move_count(),
                region: server.as_ref().map(|s| s.region.clone()),
                server: server.map(|s| s.name),
            }
        })
        .collect()
}

/// For each client that was in [`HOME`], its first landing after `before`:
/// `(gap_ms, region)`, or `None` if it had not landed within `timeout`.
async fn landings(
    fleet: &[Member],
    before: &[Before],
    timeout: Duration,
) -> Vec<Option<Option<(u64, String)>>> {
    let affected = |b: &Before| b.region.as_deref() == Some(HOME);
    let landed = |m: &Member, b: &Before| {
        let moves = m.proc.moves();
        let first = moves.into_iter().skip(b.moves).find(|mv| mv.to.is_some());
        first.map(|mv| (mv.gap_ms, mv.to.map(|s| s.region).unwrap_or_default()))
    };
    let _ = poll(timeout, || {
        fleet
            .iter()
            .zip(before)
            .filter(|(_, b)| affected(b))
            .all(|(m, b)| landed(m, b).is_some())
    })
    .await;
    fleet
        .iter()
        .zip(before)
        .map(|(m, b)| affected(b).then(|| landed(m, b)))
        .collect()
}

/// The affected clients of `strategy`: gaps of those that landed, where they
/// landed, and how many had not.
struct Outcome {
    affected: usize,
    gaps: Vec<Duration>,
    expected: usize,
    regions: Vec<String>,
    stuck: usize,
}

impl Outcome {
    /// The gaps, a client that did not land counting as `cap`.
    fn with_caps(&self, cap: Duration) -> Vec<Duration> {
        let mut all = self.gaps.clone();
        all.extend(std::iter::repeat_n(cap, self.stuck));
        all
    }

    /// What the detail says when some clients did not land.
    fn lower_bound(&self, cap: Duration) -> String {
        match self.stuck {
            0 => String::new(),
            n => format!(
                "; {n} had not moved after {cap:?} and count as {} ms, so the values are lower bounds",
                ms(cap)
            ),
        }
    }
}

fn outcome(fleet: &[Member], landed: &[Option<Option<(u64, String)>>], strategy: &str) -> Outcome {
    let mut out = Outcome {
        affected: 0,
        gaps: Vec::new(),
        expected: 0,
        regions: Vec::new(),
        stuck: 0,
    };
    for (m, l) in fleet.iter().zip(landed) {
        let Some(l) = l.as_ref().filter(|_| m.strategy == strategy) else {
            continue;
        };
        out.affected += 1;
        match l {
            Some((gap, region)) => {
                out.gaps.push(Duration::from_millis(*gap));
                out.expected += usize::from(region == NEXT);
                out.regions.push(region.clone());
            }
            None => out.stuck += 1,
        }
    }
    out
}

fn kill_figures(
    report: &mut Report,
    lab: &GeoLab,
    fleet: &[Member],
    before: &[Before],
    landed: &[Option<Option<(u64, String)>>],
) {
    let rtt_next = ms(lab.spec().rtt(HOME, NEXT));
    for strategy in STRATEGIES {
        let o = outcome(fleet, landed, strategy);
        if o.affected == 0 {
            println!("  no {strategy} client was on {HOME}");
            continue;
        }
        let all = o.with_caps(KILL_WAIT);
        let detail = format!(
            "{} {strategy} clients on {HOME} ({}) at the kill; {} landed within {KILL_WAIT:?}, in {}{}",
            o.affected,
            servers_of(fleet, before, strategy),
            o.gaps.len(),
            count_regions(&o.regions),
            o.lower_bound(KILL_WAIT),
        );
        let target = (strategy == "rtt").then_some(3.0 * rtt_next + 50.0);
        for (p, pct, target) in [
            ("p50", 50.0, None),
            ("p99", 99.0, target),
            ("max", 100.0, None),
        ] {
            let name = format!("client_kill_gap_{strategy}_{p}_ms");
            let value = ms_or_nan(percentile(&all, pct));
            report.add(&name, value, "ms", target, detail.clone());
        }
        let pct = 100.0 * o.expected as f64 / o.affected as f64;
        let target = (strategy == "rtt").then_some(LANDED_TARGET_PCT);
        report.add_at_least(
            &format!("client_landed_expected_pct_{strategy}"),
            pct,
            "%",
            target,
            format!(
                "{} of {} landed in {NEXT} (the next-nearest) after the kill; landed in {}",
                o.expected,
                o.affected,
                count_regions(&o.regions)
            ),
        );
    }
}

fn partition_figures(
    report: &mut Report,
    fleet: &[Member],
    before: &[Before],
    landed: &[Option<Option<(u64, String)>>],
) {
    for strategy in STRATEGIES {
        let o = outcome(fleet, landed, strategy);
        if o.affected == 0 {
            println!("  no {strategy} client was on {HOME}");
            continue;
        }
        let p99 = ms_or_nan(percentile(&o.with_caps(PARTITION_CAP), 99.0));
        let bound = o.lower_bound(PARTITION_CAP);
        let detail = format!(
            "{} {strategy} clients on {HOME} ({}) at the partition; gaps of those that moved: p50 {}, max {}; landed in {}{bound}",
            o.affected,
            servers_of(fleet, before, strategy),
            fmt_ms(median(&o.gaps)),
            fmt_ms(percentile(&o.gaps, 100.0)),
            count_regions(&o.regions),
        );
        let target = (strategy == "rtt").then_some(PARTITION_TARGET_MS);
        let name = format!("client_partition_gap_{strategy}_p99_ms");
        report.add(&name, p99, "ms", target, detail);
    }
}

/// Lame-duck the lon server with the most `rtt` clients; sum their losses.
async fn lame_duck(lab: &GeoLab, report: &mut Report, fleet: &[Member]) -> anyhow::Result<()> {
    let lost_before = total_lost(fleet).await?;
    let before = snapshot(fleet);
    let mut on: Vec<(String, usize)> = Vec::new();
    for b in before.iter().filter(|b| b.region.as_deref() == Some(HOME)) {
        let Some(server) = b.server.clone() else {
            continue;
        };
        match on.iter_mut().find(|(n, _)| *n == server) {
            Some((_, count)) => *count += 1,
            None => on.push((server, 1)),
        }
    }
    let (server, count) = on
        .into_iter()
        .max_by_key(|(_, c)| *c)
        .context("no rtt client on a lon server")?;
    println!("  SIGUSR2 {server} ({count} rtt clients on it)");
    lab.lame_duck(HOME, lab.index(&server));
    let left = |m: &Member| m.proc.current().is_some_and(|s| s.name != server);
    poll(LDM_WAIT, || fleet.iter().all(left))
        .await
        .with_context(|| format!("rtt clients still on {server} after {LDM_WAIT:?}"))?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let lost_after = total_lost(fleet).await?;
    let moved: Vec<_> = fleet
        .iter()
        .zip(&before)
        .filter(|(_, b)| b.server.as_deref() == Some(server.as_str()))
        .flat_map(|(m, b)| m.proc.moves().into_iter().skip(b.moves).take(1))
        .collect();
    let zero_gap = moved.iter().filter(|mv| mv.gap_ms == 0).count();
    let reasons: Vec<String> = moved.iter().map(|mv| format!("{:?}", mv.reason)).collect();
    report.add(
        "client_ldm_lost_rtt",
        lost_after as f64 - lost_before as f64,
        "msgs",
        Some(0.0),
        format!(
            "traffic.lost summed over {} rtt clients: {lost_before} before SIGUSR2 to {server}, {lost_after} 3 s after its {} clients moved ({zero_gap} with gap 0; reasons {})",
            fleet.len(),
            moved.len(),
            count_regions(&reasons)
        ),
    );
    Ok(())
}

/// `traffic.lost` summed over `fleet`, from a status newer than now for each.
async fn total_lost(fleet: &[Member]) -> anyhow::Result<u64> {
    let fresh = fleet
        .iter()
        .map(|m| m.proc.fresh_status(Duration::from_secs(10)));
    let statuses = tokio::time::timeout(Duration::from_secs(15), join_all(fresh))
        .await
        .context("fresh status records from every client")?;
    Ok(statuses.iter().map(|s| s.traffic.lost).sum())
}

/// Median VmRSS per strategy; the `rtt` one is the figure.
fn memory(report: &mut Report, fleet: &[Member]) -> anyhow::Result<()> {
    let mut parts = Vec::new();
    let mut rtt = None;
    for strategy in STRATEGIES {
        let mut kib: Vec<u64> = fleet
            .iter()
            .filter(|m| m.strategy == strategy)
            .filter_map(|m| procfs::rss_kib(m.proc.pid() as i32))
            .collect();
        kib.sort_unstable();
        let Some(mid) = kib.get(kib.len() / 2).copied() else {
            continue;
        };
        parts.push(format!("{strategy} {mid} KiB (n={})", kib.len()));
        if strategy == "rtt" {
            rtt = Some(mid);
        }
    }
    let rtt = rtt.context("no rtt client to measure")?;
    report.add(
        "client_rss_kib",
        rtt as f64,
        "KiB",
        None,
        format!(
            "median VmRSS, json profile at 2/s, {}s after all connected: {}; random/ordered run --no-probes",
            SETTLE.as_secs(),
            parts.join(", ")
        ),
    );
    Ok(())
}

/// How the clients of `strategy` were spread over servers in `before`.
fn servers_of(fleet: &[Member], before: &[Before], strategy: &str) -> String {
    let names: Vec<String> = fleet
        .iter()
        .zip(before)
        .filter(|(m, b)| m.strategy == strategy && b.region.as_deref() == Some(HOME))
        .filter_map(|(_, b)| b.server.clone())
        .collect();
    count_regions(&names)
}

/// `"ams x29, dfw x1"`.
fn count_regions(items: &[String]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for item in items {
        match counts.iter_mut().find(|(n, _)| n == item) {
            Some((_, c)) => *c += 1,
            None => counts.push((item.clone(), 1)),
        }
    }
    counts.sort();
    let parts: Vec<String> = counts.iter().map(|(n, c)| format!("{n} x{c}")).collect();
    match parts.is_empty() {
        true => "nowhere".to_string(),
        false => parts.join(", "),
    }
}

fn ms(d: Duration) -> f64 {
    crate::stats::ms(d)
}

fn fmt_ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_string(), |d| format!("{} ms", d.as_millis()))
}

fn ms_or_nan(d: Option<Duration>) -> f64 {
    d.map_or(f64::NAN, ms)
}
