//! `geolb dashboard` under test: the process (on a free port, its URL read
//! from `--url-file`, killed on `Drop`), plain HTTP requests to it, and
//! hand-made reports to store and render.

use crate::process::ProcessGuard;
use crate::tools::geolb_bin;
use crate::wait::wait_for_blocking;
use geolb::report::{ClientOutcome, Report, TimelineEntry};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A running dashboard.
pub struct DashboardProc {
    /// `http://127.0.0.1:PORT/`, without the trailing slash.
    pub url: String,
    /// The process.
    pub guard: ProcessGuard,
    dir: PathBuf,
}

impl DashboardProc {
    /// Runs `geolb GLOBAL dashboard --listen 127.0.0.1:0 ARGS` and waits until it listens.
    pub fn start(global: &[&str], args: &[&str]) -> DashboardProc {
        let dir = std::env::temp_dir().join(format!(
            "geolb-dashboard-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let url_file = dir.join("url");
        let mut cmd = Command::new(geolb_bin());
        cmd.args(global)
            .args(["dashboard", "--listen", "127.0.0.1:0", "--url-file"])
            .arg(&url_file)
            .args(args)
            .stdout(Stdio::null());
        let mut guard =
            ProcessGuard::spawn("geolb dashboard", &mut cmd).expect("start geolb dashboard");
        let url = wait_for_blocking("the dashboard to listen", Duration::from_secs(15), || {
            if let Some(status) = guard.try_status() {
                panic!("geolb dashboard exited early: {status}");
            }
            std::fs::read_to_string(&url_file)
                .ok()
                .map(|u| u.trim().trim_end_matches('/').to_string())
                .filter(|u| !u.is_empty())
        });
        DashboardProc { url, guard, dir }
    }

    /// Waits until the dashboard has reached its control plane.
    pub async fn wait_connected(&self) {
        crate::wait::wait_for(
            "the dashboard to reach its control plane",
            Duration::from_secs(15),
            || async {
                let (status, body) = self.get("/");
                (status == 200 && !body.contains("id=\"unreachable\"")).then_some(())
            },
        )
        .await
    }

    /// Waits until agent `id` has its page.
    pub async fn wait_agent(&self, id: &str) {
        let path = format!("/agent/{id}");
        crate::wait::wait_for(
            &format!("agent {id} on the dashboard"),
            Duration::from_secs(15),
            || async { (self.get(&path).0 == 200).then_some(()) },
        )
        .await
    }

    /// GETs `path`: status and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        crate::http::http_get(&format!("{}{path}", self.url))
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

impl Drop for DashboardProc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A report of `scenario` with `entries` timeline entries: a fault from
/// 1 s to 3 s, client moves in between, and four clients.
pub fn sample_report(id: &str, scenario: &str, entries: usize, gap_ms: u64) -> Report {
    let mut timeline = vec![
        entry(0, "scenario", "begin", scenario),
        entry(1000, "scenario", "fault", "SIGKILL every server of lon"),
        entry(3000, "scenario", "restore", "start every server of lon"),
    ];
    for i in 0..entries.saturating_sub(4) {
        let t = 1000 + (i as u64 * 7) % 4000;
        timeline.push(entry(
            t,
            &format!("lon-rtt-{}", i % 40),
            "client_moved",
            "lon-1 -> ams-1 (Lost, gap 30 ms)",
        ));
    }
    timeline.push(entry(5000, "scenario", "end", scenario));
    timeline.sort_by_key(|e| e.t_ms);
    let clients: Vec<ClientOutcome> = (0..4)
        .map(|i| ClientOutcome {
            id: format!("lon-{}-{i}", if i < 2 { "rtt" } else { "random" }),
            region: "lon".into(),
            strategy: if i < 2 { "rtt" } else { "random" }.into(),
            gaps_ms: vec![gap_ms + i * 10],
            landed_region: Some(if i == 3 { "dfw" } else { "ams" }.into()),
            expected_region: "ams".into(),
            switches: 1,
            sent: 1000,
            received: 990,
            lost: i,
            lost_same_strategy: i,
            lost_same_strategy_cross_region: 0,
            duplicated: 0,
            ..ClientOutcome::default()
        })
        .collect();
    let summary = geolb::report::summary::summarise(&clients);
    Report {
        id: id.into(),
        scenario: scenario.into(),
        params: serde_json::json!({"region": "lon", "mode": "kill"}),
        started_at: "2026-01-01T00:00:00.000Z".into(),
        finished_at: "2026-01-01T00:00:05.000Z".into(),
        passed: gap_ms < 1000,
        reasons: if gap_ms < 1000 {
            vec![]
        } else {
            vec!["rtt gap p99 over 1s".into()]
        },
        timeline,
        clients,
        summary,
        servers: None,
        duration_ms: None,
        return_home_ms: Some(1500),
        fleet: None,
        routing: None,
    }
}

fn entry(t_ms: u64, source: &str, kind: &str, detail: &str) -> TimelineEntry {
    TimelineEntry {
        t_ms,
        source: source.into(),
        kind: kind.into(),
        detail: detail.into(),
    }
}
