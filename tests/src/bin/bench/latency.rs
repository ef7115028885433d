//! `ack_latency_status_p50_us` / `_p99_us`: sequential `status` commands through the
//! coordinator's request path (`Control::request`) to one release agent on a
//! loopback control plane; `ack_latency_signed_p50_us` / `_p99_us`: the same with
//! every command signed (ed25519 nkey) and the agent started with `--trust`, so it
//! verifies, checks the window and remembers the id; and `raw_request_p50_us` /
//! `_p99_us`: plain async-nats request/reply against an echo task in this process,
//! the floor under the former.

use crate::agents::{connect, wait_answering, Bench};
use crate::report::Report;
use crate::stats::{percentile, us};
use anyhow::Context as _;
use futures::StreamExt;
use geolb_proto::signing::{Signer, DEFAULT_VALIDITY};
use geolb_proto::{Command, Request};
use geolb_tests::agent::AgentBuilder;
use geolb_tests::{NatsServer, ServerConfig};
use std::future::Future;
use std::time::{Duration, Instant};

/// Requests sent before timing starts.
const WARMUP: usize = 50;
/// Timed requests.
const SAMPLES: usize = 1000;
/// Timeout of one request.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Targets.
const P50_TARGET_US: f64 = 300.0;
const P99_TARGET_US: f64 = 1000.0;
/// The echo subject of the baseline.
const ECHO_SUBJECT: &str = "geolb.bench.echo";

/// Measures both paths against one control plane.
pub async fn run(bench: &Bench, report: &mut Report) -> anyhow::Result<()> {
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
        .with_signer(Some(signer), DEFAULT_VALIDITY);
    wait_answering(&control, "lat-1", Duration::from_secs(10)).await?;
    wait_answering(&signed, "lat-2", Duration::from_secs(10)).await?;

    // Unsigned and signed requests alternate, so both see the same machine.
    let (control, signed) = (&control, &signed);
    let (plain, with_signing) = sample_pair(
        move || async move {
            let reply = control.request("lat-1", &Request::Status, TIMEOUT).await?;
            anyhow::ensure!(reply.ok, "status failed: {:?}", reply.error);
            Ok(())
        },
        move || async move {
            let reply = signed.request("lat-2", &Request::Status, TIMEOUT).await?;
            anyhow::ensure!(reply.ok, "signed status failed: {:?}", reply.error);
            Ok(())
        },
    )
    .await?;
    add_percentiles(
        report,
        "ack_latency_status",
        &plain,
        [Some(P50_TARGET_US), Some(P99_TARGET_US)],
        "Control::request(status) to a release agent, loopback",
    );
    add_percentiles(
        report,
        "ack_latency_signed",
        &with_signing,
        [Some(P50_TARGET_US), Some(P99_TARGET_US)],
        "as ack_latency_status (interleaved with it), every command signed by the coordinator and verified by the agent (--trust)",
    );

    let responder = async_nats::connect(&url).await?;
    let mut subscription = responder.subscribe(ECHO_SUBJECT).await?;
    responder.flush().await?;
    let echo = tokio::spawn(async move {
        while let Some(message) = subscription.next().await {
            if let Some(reply) = message.reply {
                let _ = responder.publish(reply, message.payload).await;
            }
        }
    });
    let requester = async_nats::connect(&url).await?;
    let (requester, payload) = (&requester, &bytes_of_status());
    let samples = sample(move || async move {
        requester
            .request(ECHO_SUBJECT, payload.clone().into())
            .await?;
        Ok(())
    })
    .await;
    echo.abort();
    add_percentiles(
        report,
        "raw_request",
        &samples?,
        [None, None],
        "async-nats request to an echo task in this process, same payload, loopback",
    );
    Ok(())
}

/// Runs `one` [`WARMUP`] times, then times it [`SAMPLES`] times in sequence.
async fn sample<F, Fut>(mut one: F) -> anyhow::Result<Vec<Duration>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    for _ in 0..WARMUP {
        one().await?;
    }
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let started = Instant::now();
        one().await?;
        samples.push(started.elapsed());
    }
    Ok(samples)
}

/// Like [`sample`] for two operations, alternating `a` and `b` on every round.
async fn sample_pair<A, FutA, B, FutB>(
    mut a: A,
    mut b: B,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)>
where
    A: FnMut() -> FutA,
    FutA: Future<Output = anyhow::Result<()>>,
    B: FnMut() -> FutB,
    FutB: Future<Output = anyhow::Result<()>>,
{
    for _ in 0..WARMUP {
        a().await?;
        b().await?;
    }
    let (mut of_a, mut of_b) = (Vec::with_capacity(SAMPLES), Vec::with_capacity(SAMPLES));
    for _ in 0..SAMPLES {
        let started = Instant::now();
        a().await?;
        of_a.push(started.elapsed());
        let started = Instant::now();
        b().await?;
        of_b.push(started.elapsed());
    }
    Ok((of_a, of_b))
}

/// Adds `<prefix>_p50_us` and `<prefix>_p99_us`.
fn add_percentiles(
    report: &mut Report,
    prefix: &str,
    samples: &[Duration],
    targets: [Option<f64>; 2],
    what: &str,
) {
    let max = samples.iter().max().copied().unwrap_or_default();
    for (p, target) in [50.0, 99.0].into_iter().zip(targets) {
        let value = percentile(samples, p).map(us).unwrap_or_default();
        report.add(
            &format!("{prefix}_p{p}_us"),
            value,
            "us",
            target,
            format!(
                "{what}; {} sequential after {WARMUP} warm-up, max {:.0} us",
                samples.len(),
                us(max)
            ),
        );
    }
}

/// An encoded `status` command, the payload the coordinator sends.
fn bytes_of_status() -> Vec<u8> {
    Command::new("bench-0000000000000000-1", &Request::Status).encode()
}
