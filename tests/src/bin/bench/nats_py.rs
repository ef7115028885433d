//! The third-party peer of `ack_latency`: nats-py (`make tools` installs it in
//! `.tools/nats-py/<version>/venv`), as a ten-line responder and as the client
//! that times requests from outside. Both scripts are compiled in and run
//! with `python -c`.

use anyhow::Context as _;
use geolb_tests::tools::repo_root;
use geolb_tests::ProcessGuard;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The pinned nats-py (the Makefile's `NATS_PY_VERSION`).
pub const VERSION: &str = "2.16.0";
/// The responder: subscribe and echo.
const RESPONDER: &str = include_str!("nats_py/responder.py");
/// The timing client.
const TIMER: &str = include_str!("nats_py/timer.py");

/// The venv's python, or what to run when nats-py is not installed.
pub fn python() -> anyhow::Result<PathBuf> {
    let python = repo_root()
        .join(".tools/nats-py")
        .join(VERSION)
        .join("venv/bin/python");
    anyhow::ensure!(
        python.is_file(),
        "nats-py {VERSION} is not installed ({} is missing); run `make tools` \
         (scripts/install-nats-py.sh {VERSION})",
        python.display()
    );
    Ok(python)
}

/// Starts the responder on `subject` of the server at `url`.
pub fn responder(url: &str, subject: &str) -> anyhow::Result<ProcessGuard> {
    let mut cmd = std::process::Command::new(python()?);
    cmd.args(["-c", RESPONDER, url, subject])
        .stdout(Stdio::null());
    ProcessGuard::spawn("nats-py responder", &mut cmd).context("start the nats-py responder")
}

/// One destination of the timing client.
#[derive(Debug, Serialize)]
pub struct Target {
    /// The name its samples come back under.
    pub name: String,
    /// Where requests go.
    pub subject: String,
    /// Request `i` carries `payloads[i % len]`.
    pub payloads: Vec<String>,
    /// The reply is an agent's JSON ack that must say `"ok": true`.
    pub ok: bool,
}

#[derive(Serialize)]
struct Spec<'a> {
    url: &'a str,
    warmup: usize,
    samples: usize,
    targets: &'a [Target],
}

/// Runs the timing client: `warmup` then `samples` sequential requests to
/// every target in turn; the timed round trips of each target by name.
pub async fn time(
    url: &str,
    warmup: usize,
    samples: usize,
    targets: &[Target],
) -> anyhow::Result<HashMap<String, Vec<Duration>>> {
    let spec = serde_json::to_vec(&Spec {
        url,
        warmup,
        samples,
        targets,
    })?;
    let mut child = tokio::process::Command::new(python()?)
        .args(["-c", TIMER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("start the nats-py timing client")?;
    let mut stdin = child.stdin.take().context("the timer's stdin")?;
    stdin.write_all(&spec).await?;
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .context("the nats-py timing client took more than 300 s")??;
    anyhow::ensure!(
        out.status.success(),
        "the nats-py timing client failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let timed: HashMap<String, Vec<f64>> =
        serde_json::from_slice(&out.stdout).context("the timing client's output")?;
    Ok(timed
        .into_iter()
        .map(|(name, us)| {
            let samples = us.into_iter().map(|u| Duration::from_secs_f64(u / 1e6));
            (name, samples.collect())
        })
        .collect())
}
