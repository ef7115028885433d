//! `ack_latency_status_p50_us` / `_p99_us`: sequential `status` commands through the
//! coordinator's request path (`Control::request`) to one release agent on a
//! loopback control plane; and `raw_request_p50_us` / `_p99_us`: plain async-nats
//! request/reply against an echo task in this process, the floor under the former.

use crate::agents::{connect, wait_answering, Bench};
use crate::report::Report;
use crate::stats::{percentile, us};
use futures::StreamExt;
use geolb_proto::{Command, Request};
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
    let control = connect(&url).await?;
    wait_answering(&control, "lat-1", Duration::from_secs(10)).await?;

    let control = &control;
    let samples = sample(move || async move {
        let reply = control.request("lat-1", &Request::Status, TIMEOUT).await?;
        anyhow::ensure!(reply.ok, "status failed: {:?}", reply.error);
        Ok(())
    })
    .await?;
    add_percentiles(
        report,
        "ack_latency_status",
        &samples,
        [Some(P50_TARGET_US), Some(P99_TARGET_US)],
        "Control::request(status) to a release agent, loopback",
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
