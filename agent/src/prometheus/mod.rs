//! `--prometheus-listen ADDR`: the agent's figures in Prometheus text format
//! on `GET /metrics`, for Fly.io's `[metrics]` scraper or any Prometheus.
//!
//! Each scrape reads them fresh: the agent's status (child state, replicas,
//! restarts), its outbox, host and process CPU and memory (sysinfo, as in the
//! control-plane metrics), and for a server the monitoring endpoints
//! (`/healthz`, `/varz`, `/routez`, `/gatewayz`). Every sample carries the
//! agent's identity as labels (`agent`, `region`, `role`). It works with or
//! without a control plane.
//!
//! `GET /healthz` is the agent's own health for Fly's checks: 200 while the
//! control plane is connected (or none is configured), 503 before it was
//! first reached and once it has been away past `--control-alarm`, with the
//! reason in one line (see [`crate::control::health`]).
//!
//! The HTTP side is a few lines of HTTP/1.1 on a tokio `TcpListener`: one
//! request per connection, answered with `Connection: close`; at most
//! [`MAX_CONNECTIONS`] at once, each bounded by a timeout. [`render`] is pure.

mod text;

pub use text::render;

use crate::commands::Context;
use crate::control::health::View;
use crate::control::telemetry::Sampler;
use geolb_proto::{AgentStatus, HostMetrics, OutboxStats, ProcessMetrics, ServerMetrics};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Requests answered at once; more connections are closed at once.
pub const MAX_CONNECTIONS: usize = 16;
/// Longest request head read.
const MAX_REQUEST: usize = 8 * 1024;
/// Time one connection may take, request and answer.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Produces the body of one scrape.
pub type Scrape = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = String> + Send>> + Send + Sync>;
/// Answers `/healthz`: `Ok` is 200, `Err` 503, each with a line of text.
pub type Check = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

/// Everything one scrape shows (the input of [`render`]).
#[derive(Debug, Clone)]
pub struct Figures {
    /// The agent's status: identity, child state, replicas, restarts.
    pub status: AgentStatus,
    /// The event outbox.
    pub outbox: OutboxStats,
    /// The host.
    pub host: HostMetrics,
    /// The agent process.
    pub agent: Option<ProcessMetrics>,
    /// Each running replica.
    pub children: Vec<ProcessMetrics>,
    /// For a server, its monitoring endpoints.
    pub server: Option<ServerMetrics>,
    /// The control-plane connection, when there is a control plane.
    pub control: Option<View>,
}

/// With `listen`, binds it (an error now if it cannot) and serves `/metrics` on `tracker` until `token` is cancelled.
pub async fn start(
    listen: Option<SocketAddr>,
    ctx: Arc<Context>,
    tracker: &TaskTracker,
    token: CancellationToken,
) -> anyhow::Result<()> {
    let Some(addr) = listen else {
        return Ok(());
    };
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {addr} for Prometheus: {e}; change --prometheus-listen")
    })?;
    tracing::info!(addr = %addr, "Serving Prometheus metrics on /metrics.");
    let sampler = Arc::new(Mutex::new(Sampler::new()));
    let health = ctx.control.clone();
    let check: Check = Arc::new(move || match &health {
        Some(health) => health.view().check(),
        None => Ok("no control plane configured".to_string()),
    });
    let scrape: Scrape = Arc::new(move || {
        let (ctx, sampler) = (ctx.clone(), sampler.clone());
        Box::pin(async move { render(&figures(&ctx, &sampler).await) })
    });
    tracker.spawn(serve(listener, scrape, check, token));
    Ok(())
}

/// Reads the figures of one scrape.
async fn figures(ctx: &Context, sampler: &Mutex<Sampler>) -> Figures {
    let server = match &ctx.monitor {
        Some(monitor) => Some(monitor.server_metrics().await),
        None => None,
    };
    let pids = ctx.handle.snapshot().pids();
    let (host, agent, children) = match sampler.lock() {
        Ok(mut sampler) => sampler.sample(&pids),
        Err(poisoned) => poisoned.into_inner().sample(&pids),
    };
    Figures {
        status: ctx.status(),
        outbox: ctx.outbox.stats(),
        host,
        agent,
        children,
        server,
        control: ctx.control.as_ref().map(|health| health.view()),
    }
}

/// Answers connections on `listener` until `token` is cancelled.
pub async fn serve(listener: TcpListener, scrape: Scrape, check: Check, token: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            biased;
            _ = token.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "Prometheus connection not accepted.");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let (scrape, check) = (scrape.clone(), check.clone());
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, answer(stream, scrape, check)).await;
            drop(slot);
        });
    }
}

/// Reads one request and writes its answer.
async fn answer(mut stream: TcpStream, scrape: Scrape, check: Check) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let (status, body) = match route(&head) {
        Route::Metrics => ("200 OK", scrape().await),
        Route::Health => match check() {
            Ok(line) => ("200 OK", format!("{line}\n")),
            Err(line) => ("503 Service Unavailable", format!("{line}\n")),
        },
        Route::NotFound => (
            "404 Not Found",
            "Not found; try /metrics or /healthz\n".to_string(),
        ),
        Route::BadMethod => ("405 Method Not Allowed", "Only GET\n".to_string()),
        Route::Bad => ("400 Bad Request", "Bad request\n".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics,
    Health,
    NotFound,
    BadMethod,
    Bad,
}

fn route(head: &[u8]) -> Route {
    let text = String::from_utf8_lossy(head);
    let mut words = text.lines().next().unwrap_or_default().split_whitespace();
    let (Some(method), Some(target), Some(version)) = (words.next(), words.next(), words.next())
    else {
        return Route::Bad;
    };
    if !version.starts_with("HTTP/1.") {
        return Route::Bad;
    }
    if method != "GET" {
        return Route::BadMethod;
    }
    match target.split('?').next() {
        Some("/metrics") => Route::Metrics,
        Some("/healthz") => Route::Health,
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests;
