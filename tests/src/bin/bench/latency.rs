//! Acks measured from outside: a third-party nats-py client ([`nats_py`])
//! times [`SAMPLES`] sequential requests to each of, taking turns on every
//! round so all see the same machine and the same control-plane server:
//! - `ack_latency_status_*`: `status` to a release agent;
//! - `ack_latency_signed_*`: `status` signed (ed25519 nkey, one command each)
//!   to a release agent started with `--trust`, which verifies it, checks the
//!   window and remembers the id;
//! - `ack_latency_nats_py_*`: a ten-line nats-py responder, the simplest peer;
//! - `raw_request_*`: an async-nats echo task in this process, the floor.
//!
//! The targets (issue 13) are ratios to the nats-py responder: p50 at most
//! 0.8x, p99 at most 1.0x, and signing within 100 us of unsigned.

use crate::agents::{connect, wait_answering, Bench};
use crate::nats_py::{self, Target};
use crate::report::Report;
use crate::stats::{percentile, us};
use anyhow::Context as _;
use futures::StreamExt;
use geolb_proto::signing::{Signer, DEFAULT_VALIDITY};
use geolb_proto::{subject, Command, Request, Verb};
use geolb_tests::agent::AgentBuilder;
use geolb_tests::wait::Backoff;
use geolb_tests::{NatsServer, ServerConfig};
use std::time::{Duration, Instant};

/// Requests sent to each before timing starts.
const WARMUP: usize = 50;
/// Timed requests to each.
const SAMPLES: usize = 1000;
/// An agent's ack p50 / p99 against the nats-py responder's, at most.
const P50_RATIO_TARGET: f64 = 0.8;
const P99_RATIO_TARGET: f64 = 1.0;
/// Signed p50 minus unsigned p50, at most.
const SIGNING_COST_TARGET_US: f64 = 100.0;
/// The subjects of the nats-py responder and of the Rust echo.
const NATS_PY_SUBJECT: &str = "geolb.bench.nats-py";
const ECHO_SUBJECT: &str = "geolb.bench.echo";
/// What the profile found and what was changed, printed with the figures.
const FINDING: &str = "profile (callgrind and perf stat on the release agent \
under 1,000 sequential status from nats-py): about 78,000 instructions and 55 us \
of CPU a request, spread over serde_json encoding the reply (16 %, byte-wise \
appends left uninlined at opt-level \"z\"), async-nats's connection handler \
(22 %), a task spawned, polled and dropped per request (about 25 %) and two JSON \
parses of the body (13 %); the syscalls were already minimal (one writev, two \
recvfrom, one epoll_wait a request: no flush to save) and no span or log is on \
the path. Changed: async-nats, tokio, serde_json, bytes and geolb-proto at \
opt-level 3 (the shipped static agent 7.74 MiB, was 7.48), status answered inline in the service \
loop, a signed command's body decoded once: about 42,000 instructions and 30 us a \
request";

