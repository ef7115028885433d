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
//! The HTTP side is a few lines of HTTP/1.1 on a tokio `TcpListener`: one
//! request per connection, answered with `Connection: close`; at most
//! [`MAX_CONNECTIONS`] at once, each bounded by a timeout. [`render`] is pure.

use crate::commands::Context;
use crate::control::telemetry::Sampler;
use geolb_proto::{
    AgentStatus, ChildState, HostMetrics, OutboxStats, ProcessMetrics, ServerMetrics,
};
use std::fmt::{Display, Write as _};
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
    let scrape: Scrape = Arc::new(move || {
        let (ctx, sampler) = (ctx.clone(), sampler.clone());
        Box::pin(async move { render(&figures(&ctx, &sampler).await) })
    });
    tracker.spawn(serve(listener, scrape, token));
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
    }
}

/// Answers connections on `listener` until `token` is cancelled.
pub async fn serve(listener: TcpListener, scrape: Scrape, token: CancellationToken) {
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
        let scrape = scrape.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, answer(stream, scrape)).await;
            drop(slot);
        });
    }
}

/// Reads one request and writes its answer.
async fn answer(mut stream: TcpStream, scrape: Scrape) -> std::io::Result<()> {
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
        Route::NotFound => ("404 Not Found", "Not found; try /metrics\n".to_string()),
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
        _ => Route::NotFound,
    }
}

/// The Prometheus type of a value that goes up and down.
const GAUGE: &str = "gauge";
/// The Prometheus type of a value that only goes up.
const COUNTER: &str = "counter";

/// Every child state, so a state's gauge also shows 0 when it is not the current one.
const STATES: [ChildState; 8] = [
    ChildState::Running,
    ChildState::Draining,
    ChildState::Stopping,
    ChildState::Stopped,
    ChildState::Exited,
    ChildState::Backoff,
    ChildState::Paused,
    ChildState::Unknown,
];

/// The figures in Prometheus text format (pure).
pub fn render(f: &Figures) -> String {
    let s = &f.status;
    let mut t = Text::new(&s.id, &s.region, s.role.as_str());
    t.family(
        "geolb_agent_info",
        GAUGE,
        "The agent, its version and the child's.",
    );
    let version = s.version.as_deref().unwrap_or("");
    let info = [
        ("host", s.host.as_str()),
        ("agent_version", &s.agent_version),
        ("program", &s.program),
        ("version", version),
    ];
    t.sample("geolb_agent_info", &info, 1);
    t.gauge(
        "geolb_agent_uptime_seconds",
        "Seconds since the agent started.",
        s.uptime_ms as f64 / 1000.0,
    );
    t.family(
        "geolb_child_state",
        GAUGE,
        "1 for the child's current state (over all replicas).",
    );
    for state in STATES {
        t.sample(
            "geolb_child_state",
            &[("state", state.as_str())],
            u8::from(s.state == state),
        );
    }
    t.counter(
        "geolb_child_restarts_total",
        "Restarts by policy, over all replicas.",
        s.restarts,
    );
    t.gauge(
        "geolb_child_replicas_desired",
        "Replicas wanted.",
        s.desired_replicas,
    );
    let running = s
        .replicas
        .iter()
        .filter(|r| r.state == ChildState::Running)
        .count();
    t.gauge("geolb_child_replicas_running", "Replicas running.", running);
    t.family(
        "geolb_replica_restarts_total",
        COUNTER,
        "Restarts by policy of one replica.",
    );
    for r in &s.replicas {
        t.sample(
            "geolb_replica_restarts_total",
            &[("replica", &r.index.to_string())],
            r.restarts,
        );
    }
    t.gauge(
        "geolb_outbox_buffered",
        "Events waiting for the control plane.",
        f.outbox.buffered,
    );
    t.counter(
        "geolb_outbox_dropped_total",
        "Events dropped, the outbox full.",
        f.outbox.dropped,
    );
    let h = &f.host;
    t.gauge(
        "geolb_host_cpu_percent",
        "Host CPU use over all cores, in percent.",
        float(h.cpu_pct),
    );
    t.gauge("geolb_host_cpus", "Logical CPUs of the host.", h.cpus);
    t.gauge(
        "geolb_host_memory_used_bytes",
        "Host memory in use.",
        h.mem_used_bytes,
    );
    t.gauge(
        "geolb_host_memory_total_bytes",
        "Host memory in all.",
        h.mem_total_bytes,
    );
    t.gauge("geolb_host_load1", "Host one-minute load average.", h.load1);
    processes(&mut t, f.agent.as_ref(), &f.children);
    if let Some(server) = &f.server {
        nats(&mut t, server);
    }
    t.out
}

/// CPU and memory of the agent (`process="agent"`) and of each child
/// (`process="child",replica="N"`).
fn processes(t: &mut Text, agent: Option<&ProcessMetrics>, children: &[ProcessMetrics]) {
    let all: Vec<(Vec<(&str, String)>, &ProcessMetrics)> = agent
        .map(|p| (vec![("process", "agent".to_string())], p))
        .into_iter()
        .chain(children.iter().map(|p| {
            let replica = p.replica.unwrap_or(0).to_string();
            (
                vec![("process", "child".to_string()), ("replica", replica)],
                p,
            )
        }))
        .collect();
    let cpu = "CPU use of the agent or a child, in percent of one core.";
    t.family("geolb_process_cpu_percent", GAUGE, cpu);
    for (labels, p) in &all {
        t.sample(
            "geolb_process_cpu_percent",
            &borrow(labels),
            float(p.cpu_pct),
        );
    }
    let rss = "Resident memory of the agent or a child.";
    t.family("geolb_process_resident_memory_bytes", GAUGE, rss);
    for (labels, p) in &all {
        t.sample(
            "geolb_process_resident_memory_bytes",
            &borrow(labels),
            p.rss_bytes,
        );
    }
}

