//! `inject_*`: a 16 MB nats-server binary (2.11.11) delivered over the
//! back channel. `geolb binary put` stores it on a control plane with
//! JetStream; 9, then 100 release agents (each supervising `sleep 3600`,
//! each with its own objects folder) are sent `upgrade --to obj:NAME
//! --prefetch` at once, and the time until every agent acked (it holds a
//! checked copy) is the delivery time. A second prefetch takes the local
//! copies (each read back and sha256-checked). Side by side, the peer:
//! copying the same file into as many folders on the local disk, with its
//! sha256, from this process (what the agents would do if the binary were
//! already on each machine's disk).

use crate::agents::{connect, kill_all, wait_answering, Bench};
use crate::report::Report;
use crate::stats::ms;
use anyhow::Context as _;
use geolb::cmd::fan_out;
use geolb_proto::{Request, UpgradeArgs};
use geolb_tests::agent::AgentBuilder;
use geolb_tests::{procfs, NatsServer, ProcessGuard, ServerConfig};
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The binary delivered: nats-server 2.11.11 (16.1 MiB).
const VERSION: &str = "2.11.11";
/// Object name.
const NAME: &str = "nats-2.11.11";
/// Fleet sizes.
const FLEETS: [usize; 2] = [9, 100];
/// How long one prefetch may take.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Measures each fleet size on a control plane of its own.
pub async fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    let binary = geolb_tests::nats_server_bin(VERSION);
    let root = std::env::temp_dir().join(format!("geolb-bench-inject-{}", std::process::id()));
    let mut outcome = Ok(());
    for agents in FLEETS {
        // `kill_all` ends every process of the run, the control plane too.
        let server = NatsServer::start(bench.nats_version, ServerConfig::default().jetstream());
        let mut guards = Vec::with_capacity(agents);
        outcome = fleet(bench, report, &server, &root, agents, &mut guards, &binary).await;
        let teardown = kill_all(guards);
        drop(server);
        println!(
            "  killed {agents} agents in {:.1} s",
            teardown.as_secs_f64()
        );
        let _ = std::fs::remove_dir_all(&root);
        if outcome.is_err() {
            break;
        }
    }
    bench.report_leftovers("agent, child or server");
    outcome
}

/// One fleet of `agents`: spawned, a cold prefetch, a warm one, the disk peer.
#[allow(clippy::too_many_arguments)]
async fn fleet(
    bench: &Bench,
    report: &mut Report,
    server: &NatsServer,
    root: &Path,
    agents: usize,
    guards: &mut Vec<ProcessGuard>,
    binary: &Path,
) -> anyhow::Result<()> {
    let url = &server.client_url();
    let control = &connect(url).await?;
    let size = std::fs::metadata(binary)?.len() as f64;
    let began = Instant::now();
    geolb::objects::put_binary(control, binary, Some(NAME)).await?;
    let put = began.elapsed();
    if agents == FLEETS[0] {
        report.add(
            "inject_put_ms",
            ms(put),
            "ms",
            None,
            format!("geolb binary put of nats-server {VERSION} ({size} bytes, {:.1} MiB): ELF check, --version, sha256, 128 KiB chunks", size / 1048576.0),
        );
    }
    let ids: Vec<String> = (0..agents).map(|i| format!("inj-{i:03}")).collect();
    for id in &ids {
        let objects = root.join("agents").join(id);
        let guard = AgentBuilder::new(id, "lon")
            .intervals("1s", "60s")
            .arg("--role")
            .arg("client")
            .arg("--objects-dir")
            .arg(objects.display().to_string())
            .control(url)
            .quiet()
            .try_spawn_bin(&bench.agent, &["sleep", "3600"])
            .with_context(|| format!("spawn agent {id}"))?;
        guards.push(guard);
    }
    for id in &ids {
        wait_answering(control, id, Duration::from_secs(60)).await?;
    }
    let cold = prefetch(control, &ids).await?;
    let hwm = guards
        .iter()
        .filter_map(|g| procfs::status_kib(g.pid() as i32, "VmHWM"))
        .max()
        .unwrap_or(0);
    let rate = size * agents as f64 / cold.as_secs_f64() / 1e6;
    report.add(
        &format!("inject_fetch_{agents}_ms"),
        ms(cold),
        "ms",
        None,
        format!("upgrade --to obj:{NAME} --prefetch to {agents} agents at once until every ack (each fetched, sha256-checked, kept): {rate:.0} MB/s in all; peak agent RSS (VmHWM) {hwm} KiB"),
    );
    let warm = prefetch(control, &ids).await?;
    report.add(
        &format!("inject_local_copy_{agents}_ms"),
        ms(warm),
        "ms",
        None,
        format!("the same prefetch again: {agents} agents take their local copy (read back and sha256-checked), nothing fetched"),
    );
    // The agents' copies go first: at 100 agents they are 1.7 GB of disk.
    let _ = std::fs::remove_dir_all(root.join("agents"));
    let disk = disk_copies(binary, &root.join("disk"), agents).await?;
    report.add(
        &format!("inject_disk_copy_{agents}_ms"),
        ms(disk),
        "ms",
        None,
        format!("peer: the file copied from the local disk into {agents} folders with its sha256, {agents} at once from one process (no network)"),
    );
    Ok(())
}

/// Sends the prefetch to every agent at once; the time until all acked ok.
async fn prefetch(control: &geolb::Control, ids: &[String]) -> anyhow::Result<Duration> {
    let request = Request::Upgrade(UpgradeArgs {
        to: format!("obj:{NAME}"),
        drain: true,
        timeout: None,
        grace: None,
        check: false,
        prefetch: true,
    });
    let began = Instant::now();
    let replies = fan_out(control, ids, &request, TIMEOUT).await;
    let took = began.elapsed();
    for (id, reply) in replies {
        let reply = reply.with_context(|| format!("agent {id}"))?;
        anyhow::ensure!(
            reply.ok,
            "agent {id} refused the prefetch: {:?}",
            reply.error
        );
    }
    Ok(took)
}

/// Copies `binary` into `count` folders under `dir`, all at once, each with
/// its sha256 computed while it is read.
async fn disk_copies(binary: &Path, dir: &Path, count: usize) -> anyhow::Result<Duration> {
    let began = Instant::now();
    let copies = (0..count).map(|i| {
        let (from, to) = (binary.to_path_buf(), dir.join(i.to_string()));
        tokio::task::spawn_blocking(move || copy_with_sha(&from, &to))
    });
    for copy in futures::future::join_all(copies).await {
        copy??;
    }
    Ok(began.elapsed())
}

fn copy_with_sha(from: &Path, folder: &PathBuf) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    std::fs::create_dir_all(folder)?;
    let mut input = std::fs::File::open(from)?;
    let mut output = std::fs::File::create(folder.join("nats-server"))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        output.write_all(&buf[..n])?;
    }
    output.sync_all()?;
    let _ = hasher.finalize();
    Ok(())
}
