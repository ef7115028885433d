//! Group `archive`: `geolb archive` (release) against the local S3 server
//! (SeaweedFS on loopback). First a default-lab run with `[archive]` (lab
//! up, a region outage, lab down): the bytes stored per message and the
//! compression ratio of its telemetry. Then that telemetry, replayed as a
//! backlog of [`BACKLOG`] messages into a fresh control plane, drained by the
//! archiver with its default batching: messages archived per second, side
//! by side with reading the same backlog without storing it, and the
//! archiver's peak RSS.

use crate::report::Report;
use anyhow::Context as _;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use bytes::Bytes;
use futures::StreamExt;
use geolb::archive::batch::decode;
use geolb::archive::layout;
use geolb::archive::stream::{self, StreamLimits};
use geolb::Control;
use geolb_tests::ports::LAB_PORTS;
use geolb_tests::s3::{weed_bin, S3Server, BUCKET};
use geolb_tests::tools::{release_bin, tools_dir};
use geolb_tests::{default_version, free_port, procfs, NatsServer, ProcessGuard, ServerConfig};
use nix::sys::signal::Signal;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Messages in the backlog the archiver drains.
const BACKLOG: usize = 200_000;

/// Runs the group.
pub async fn run(report: &mut Report) -> anyhow::Result<()> {
    let weed =
        weed_bin().context("SeaweedFS is not installed in .tools/seaweedfs; run `make tools`")?;
    let geolb = release_bin("geolb").map_err(anyhow::Error::msg)?;
    let s3 = S3Server::start(&weed).await;
    let sample = lab_run(&geolb, &s3, report).await?;
    anyhow::ensure!(!sample.is_empty(), "the lab run archived no telemetry");
    drain(&geolb, &s3, &sample, report).await
}

/// A lab directory brought down on drop.
struct Lab {
    geolb: PathBuf,
    dir: PathBuf,
}