/// The server's monitoring endpoints; only health when they did not answer.
fn nats(t: &mut Text, m: &ServerMetrics) {
    let up = u8::from(m.error.is_none());
    t.gauge(
        "geolb_nats_monitor_up",
        "1 when the monitoring endpoints answered.",
        up,
    );
    t.gauge(
        "geolb_nats_healthy",
        "1 when /healthz answers 200.",
        u8::from(m.healthy),
    );
    t.gauge(
        "geolb_nats_healthz_status",
        "HTTP status of /healthz (0: no answer).",
        m.healthz_status,
    );
    if m.error.is_some() && m.server_id.is_empty() {
        return;
    }
    t.family(
        "geolb_nats_info",
        GAUGE,
        "The nats-server: name, id, cluster and version.",
    );
    let info = [
        ("server_name", m.server_name.as_str()),
        ("server_id", &m.server_id),
        ("cluster", &m.cluster),
        ("version", &m.version),
    ];
    t.sample("geolb_nats_info", &info, 1);
    t.gauge(
        "geolb_nats_connections",
        "Client connections (/varz).",
        m.connections,
    );
    t.gauge(
        "geolb_nats_subscriptions",
        "Subscriptions (/varz).",
        m.subscriptions,
    );
    t.counter(
        "geolb_nats_in_msgs_total",
        "Messages in (/varz).",
        m.in_msgs,
    );
    t.counter(
        "geolb_nats_out_msgs_total",
        "Messages out (/varz).",
        m.out_msgs,
    );
    t.counter("geolb_nats_in_bytes_total", "Bytes in (/varz).", m.in_bytes);
    t.counter(
        "geolb_nats_out_bytes_total",
        "Bytes out (/varz).",
        m.out_bytes,
    );
    t.counter(
        "geolb_nats_slow_consumers_total",
        "Slow consumers (/varz).",
        m.slow_consumers,
    );
    t.gauge(
        "geolb_nats_memory_bytes",
        "Resident memory, as the server says (/varz).",
        m.mem_bytes,
    );
    t.gauge(
        "geolb_nats_cpu_percent",
        "CPU, as the server says (/varz).",
        m.cpu_pct,
    );
    t.gauge(
        "geolb_nats_routes",
        "Distinct route peers connected (/routez).",
        m.routes,
    );
    t.gauge(
        "geolb_nats_routes_configured",
        "Route URLs configured (/varz).",
        m.routes_configured,
    );
    let out = "1 when the outbound gateway to a region is up (/gatewayz).";
    t.family("geolb_nats_gateway_outbound", GAUGE, out);
    for g in &m.gateways {
        t.sample(
            "geolb_nats_gateway_outbound",
            &[("gateway", &g.name)],
            u8::from(g.outbound),
        );
    }
    let inbound = "Inbound gateway connections from a region (/gatewayz).";
    t.family("geolb_nats_gateway_inbound", GAUGE, inbound);
    for g in &m.gateways {
        t.sample(
            "geolb_nats_gateway_inbound",
            &[("gateway", &g.name)],
            g.inbound,
        );
    }
}

fn borrow<'a>(labels: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    labels.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// An `f32` as Prometheus writes it (`NaN`, `+Inf`, `-Inf` spelled its way).
fn float(v: f32) -> String {
    match v {
        v if v.is_nan() => "NaN".into(),
        v if v == f32::INFINITY => "+Inf".into(),
        v if v == f32::NEG_INFINITY => "-Inf".into(),
        v => v.to_string(),
    }
}

/// The exposition text being written; every sample gets the identity labels.
struct Text {
    out: String,
    identity: String,
}

impl Text {
    fn new(agent: &str, region: &str, role: &str) -> Text {
        Text {
            out: String::with_capacity(4096),
            identity: format!(
                "agent=\"{}\",region=\"{}\",role=\"{}\"",
                escape(agent),
                escape(region),
                escape(role)
            ),
        }
    }

    /// Starts a metric family: `# HELP` and `# TYPE`.
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample of the current family.
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        let _ = write!(self.out, "{name}{{{}", self.identity);
        for (key, v) in labels {
            let _ = write!(self.out, ",{key}=\"{}\"", escape(v));
        }
        let _ = writeln!(self.out, "}} {value}");
    }

    /// A gauge with a single sample.
    fn gauge(&mut self, name: &str, help: &str, value: impl Display) {
        self.family(name, GAUGE, help);
        self.sample(name, &[], value);
    }

    /// A counter with a single sample.
    fn counter(&mut self, name: &str, help: &str, value: impl Display) {
        self.family(name, COUNTER, help);
        self.sample(name, &[], value);
    }
}

/// A label value escaped: backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
#[path = "prometheus_tests.rs"]
mod tests;
