//! Group `clients`: many `rtt` clients on the default lab (lon, ams, dfw;
//! three servers each; lon-ams 8 ms), packed `clients.per_process` to a
//! process (`client --count`), at 12, 36, 102, 300 and 1,002 clients (4, 12,
//! 34, 100 and 334 a region), beside the peer: the same 12 clients a process
//! each, as before.
//!
//! For each lab, once every client reports: the share elected at home (the
//! dc-outage report's `home_at_start_pct`), the client processes' RSS and CPU
//! over [`WINDOW`] divided by the clients they run, the RSS each client adds
//! to a process (the slope between the labs' processes), the probe PINGs a
//! client sends per second (from its records), and the failover p99 after
//! `dc-outage --mode kill` of lon, measured by the clients' own timestamps,
//! against 3 x the lon-ams round trip + 50 ms.

use super::report::Report;
use super::scenarios::{figure, BenchLab};
use geolb_tests::procfs;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long CPU is sampled.
const WINDOW: Duration = Duration::from_secs(20);
/// The round trip from lon to the next region, ams, in the default lab.
const NEXT_RTT_MS: f64 = 8.0;
/// The largest RSS a client may add to its process.
const RSS_PER_CLIENT_TARGET_KIB: f64 = 1024.0;

/// One lab size: `per_region` rtt clients in each region, `per_process` to a process.
struct Size {
    per_region: u32,
    per_process: u32,
}

/// The lab's client processes: (clients each runs, RSS KiB, CPU ticks).
struct Processes {
    rows: Vec<(u32, u64, u64)>,
}

