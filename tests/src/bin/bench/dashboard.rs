//! `dashboard_*`: the release `geolb dashboard` following a fleet of 500
//! agents heartbeating at 1 Hz (and shipping metrics every 5 s), published
//! on a real control plane by this runner in the agents' own format (500
//! real agents would measure the agents' CPU on the same two cores, not
//! the dashboard's): its CPU and RSS with nobody watching and with one
//! browser-like reader on the fleet page's event stream; and the time to
//! render a report page of 10,000 timeline entries, side by side with
//! `geolb report show` (text and `--html`) on the same stored report.

use crate::agents::connect;
use crate::report::Report;
use crate::stats::{median, ms};
use anyhow::Context as _;
use geolb_tests::dashboard::sample_report;
use geolb_tests::{procfs, NatsServer, ProcessGuard, ServerConfig};
use nix::unistd::{sysconf, SysconfVar};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Agents in the fleet.
const AGENTS: usize = 500;
/// Timeline entries of the rendered report.
const ENTRIES: usize = 10_000;
/// Timed renders, each way.
const RENDERS: usize = 5;

/// Runs the group.
pub async fn run(bench: &crate::agents::Bench, report: &mut Report) -> anyhow::Result<()> {
    let server = NatsServer::start(bench.nats_version, ServerConfig::default().jetstream());
    let url = server.client_url();
    let control = connect(&url).await?;
    let stored = sample_report("bench-10k", "dc-outage", ENTRIES, 40);
    geolb::report::store::save(&control, &stored).await?;
    let nats = async_nats::connect(&url).await?;
    let publisher = tokio::spawn(publish_fleet(nats));
    let outcome = measure(bench, report, &url).await;
    publisher.abort();
    outcome
}

