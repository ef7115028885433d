//! The Prometheus text exposition of the agent's figures (pure).

use super::Figures;
use crate::control::health::View;
use geolb_proto::{ChildState, ProcessMetrics, ServerMetrics};
use std::fmt::{Display, Write as _};

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
    if let Some(control) = &f.control {
        control_plane(&mut t, control);
    }
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

/// The control-plane connection: up or away, why, and the TLS roots it trusts.
fn control_plane(t: &mut Text, v: &View) {
    t.gauge(
        "geolb_control_connected",
        "1 while the control-plane connection is up.",
        u8::from(v.connected),
    );
    t.gauge(
        "geolb_control_away_seconds",
        "Seconds since the control plane was last connected, or since the start (0 while connected).",
        v.away.as_secs(),
    );
    t.gauge(
        "geolb_control_alarm",
        "1 once the control plane has been away past --control-alarm (an ERROR was logged).",
        u8::from(v.alarmed),
    );
    if let Some(failure) = &v.failure {
        t.family(
            "geolb_control_failure_info",
            GAUGE,
            "Why the control plane cannot be reached, while away.",
        );
        let labels = [
            ("kind", failure.kind.as_str()),
            ("reason", failure.reason.as_str()),
        ];
        t.sample("geolb_control_failure_info", &labels, 1);
    }
    t.family(
        "geolb_control_tls_roots",
        GAUGE,
        "Root certificates TLS to the control plane trusts, by source.",
    );
    let trust = &v.trust;
    let tls_ca = trust.ca_file.as_ref().map_or(0, |(_, n)| *n);
    for (source, n) in [
        ("compiled", trust.compiled),
        ("ssl_cert_env", trust.cert_env),
        ("tls_ca", tls_ca),
    ] {
        t.sample("geolb_control_tls_roots", &[("source", source)], n);
    }
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