/// Runs every size and records its figures.
pub async fn run(report: &mut Report) -> anyhow::Result<()> {
    // The sizes: RSS and CPU at about 10, 100 and 1,000 clients;
    // failover after a kill at 12, 100 and (at least) 300 clients in lon.
    let sizes = [(4, 1), (4, 4), (12, 12), (34, 34), (100, 100), (334, 167)].map(
        |(per_region, per_process)| Size {
            per_region,
            per_process,
        },
    );
    let mut slope_points = Vec::new();
    for size in &sizes {
        let (clients, per_process) = (size.per_region * 3, size.per_process);
        let name = match per_process {
            1 => format!("clients_{clients}_a_process_each"),
            _ => format!("clients_{clients}"),
        };
        println!("  {clients} rtt clients, {per_process} to a process");
        let config = format!(
            "[clients]\nrtt = {}\nrandom = 0\ndns = 0\nanycast = 0\nper_process = {per_process}\nrate = 1.0\n",
            size.per_region,
        );
        let lab = BenchLab::up(&name, &config, false)?;
        let (before, parts_before) = (client_processes(&lab), lab_cpu(&lab));
        tokio::time::sleep(WINDOW).await;
        let (after, parts_after) = (client_processes(&lab), lab_cpu(&lab));
        let ticks_per_s = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .unwrap_or(100) as f64;
        let pct = |ticks: u64| ticks as f64 / ticks_per_s / WINDOW.as_secs_f64() * 100.0;
        let parts = cpu_split(&parts_before, &parts_after);
        report.add(
            &format!("{name}_lab_cpu_pct"),
            pct(parts.iter().map(|p| p.1).sum()),
            "%",
            None,
            format!(
                "of one core (2 here), over {} s: {}",
                WINDOW.as_secs(),
                parts
                    .iter()
                    .map(|(part, ticks)| format!("{part} {:.0} %", pct(*ticks)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        let cpu_ticks: u64 = after
            .rows
            .iter()
            .zip(&before.rows)
            .map(|(a, b)| a.2.saturating_sub(b.2))
            .sum();
        let cpu_pct = pct(cpu_ticks);
        let rss_kib: u64 = after.rows.iter().map(|r| r.1).sum();
        let counted: u32 = after.rows.iter().map(|r| r.0).sum();
        anyhow::ensure!(
            counted == clients,
            "{name}: found {} client processes running {counted} clients, not {clients}",
            after.rows.len()
        );
        for row in &after.rows {
            slope_points.push((row.0 as f64, row.1 as f64));
        }
        report.add(
            &format!("{name}_rss_per_client_kib"),
            rss_kib as f64 / clients as f64,
            "KiB",
            None,
            format!(
                "{} client processes, {per_process} clients each, {rss_kib} KiB in all",
                after.rows.len()
            ),
        );
        report.add(
            &format!("{name}_cpu_per_client_pct"),
            cpu_pct / clients as f64,
            "%",
            None,
            format!(
                "{cpu_pct:.1} % of one core for all {clients} over {} s (probes, traffic at 1 msg/s, records)",
                WINDOW.as_secs()
            ),
        );
        let run = lab.scenario(
            "dc-outage",
            &[
                "--region",
                "lon",
                "--mode",
                "kill",
                "--duration",
                "10s",
                "--settle-timeout",
                "120s",
            ],
        )?;
        report.add_at_least(
            &format!("{name}_home_at_start_pct"),
            figure(&run, "rtt", &["home_at_start_pct"]),
            "%",
            Some(100.0),
            "every rtt client elected at home before the fault",
        );
        let probe_rate = probe_rate(&run);
        report.add(
            &format!("{name}_probes_per_client_per_s"),
            probe_rate,
            "1/s",
            None,
            "PINGs a client sends, from its records: 5/s to its server, 0.5/s to the 8 others (all 9 at 5/s: 45)",
        );
        let target =
            (per_process > 1 && size.per_region >= 300).then_some(3.0 * NEXT_RTT_MS + 50.0);
        report.add(
            &format!("{name}_kill_p99_ms"),
            figure(&run, "rtt", &["failover_gap_ms", "p99"]),
            "ms",
            target,
            format!(
                "dc-outage lon kill: the {} lon clients' gaps (p50 {} ms), by their own timestamps; target 3 x {NEXT_RTT_MS} ms + 50 ms at 300 or more in the region",
                size.per_region,
                figure(&run, "rtt", &["failover_gap_ms", "p50"])
            ),
        );
        report.add_at_least(
            &format!("{name}_kill_landed_pct"),
            figure(&run, "rtt", &["landed_expected_pct"]),
            "%",
            None,
            "lon clients that landed in ams, the next region",
        );
    }
    // The RSS a client adds: least squares over the packed processes.
    let packed: Vec<(f64, f64)> = slope_points.iter().copied().filter(|p| p.0 > 1.0).collect();
    report.add(
        "clients_rss_per_added_client_kib",
        slope(&packed),
        "KiB",
        Some(RSS_PER_CLIENT_TARGET_KIB),
        format!(
            "the slope of a process's RSS over the clients it runs ({} processes of 4 to 167 clients); a process of one client: {:.0} KiB",
            packed.len(),
            slope_points
                .iter()
                .filter(|p| p.0 == 1.0)
                .map(|p| p.1)
                .sum::<f64>()
                / slope_points.iter().filter(|p| p.0 == 1.0).count().max(1) as f64
        ),
    );
    Ok(())
}

/// The lab's `geolb-agent client` processes.
fn client_processes(lab: &BenchLab) -> Processes {
    let rows = lab
        .processes()
        .into_iter()
        .filter_map(|stat| {
            let cmdline = procfs::cmdline(stat.pid);
            (cmdline.get(1).map(String::as_str) == Some("client")).then_some(())?;
            let count = cmdline
                .iter()
                .position(|a| a == "--count")
                .and_then(|i| cmdline.get(i + 1)?.parse().ok())
                .unwrap_or(1);
            let rss = procfs::rss_kib(stat.pid)?;
            let ticks = procfs::cpu_ticks(stat.pid)?;
            Some((count, rss, ticks))
        })
        .collect();
    Processes { rows }
}

/// Every lab process's part (nats-server, or the agent's subcommand:
/// client, wan, run, ...) and CPU ticks, by pid.
fn lab_cpu(lab: &BenchLab) -> BTreeMap<i32, (String, u64)> {
    lab.processes()
        .into_iter()
        .filter_map(|stat| {
            let cmdline = procfs::cmdline(stat.pid);
            let part = match stat.comm.as_str() {
                "geolb-agent" | "geolb" => {
                    format!(
                        "{} {}",
                        stat.comm,
                        cmdline.get(1).map_or("", String::as_str)
                    )
                }
                other => other.to_string(),
            };
            Some((stat.pid, (part, procfs::cpu_ticks(stat.pid)?)))
        })
        .collect()
}

/// The ticks each part used between two [`lab_cpu`] samples, most first.
fn cpu_split(
    before: &BTreeMap<i32, (String, u64)>,
    after: &BTreeMap<i32, (String, u64)>,
) -> Vec<(String, u64)> {
    let mut parts = BTreeMap::<String, u64>::new();
    for (pid, (part, ticks)) in after {
        let old = before.get(pid).map_or(*ticks, |b| b.1);
        *parts.entry(part.clone()).or_default() += ticks.saturating_sub(old);
    }
    let mut parts: Vec<(String, u64)> = parts.into_iter().collect();
    parts.sort_by_key(|p| std::cmp::Reverse(p.1));
    parts
}

/// The median probe rate of the rtt clients at the start of `run`.
fn probe_rate(run: &serde_json::Value) -> f64 {
    let mut rates: Vec<f64> = run["clients"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["strategy"] == "rtt")
        .filter_map(|c| c["probe_rate"].as_f64())
        .collect();
    rates.sort_by(f64::total_cmp);
    rates.get(rates.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The least-squares slope of `y` over `x`.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let (mx, my) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let cov: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let var: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    cov / var
}
