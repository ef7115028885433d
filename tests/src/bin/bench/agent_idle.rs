//! `agent_idle_rss_kib`, `nats_server_idle_rss_kib`, `agent_idle_cpu_pct`: one
//! release agent supervising `sleep 3600` with default intervals (heartbeat 1 s,
//! metrics 5 s), connected to a control plane, doing nothing else.

use crate::agents::{connect, wait_answering, Bench};
use crate::report::Report;
use anyhow::Context as _;
use geolb_tests::{procfs, NatsServer, ServerConfig};
use nix::unistd::{sysconf, SysconfVar};
use std::time::{Duration, Instant};

/// How long the agent runs before its memory is read.
const SETTLE: Duration = Duration::from_secs(5);
/// The CPU window, and its `GEOLB_BENCH_QUICK` length.
const CPU_WINDOW: Duration = Duration::from_secs(60);
const CPU_WINDOW_QUICK: Duration = Duration::from_secs(10);
/// Targets: 6 MiB resident, 0.1 % of one core.
const RSS_TARGET_KIB: f64 = 6144.0;
const CPU_TARGET_PCT: f64 = 0.1;

/// Runs the idle agent and reads its memory and CPU from `/proc`.
pub async fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    let server = NatsServer::start(bench.nats_version, ServerConfig::default().jetstream());
    let url = server.client_url();
    let agent = bench.spawn_agent("idle-1", "lon", &url, "1s", "5s")?;
    let pid = agent.pid() as i32;
    let control = connect(&url).await?;
    wait_answering(&control, "idle-1", Duration::from_secs(10)).await?;
    drop(control);
    tokio::time::sleep(SETTLE).await;

    let rss = procfs::rss_kib(pid).context("read the agent's VmRSS")?;
    let breakdown = rss_breakdown(pid);
    let server_pid = server.pid().context("nats-server is not running")? as i32;
    let server_rss = procfs::rss_kib(server_pid).context("read nats-server's VmRSS")?;

    let window = if bench.quick {
        println!("  GEOLB_BENCH_QUICK=1: CPU window shortened to {CPU_WINDOW_QUICK:?}");
        CPU_WINDOW_QUICK
    } else {
        CPU_WINDOW
    };
    let cpu = cpu_use(pid, window).await?;
    let rss_after = procfs::rss_kib(pid).context("read the agent's VmRSS")?;

    report.add(
        "agent_idle_rss_kib",
        rss as f64,
        "KiB",
        Some(RSS_TARGET_KIB),
        format!(
            "VmRSS {}s after the agent answered ({breakdown}); {rss_after} KiB after the CPU window",
            SETTLE.as_secs()
        ),
    );
    report.add(
        "nats_server_idle_rss_kib",
        server_rss as f64,
        "KiB",
        None,
        format!(
            "nats-server {} (JetStream on), one agent connected",
            bench.nats_version
        ),
    );
    report.add(
        "agent_idle_cpu_pct",
        cpu.pct,
        "%",
        Some(CPU_TARGET_PCT),
        format!(
            "{} clock ticks at {} Hz (utime+stime) over {:.1}s{}, % of one core; schedstat: {:.1} ms on CPU = {:.4} %",
            cpu.ticks,
            cpu.hz,
            cpu.elapsed.as_secs_f64(),
            if bench.quick { " (quick)" } else { "" },
            cpu.sched_ns as f64 / 1e6,
            cpu.sched_ns as f64 / cpu.elapsed.as_nanos() as f64 * 100.0,
        ),
    );
    Ok(())
}

/// CPU used over a window.
struct CpuUse {
    /// utime+stime over the window, as % of one core.
    pct: f64,
    /// utime+stime, in clock ticks.
    ticks: u64,
    /// Clock ticks per second.
    hz: i64,
    /// Time on a CPU of the live threads, from schedstat (finer).
    sched_ns: u64,
    /// The window's actual length.
    elapsed: Duration,
}

/// CPU used by `pid` over `window`.
async fn cpu_use(pid: i32, window: Duration) -> anyhow::Result<CpuUse> {
    let hz = sysconf(SysconfVar::CLK_TCK)?.context("CLK_TCK is not defined")?;
    let ticks_before = procfs::cpu_ticks(pid).context("read the agent's /proc stat")?;
    let ns_before = procfs::cpu_ns(pid).unwrap_or(0);
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let ticks_after = procfs::cpu_ticks(pid).context("the agent exited during the CPU window")?;
    let ns_after = procfs::cpu_ns(pid).unwrap_or(0);
    let elapsed = started.elapsed();
    let ticks = ticks_after.saturating_sub(ticks_before);
    Ok(CpuUse {
        pct: ticks as f64 / hz as f64 / elapsed.as_secs_f64() * 100.0,
        ticks,
        hz,
        sched_ns: ns_after.saturating_sub(ns_before),
        elapsed,
    })
}

/// `RssAnon`, `RssFile` and `RssShmem` of `pid`, then its proportional and
/// private share (`smaps_rollup`), for the detail: most of an idle agent's
/// RSS is clean pages of its binary and libc, which the kernel maps 64 KiB
/// around each page touched (fault-around) and shares with every process
/// mapping the same file.
fn rss_breakdown(pid: i32) -> String {
    let status = ["RssAnon", "RssFile", "RssShmem"]
        .map(|f| match procfs::status_kib(pid, f) {
            Some(kib) => format!("{f} {kib} KiB"),
            None => format!("{f} ?"),
        })
        .join(", ");
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |name: &str| -> u64 {
        rollup
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum()
    };
    format!(
        "{status}; Pss {} KiB, private {} KiB",
        field("Pss:"),
        field("Private_Clean:") + field("Private_Dirty:")
    )
}
