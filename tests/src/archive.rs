//! Archive tests' tools: `geolb archive` as a guarded child with its
//! metrics served, telemetry published into the stream, and the archive
//! read back and checked (every message once, in order).

use crate::process::ProcessGuard;
use crate::tools::geolb_bin;
use crate::{free_port, wait_for};
use geolb::archive::batch::decode;
use geolb::archive::{layout, Archive};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// `geolb archive` running against a control plane.
pub struct ArchiverProc {
    /// The process.
    pub guard: ProcessGuard,
    /// Where `/metrics` is served.
    pub metrics_port: u16,
    /// Its stderr.
    pub log: PathBuf,
}

impl ArchiverProc {
    /// Starts `geolb --control URL archive --to s3://... ARGS` with `env`, logging into `dir`.
    pub fn spawn(
        control: &str,
        to: &str,
        endpoint: &str,
        args: &[&str],
        env: &[(&str, &str)],
        dir: &Path,
    ) -> ArchiverProc {
        let metrics_port = free_port();
        let log = dir.join(format!("archiver-{metrics_port}.log"));
        let file = std::fs::File::create(&log).expect("archiver log");
        let mut cmd = Command::new(geolb_bin());
        cmd.args([
            "--control",
            control,
            "archive",
            "--to",
            to,
            "--endpoint",
            endpoint,
        ])
        .arg("--metrics-listen")
        .arg(format!("127.0.0.1:{metrics_port}"))
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .envs(env.iter().copied())
        .stdout(file.try_clone().expect("log"))
        .stderr(file);
        ArchiverProc {
            guard: ProcessGuard::spawn("geolb archive", &mut cmd).expect("start geolb archive"),
            metrics_port,
            log,
        }
    }

    /// One of its counters (`geolb_archive_<name>`), once `/metrics` answers.
    pub fn metric(&self, name: &str) -> Option<u64> {
        let url = format!("http://127.0.0.1:{}/metrics", self.metrics_port);
        let (_, text) = crate::http::http_get(&url).ok()?;
        let key = format!("geolb_archive_{name} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&key))
            .and_then(|v| v.trim().parse().ok())
    }

    /// Waits until it has stored everything up to stream sequence `seq`.
    pub async fn wait_stored(&self, seq: u64, timeout: Duration) {
        wait_for(
            &format!(
                "the archiver to store sequence {seq} (log {})",
                self.log.display()
            ),
            timeout,
            || async { (self.metric("last_sequence")? >= seq).then_some(()) },
        )
        .await
    }

    /// Its output so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Every telemetry line of the archive, with the key of its object, sorted
/// by sequence (duplicates kept, so that a test can see them).
pub async fn telemetry(archive: &Archive) -> Vec<(String, Value)> {
    let root = layout::telemetry_root(archive.url());
    let mut keys = archive.list(&root).await.expect("list the archive");
    keys.sort();
    let mut lines = Vec::new();
    for (key, _) in keys {
        let body = archive.get(&key).await.expect("read an object");
        for line in decode(&body).expect("gzip'ed NDJSON") {
            lines.push((key.clone(), line));
        }
    }
    lines.sort_by_key(|(_, l)| l["seq"].as_u64().unwrap_or(0));
    lines
}

/// Checks that the archive holds sequences `1..=last` exactly once each,
/// each object's lines in order, and no two objects overlapping.
pub fn assert_once_in_order(lines: &[(String, Value)], last: u64) {
    let seqs: Vec<u64> = lines
        .iter()
        .map(|(_, l)| l["seq"].as_u64().unwrap())
        .collect();
    let dupes: Vec<u64> = seqs
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    assert!(dupes.is_empty(), "archived twice: {dupes:?}");
    let want: Vec<u64> = (1..=last).collect();
    if seqs != want {
        let missing: Vec<u64> = want.iter().filter(|s| !seqs.contains(s)).copied().collect();
        panic!(
            "archive holds {} of {last} messages; missing {missing:?}",
            seqs.len()
        );
    }
    let mut ranges: Vec<(u64, u64)> = lines
        .iter()
        .filter_map(|(key, _)| layout::batch_range(key))
        .collect();
    ranges.sort();
    ranges.dedup();
    for w in ranges.windows(2) {
        assert!(
            w[0].1 < w[1].0,
            "batches overlap: {:?} and {:?}",
            w[0],
            w[1]
        );
    }
    for (key, line) in lines {
        let (first, end) = layout::batch_range(key).expect("a telemetry key");
        let seq = line["seq"].as_u64().unwrap();
        assert!(
            first <= seq && seq <= end,
            "{seq} is outside its object {key}"
        );
    }
}