/// The four targets, timed by nats-py against one control plane.
pub async fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
    nats_py::python()?;
    let server = NatsServer::start(bench.nats_version, ServerConfig::default().jetstream());
    let url = server.client_url();
    let _agent = bench.spawn_agent("lat-1", "lon", &url, "1s", "5s")?;
    let signer = Signer::generate();
    let _signed_agent = AgentBuilder::new("lat-2", "lon")
        .intervals("1s", "5s")
        .arg("--role")
        .arg("client")
        .arg("--trust")
        .arg(signer.public_key())
        .control(&url)
        .quiet()
        .try_spawn_bin(&bench.agent, &["sleep", "3600"])
        .with_context(|| format!("spawn {} for agent lat-2", bench.agent.display()))?;
    let control = connect(&url).await?;
    let signed = connect(&url)
        .await?
        .with_signer(Some(signer.clone()), DEFAULT_VALIDITY);
    wait_answering(&control, "lat-1", Duration::from_secs(10)).await?;
    wait_answering(&signed, "lat-2", Duration::from_secs(10)).await?;
    let mut responder = nats_py::responder(&url, NATS_PY_SUBJECT)?;
    let client = async_nats::connect(&url).await?;
    wait_echoing(&client, &mut responder).await?;
    let echo = tokio::spawn(echo(client.clone()));
    client.flush().await?;

    let status = String::from_utf8(bytes_of_status())?;
    let signed_status = (0..WARMUP + SAMPLES)
        .map(|i| {
            let command = Command::new(format!("bench-signed-{i}"), &Request::Status);
            let body = signer.sign(command, "lat-2", Verb::Status, DEFAULT_VALIDITY);
            String::from_utf8(body)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let target = |name: &str, subject: String, payloads: Vec<String>, ok: bool| Target {
        name: name.to_string(),
        subject,
        payloads,
        ok,
    };
    let targets = [
        target(
            "status",
            subject::command("lat-1", Verb::Status),
            vec![status.clone()],
            true,
        ),
        target(
            "signed",
            subject::command("lat-2", Verb::Status),
            signed_status,
            true,
        ),
        target(
            "nats_py",
            NATS_PY_SUBJECT.into(),
            vec![status.clone()],
            false,
        ),
        target("raw", ECHO_SUBJECT.into(), vec![status], false),
    ];
    let timed = nats_py::time(&url, WARMUP, SAMPLES, &targets).await;
    echo.abort();
    let timed = timed?;
    let get = |name: &str| {
        timed
            .get(name)
            .filter(|s| s.len() == SAMPLES)
            .with_context(|| format!("the timing client returned no {SAMPLES} samples of {name}"))
    };
    let (plain, with_signing, peer, floor) =
        (get("status")?, get("signed")?, get("nats_py")?, get("raw")?);
    let detail = |what: &str| format!("{what}; timed by nats-py {}, loopback", nats_py::VERSION);
    let plain_p = add_percentiles(
        report,
        "ack_latency_status",
        plain,
        &detail("status to a release agent"),
    );
    let signed_p = add_percentiles(
        report,
        "ack_latency_signed",
        with_signing,
        &detail("status signed (one ed25519 command each) to a release agent with --trust"),
    );
    let peer_p = add_percentiles(
        report,
        "ack_latency_nats_py",
        peer,
        &detail("a ten-line nats-py responder (echo), the simplest peer"),
    );
    let floor_p = add_percentiles(
        report,
        "raw_request",
        floor,
        &detail("an async-nats echo task in the bench process, the floor"),
    );
    println!(
        "  side by side (p50 / p99 us): status {:.0} / {:.0} | signed {:.0} / {:.0} | nats-py responder {:.0} / {:.0} | raw floor {:.0} / {:.0}",
        plain_p[0], plain_p[1], signed_p[0], signed_p[1], peer_p[0], peer_p[1], floor_p[0], floor_p[1]
    );
    for (name, of) in [("status", plain_p), ("signed", signed_p)] {
        for (i, (p, target)) in [(50, P50_RATIO_TARGET), (99, P99_RATIO_TARGET)]
            .into_iter()
            .enumerate()
        {
            report.add(
                &format!("ack_latency_{name}_p{p}_vs_nats_py"),
                of[i] / peer_p[i],
                "x",
                Some(target),
                format!("ack_latency_{name}_p{p}_us / ack_latency_nats_py_p{p}_us"),
            );
        }
    }
    report.add(
        "ack_latency_signing_cost_us",
        signed_p[0] - plain_p[0],
        "us",
        Some(SIGNING_COST_TARGET_US),
        "ack_latency_signed_p50_us - ack_latency_status_p50_us",
    );
    println!("  finding: {FINDING}");
    Ok(())
}

/// Answers every request on [`ECHO_SUBJECT`] with its own payload.
async fn echo(client: async_nats::Client) {
    let Ok(mut subscription) = client.subscribe(ECHO_SUBJECT).await else {
        return;
    };
    while let Some(message) = subscription.next().await {
        if let Some(reply) = message.reply {
            let _ = client.publish(reply, message.payload).await;
        }
    }
}

/// Waits until the nats-py responder answers, or fails when it has exited.
async fn wait_echoing(
    client: &async_nats::Client,
    responder: &mut geolb_tests::ProcessGuard,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut backoff = Backoff::default();
    loop {
        let ask = client.request(NATS_PY_SUBJECT, "ping".into());
        if tokio::time::timeout(Duration::from_millis(500), ask)
            .await
            .is_ok_and(|r| r.is_ok())
        {
            return Ok(());
        }
        if let Some(status) = responder.try_status() {
            anyhow::bail!("the nats-py responder exited ({status}) before answering");
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the nats-py responder did not answer within 20 s"
        );
        tokio::time::sleep(backoff.next().unwrap_or_default()).await;
    }
}

/// Adds `<prefix>_p50_us` and `<prefix>_p99_us`; returns both.
fn add_percentiles(
    report: &mut Report,
    prefix: &str,
    samples: &[Duration],
    what: &str,
) -> [f64; 2] {
    let max = samples.iter().max().copied().unwrap_or_default();
    [50.0, 99.0].map(|p| {
        let value = percentile(samples, p).map(us).unwrap_or_default();
        report.add(
            &format!("{prefix}_p{p}_us"),
            value,
            "us",
            None,
            format!(
                "{what}; {} sequential after {WARMUP} warm-up, max {:.0} us",
                samples.len(),
                us(max)
            ),
        );
        value
    })
}

/// An encoded `status` command, the payload the coordinator sends.
fn bytes_of_status() -> Vec<u8> {
    Command::new("bench-0000000000000000-1", &Request::Status).encode()
}