fn heartbeat(i: usize, seq: u64) -> (String, Vec<u8>) {
    let (id, region) = (format!("a-{i:03}"), ["lon", "ams", "dfw"][i % 3]);
    let body = serde_json::json!({
        "v": 1, "at_ms": geolb_proto::now_ms(), "interval_ms": 1000,
        "status": {"id": id, "region": region, "role": if i.is_multiple_of(10) { "server" } else { "client" },
                   "host": "bench", "agent_version": "0.1.0", "state": "running", "program": "sleep",
                   "restarts": 0, "desired_replicas": 1, "replicas": [], "uptime_ms": seq * 1000},
        "outbox": {"buffered": 0, "dropped": 0, "capacity": 1000}
    });
    (
        format!("geolb.hb.{region}.{id}"),
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

fn metrics(i: usize) -> (String, Vec<u8>) {
    let (id, region) = (format!("a-{i:03}"), ["lon", "ams", "dfw"][i % 3]);
    let body = serde_json::json!({
        "v": 1, "at_ms": geolb_proto::now_ms(), "agent": id, "region": region, "role": "client",
        "host": {"cpu_pct": 12.5, "cpus": 2, "mem_used_bytes": 1u64 << 33, "mem_total_bytes": 1u64 << 34, "load1": 1.0},
        "agent_process": {"pid": 1, "cpu_pct": 0.1, "rss_bytes": 5u64 << 20},
        "children": [{"replica": 0, "pid": 2, "cpu_pct": 0.0, "rss_bytes": 1u64 << 20}]
    });
    (
        format!("geolb.metrics.{region}.{id}"),
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

/// 500 heartbeats a second, in ten batches of 50 every 100 ms; each agent's metrics every 5 s.
async fn publish_fleet(nats: async_nats::Client) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut round: u64 = 0;
    loop {
        tick.tick().await;
        let batch = (round % 10) as usize;
        for i in (batch * AGENTS / 10)..((batch + 1) * AGENTS / 10) {
            let (subject, body) = heartbeat(i, round / 10);
            let _ = nats.publish(subject, body.into()).await;
            if (round / 10) % 5 == (i % 5) as u64 {
                let (subject, body) = metrics(i);
                let _ = nats.publish(subject, body.into()).await;
            }
        }
        round += 1;
    }
}

async fn cpu_pct(pid: i32, window: Duration) -> anyhow::Result<(f64, Duration)> {
    let hz = sysconf(SysconfVar::CLK_TCK)?.context("CLK_TCK is not defined")? as f64;
    let before = procfs::cpu_ticks(pid).context("the dashboard exited")?;
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let ticks = procfs::cpu_ticks(pid)
        .context("the dashboard exited")?
        .saturating_sub(before);
    let elapsed = started.elapsed();
    Ok((ticks as f64 / hz / elapsed.as_secs_f64() * 100.0, elapsed))
}

async fn measure(
    bench: &crate::agents::Bench,
    report: &mut Report,
    url: &str,
) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("geolb-bench-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url_file = dir.join("url");
    let mut cmd = Command::new(&bench.geolb);
    cmd.args([
        "--control",
        url,
        "dashboard",
        "--listen",
        "127.0.0.1:0",
        "--url-file",
    ])
    .arg(&url_file)
    .stdout(Stdio::null());
    let dash = ProcessGuard::spawn("geolb dashboard", &mut cmd)?;
    let pid = dash.pid() as i32;
    let base = wait_until(Duration::from_secs(15), || {
        std::fs::read_to_string(&url_file)
            .ok()
            .map(|u| u.trim().trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty())
    })
    .context("the dashboard did not listen")?;
    let needle = format!("data-agents=\"{AGENTS}\"");
    wait_until(Duration::from_secs(30), || {
        get(&base, "/")
            .ok()
            .filter(|(_, b)| b.contains(&needle))
            .map(|_| ())
    })
    .context("the dashboard did not see the 500 agents")?;
    let window = if bench.quick {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(30)
    };
    let (idle_cpu, _) = cpu_pct(pid, window).await?;
    let idle_rss = procfs::rss_kib(pid).unwrap_or(0);
    let read = Arc::new(AtomicU64::new(0));
    let reader = viewer(&base, read.clone())?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let start_bytes = read.load(Ordering::Relaxed);
    let (view_cpu, elapsed) = cpu_pct(pid, window).await?;
    let streamed = read.load(Ordering::Relaxed) - start_bytes;
    let view_rss = procfs::rss_kib(pid).unwrap_or(0);
    drop(reader);
    let (_, page) = get(&base, "/")?;
    report.add("dashboard_500_idle_cpu_pct", idle_cpu, "%", None, format!("geolb dashboard (release) following {AGENTS} agents at 1 Hz, nobody watching; utime+stime over {:.0} s, % of one core", window.as_secs_f64()));
    report.add(
        "dashboard_500_idle_rss_kib",
        idle_rss as f64,
        "KiB",
        None,
        "the same, RSS at the end of the window",
    );
    report.add("dashboard_500_viewer_cpu_pct", view_cpu, "%", None, format!("the same with one reader of the fleet page's event stream: {:.0} KiB/s streamed over {:.0} s, fleet page {} KiB", streamed as f64 / 1024.0 / elapsed.as_secs_f64(), elapsed.as_secs_f64(), page.len() / 1024));
    report.add(
        "dashboard_500_viewer_rss_kib",
        view_rss as f64,
        "KiB",
        None,
        "the same, RSS at the end of the window",
    );
    renders(bench, report, &base, url, &dir)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The report page against the CLI, on the same stored report.
fn renders(
    bench: &crate::agents::Bench,
    report: &mut Report,
    base: &str,
    url: &str,
    dir: &Path,
) -> anyhow::Result<()> {
    let mut page = Vec::new();
    let mut size = 0;
    for _ in 0..RENDERS {
        let started = Instant::now();
        let (status, body) = get(base, "/runs/bench-10k")?;
        anyhow::ensure!(status == 200, "the report page answered {status}");
        page.push(started.elapsed());
        size = body.len();
    }
    let html = dir.join("r.html");
    let cli = |extra: &[&str]| -> anyhow::Result<Duration> {
        let started = Instant::now();
        let out = Command::new(&bench.geolb)
            .args(["--control", url, "report", "show", "bench-10k"])
            .args(extra)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "geolb report show: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(started.elapsed())
    };
    let text: Vec<Duration> = (0..RENDERS)
        .map(|_| cli(&[]))
        .collect::<anyhow::Result<_>>()?;
    let file: Vec<Duration> = (0..RENDERS)
        .map(|_| cli(&["--html", html.to_str().unwrap_or("r.html")]))
        .collect::<anyhow::Result<_>>()?;
    let file_size = std::fs::metadata(&html).map(|m| m.len()).unwrap_or(0);
    let med = |v: &[Duration]| median(v).map(ms).unwrap_or(f64::NAN);
    report.add("dashboard_report_10k_page_ms", med(&page), "ms", None, format!("GET /runs/<id> of a report with {ENTRIES} timeline entries (read from JetStream, rendered, sent: {} KiB), median of {RENDERS}", size / 1024));
    report.add("dashboard_report_10k_cli_show_ms", med(&text), "ms", None, format!("the CLI's `geolb report show <id>` (text) on the same report: process start, connect, read, print; median of {RENDERS}"));
    report.add("dashboard_report_10k_cli_html_ms", med(&file), "ms", None, format!("`geolb report show <id> --html FILE`, the same page as one file ({} KiB); median of {RENDERS}", file_size / 1024));
    Ok(())
}

/// A reader of the event stream; dropping it closes the connection.
struct Viewer(std::net::TcpStream);

impl Drop for Viewer {
    fn drop(&mut self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

/// A reader of the fleet page's event stream, counting bytes, until dropped.
fn viewer(base: &str, read: Arc<AtomicU64>) -> anyhow::Result<Viewer> {
    let host = base.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&host)?;
    write!(stream, "GET /events/fleet HTTP/1.1\r\nHost: {host}\r\n\r\n")?;
    let mut copy = stream.try_clone()?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while let Ok(n) = copy.read(&mut buf) {
            if n == 0 {
                break;
            }
            read.fetch_add(n as u64, Ordering::Relaxed);
        }
    });
    Ok(Viewer(stream))
}

fn get(base: &str, path: &str) -> anyhow::Result<(u16, String)> {
    Ok(geolb_tests::http::http_get(&format!("{base}{path}"))?)
}

fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