impl Lab {
    fn geolb(&self, args: &[&str]) -> anyhow::Result<std::process::Output> {
        Command::new(&self.geolb)
            .args(args)
            .env("GEOLB_LAB_DIR", self.dir.join("lab"))
            .env("GEOLB_SERVERS_DIR", tools_dir())
            .env("AWS_ACCESS_KEY_ID", geolb_tests::s3::KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", geolb_tests::s3::SECRET)
            .output()
            .with_context(|| format!("run geolb {args:?}"))
    }

    fn ok(&self, args: &[&str]) -> anyhow::Result<()> {
        let out = self.geolb(args)?;
        anyhow::ensure!(
            out.status.success(),
            "geolb {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.geolb(&["lab", "down"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The default lab with `[archive]`, one region outage; the figures of what
/// it archived, and its telemetry as (subject, payload).
async fn lab_run(
    geolb: &Path,
    s3: &S3Server,
    report: &mut Report,
) -> anyhow::Result<Vec<(String, Bytes)>> {
    let dir = std::env::temp_dir().join(format!("geolb-bench-archive-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let lab = Lab {
        geolb: geolb.to_path_buf(),
        dir,
    };
    let config = lab.dir.join("lab.toml");
    std::fs::write(
        &config,
        format!(
            "ports_base = {}\n[archive]\nto = \"s3://{BUCKET}/lab\"\nendpoint = \"{}\"\nflush_interval = \"5s\"\n",
            LAB_PORTS.start + 600,
            s3.endpoint()
        ),
    )?;
    println!("  default lab with [archive]: up, dc-outage lon (kill, 5 s), down");
    let started = Instant::now();
    lab.ok(&["lab", "up", "--config", config.to_str().unwrap_or_default()])?;
    lab.ok(&[
        "scenario",
        "run",
        "dc-outage",
        "--region",
        "lon",
        "--mode",
        "kill",
        "--duration",
        "5s",
    ])?;
    lab.ok(&["lab", "down"])?;
    let run_s = started.elapsed().as_secs_f64();

    let archive = s3.archive("lab");
    let keys = archive.list(&layout::telemetry_root(archive.url())).await?;
    let (mut stored, mut ndjson, mut payload) = (0u64, 0u64, 0u64);
    let mut sample = Vec::new();
    for (key, size) in &keys {
        let body = archive.get(key).await?;
        stored += size;
        let lines = decode(&body)?;
        for line in lines {
            ndjson += serde_json::to_vec(&line)?.len() as u64 + 1;
            let data = serde_json::to_vec(&line["data"])?;
            payload += data.len() as u64;
            sample.push((
                line["subject"].as_str().unwrap_or_default().to_string(),
                Bytes::from(data),
            ));
        }
    }
    let messages = sample.len() as f64;
    anyhow::ensure!(messages > 0.0, "nothing archived");
    report.add(
        "archive_lab_bytes_per_message",
        stored as f64 / messages,
        "B",
        None,
        format!(
            "default lab, {messages} messages in {} objects, {stored} bytes stored; payloads average {:.0} B (a {run_s:.0} s run)",
            keys.len(),
            payload as f64 / messages
        ),
    );
    report.add_at_least(
        "archive_lab_compression_ratio",
        ndjson as f64 / stored as f64,
        "x",
        None,
        format!("{ndjson} bytes of NDJSON gzip'ed to {stored}"),
    );
    Ok(sample)
}

/// [`BACKLOG`] messages cycled from `sample` into a fresh control plane.
async fn backlog(sample: &[(String, Bytes)]) -> anyhow::Result<(NatsServer, Control)> {
    let nats = NatsServer::start(default_version(), ServerConfig::default().jetstream());
    let client = async_nats::connect(nats.client_url()).await?;
    let control = Control::from_client(client.clone(), nats.client_url());
    let limits = StreamLimits {
        max_bytes: 4 << 30,
        ..StreamLimits::default()
    };
    stream::ensure(&control, limits, None).await?;
    let js = async_nats::jetstream::new(client);
    let mut acks = Vec::with_capacity(1000);
    for i in 0..BACKLOG {
        let (subject, payload) = &sample[i % sample.len()];
        acks.push(js.publish(subject.clone(), payload.clone()).await?);
        if acks.len() == 1000 {
            for ack in acks.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in acks {
        ack.await?;
    }
    Ok((nats, control))
}

/// Reads the whole backlog without storing it: the peer of the archiver's rate.
async fn read_only(control: &Control) -> anyhow::Result<f64> {
    let js = async_nats::jetstream::new(control.client().clone());
    let stream = js.get_stream(stream::STREAM).await?;
    let started = Instant::now();
    let consumer = stream.create_consumer(OrderedConfig::default()).await?;
    let mut messages = consumer.messages().await?;
    let mut n = 0;
    while let Some(message) = tokio::time::timeout(Duration::from_secs(10), messages.next()).await?
    {
        message?;
        n += 1;
        if n == BACKLOG {
            break;
        }
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

async fn drain(
    geolb: &Path,
    s3: &S3Server,
    sample: &[(String, Bytes)],
    report: &mut Report,
) -> anyhow::Result<()> {
    println!(
        "  a backlog of {BACKLOG} lab messages, drained by `geolb archive` (10 MiB / 60 s batches)"
    );
    let (nats, control) = backlog(sample).await?;
    let read_rate = read_only(&control).await?;
    let metrics_port = free_port();
    let log = nats.dir().join("archiver.log");
    let file = std::fs::File::create(&log)?;
    let mut cmd = Command::new(geolb);
    cmd.args([
        "--control",
        &nats.client_url(),
        "archive",
        "--to",
        &format!("s3://{BUCKET}/drain"),
    ])
    .args([
        "--endpoint",
        &s3.endpoint(),
        "--metrics-listen",
        &format!("127.0.0.1:{metrics_port}"),
    ])
    .envs(s3.env())
    .stdout(file.try_clone()?)
    .stderr(file);
    let started = Instant::now();
    let mut proc = ProcessGuard::spawn("geolb archive", &mut cmd)?;
    let pid = proc.pid() as i32;
    let metric = |name: &str| -> Option<u64> {
        let (_, text) =
            geolb_tests::http::http_get(&format!("http://127.0.0.1:{metrics_port}/metrics"))
                .ok()?;
        let key = format!("geolb_archive_{name} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&key))
            .and_then(|v| v.trim().parse().ok())
    };
    let mut peak_rss = 0;
    loop {
        peak_rss = peak_rss.max(procfs::rss_kib(pid).unwrap_or(0));
        let taken = metric("messages_total").unwrap_or(0) + metric("held_messages").unwrap_or(0);
        if taken >= BACKLOG as u64 {
            break;
        }
        anyhow::ensure!(
            proc.try_status().is_none(),
            "the archiver stopped: {}",
            std::fs::read_to_string(&log)?
        );
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(300),
            "the archiver took over 5 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hwm = procfs::status_kib(pid, "VmHWM").unwrap_or(peak_rss);
    proc.signal(Signal::SIGTERM)?;
    let status = proc
        .wait_exit(Duration::from_secs(60))
        .await
        .context("the archiver did not exit")?;
    let elapsed = started.elapsed().as_secs_f64();
    let out = std::fs::read_to_string(&log)?;
    anyhow::ensure!(status.success(), "the archiver failed: {out}");
    anyhow::ensure!(
        out.contains(&format!("archived {BACKLOG} messages")),
        "the archiver did not store the whole backlog: {out}"
    );
    let rate = BACKLOG as f64 / elapsed;
    report.add_at_least(
        "archive_msgs_per_s",
        rate,
        "msg/s",
        None,
        format!(
            "{BACKLOG} default-lab messages, control plane to local S3 in {elapsed:.1} s (start to exit); reading them without storing: {read_rate:.0} msg/s"
        ),
    );
    report.add_at_least(
        "archive_read_only_msgs_per_s",
        read_rate,
        "msg/s",
        None,
        "the peer: the same backlog read by an ordered consumer, nothing stored",
    );
    report.add(
        "archive_rss_kib",
        hwm as f64,
        "KiB",
        None,
        format!("archiver VmHWM while draining (peak VmRSS sampled every 100 ms: {peak_rss} KiB)"),
    );
    Ok(())
}
