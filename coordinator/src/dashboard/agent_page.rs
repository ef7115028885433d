//! One agent's page, the harness of one client or server: its status,
//! its last events, its metrics over the last minutes as small charts
//! (CPU, memory, connections, messages; for a client agent also each
//! candidate's RTT and its clients' gaps), its clients, and (with
//! `--allow-commands`) the command forms.

use super::fleet_page::{age, badge};
use super::history::AgentHistory;
use super::svg::{figure, line_chart, Series};
use crate::live::{AgentView, ClientEntry};
use geolb_proto::{Event, Role};
use maud::{html, Markup, PreEscaped};

/// The window the charts cover, in seconds.
const WINDOW_S: f64 = 300.0;

/// The `agent` part: everything that changes while the page is open.
pub fn part(a: &AgentView, h: &AgentHistory, clients: &[ClientEntry], now_ms: u64) -> Markup {
    let st = &a.heartbeat.status;
    html! {
        table.status data-state=(st.state.as_str()) data-liveness=(a.liveness().as_str()) {
            tr { th { "state" } td #state { (badge(st.state.as_str())) " " (badge(a.liveness().as_str())) } }
            tr { th { "role, region, host" } td { (a.role().as_str()) ", " (a.region()) ", " (st.host) } }
            tr { th { "version" } td { (st.version.as_deref().unwrap_or("-")) " (agent " (st.agent_version) ")" } }
            tr { th { "program" } td { code { (st.program) } } }
            tr { th { "restarts" } td { (st.restarts) } }
            tr { th { "replicas" } td {
                (st.replicas.len()) "/" (st.desired_replicas) ": "
                @for r in &st.replicas {
                    "#" (r.index) " " (r.state.as_str())
                    @if let Some(pid) = r.pid { " pid " (pid) }
                    "; "
                }
            } }
            @if let Some(f) = &st.flap {
                tr { th { "flap" } td { (format!("{:?}", f.mode).to_lowercase()) " cycle " (f.cycle) "/" (f.cycles) ", " (format!("{:?}", f.phase).to_lowercase()) } }
            }
            tr { th { "heartbeat" } td { (age(a.age_ms())) " ago, every " (a.heartbeat.interval_ms) "ms; up " (age(st.uptime_ms)) } }
            tr { th { "event outbox" } td { (a.heartbeat.outbox.buffered) " buffered, " (a.heartbeat.outbox.dropped) " dropped" } }
            @if let Some(s) = a.server() {
                tr { th { "server" } td {
                    @if s.healthy { (badge("healthy")) } @else { (badge("unhealthy")) }
                    " " (s.server_name) @if !s.cluster.is_empty() { " in cluster " (s.cluster) } "; routes " (s.routes) "/" (s.routes_configured)
                    "; gateways: "
                    @for g in &s.gateways { (g.name) (if g.outbound { " up" } else { " down" }) " (" (g.inbound) " in); " }
                    @if let Some(e) = &s.error { br; span.bad { (e) } }
                } }
            }
        }
        h2 { "Metrics, the last minutes" }
        div.charts { @for chart in charts(a, h, now_ms) { (PreEscaped(chart)) } }
        @if !clients.is_empty() { (client_table(clients)) }
        @if !h.moves.is_empty() {
            h2 { "Client moves" }
            table {
                tr { th { "when" } th { "client" } th { "to" } th { "gap" } }
                @for m in h.moves.iter().rev().take(20) {
                    tr { td { (age(now_ms.saturating_sub(m.at_ms))) " ago" } td { (m.client) } td { (m.to.as_deref().unwrap_or("nowhere")) } td.n { (m.gap_ms) "ms" } }
                }
            }
        }
        h2 { "Events" }
        @if h.events.is_empty() { p.mute { "No event since the dashboard started." } }
        div.events { table { @for e in h.events.iter().rev() { (event_row(e, now_ms)) } } }
    }
}

fn points(
    h: &AgentHistory,
    now_ms: u64,
    f: impl Fn(&super::history::Sample) -> f64,
) -> Vec<(f64, f64)> {
    h.samples
        .iter()
        .map(|s| ((s.at_ms as f64 - now_ms as f64) / 1000.0, f(s)))
        .collect()
}

fn one(name: &str, points: Vec<(f64, f64)>) -> Series {
    Series {
        name: name.to_string(),
        points,
    }
}

fn charts(a: &AgentView, h: &AgentHistory, now_ms: u64) -> Vec<String> {
    // The last 5 minutes, or since the first sample (at least 30 s).
    let oldest = h
        .samples
        .front()
        .map_or(0.0, |s| (now_ms as f64 - s.at_ms as f64) / 1000.0);
    let x0 = -oldest.clamp(30.0, WINDOW_S);
    let mut charts = vec![
        line_chart(
            "CPU",
            "% of a core",
            &[one("cpu", points(h, now_ms, |s| s.cpu_pct))],
            x0,
            0.0,
        ),
        line_chart(
            "Memory",
            "MiB",
            &[one("rss", points(h, now_ms, |s| s.rss_bytes / 1048576.0))],
            x0,
            0.0,
        ),
        line_chart(
            "Connections",
            "",
            &[one("connections", points(h, now_ms, |s| s.connections))],
            x0,
            0.0,
        ),
        line_chart(
            "Messages",
            "/s",
            &[
                one("in", points(h, now_ms, |s| s.msgs_in)),
                one("out", points(h, now_ms, |s| s.msgs_out)),
            ],
            x0,
            0.0,
        ),
    ];
    if a.role() == Role::Client {
        let series: Vec<Series> = h
            .rtt
            .iter()
            .map(|(url, ring)| {
                one(
                    url,
                    ring.iter()
                        .map(|(t, v)| ((*t as f64 - now_ms as f64) / 1000.0, *v))
                        .collect(),
                )
            })
            .collect();
        charts.push(line_chart("RTT to each candidate", "ms", &series, x0, 0.0));
        let gaps = h
            .moves
            .iter()
            .map(|m| ((m.at_ms as f64 - now_ms as f64) / 1000.0, m.gap_ms as f64))
            .collect();
        charts.push(line_chart(
            "Gaps of its clients' moves",
            "ms",
            &[one("gap", gaps)],
            x0,
            0.0,
        ));
    }
    charts
}

fn client_table(clients: &[ClientEntry]) -> Markup {
    html! {
        h2 { "Its clients" }
        table {
            tr { th { "client" } th { "strategy" } th { "on" } th { "candidates (RTT ms)" } th { "sent" } th { "received" } th { "lost" } th { "switches" } }
            @for c in clients.iter().take(100) {
                @let s = &c.status;
                tr data-client=(s.client) {
                    td { (s.client) } td { (s.strategy) }
                    td { @match &s.server { Some(r) => { (r.name) " (" (r.region) ")" }, None => span.bad { "disconnected" } } }
                    td { @for k in s.candidates.iter().take(12) {
                        (k.region) " " @match k.rtt_ms { Some(ms) => (format!("{ms:.1}")), None => "-" }
                        (if k.healthy { "" } else { " (unhealthy)" }) "; "
                    } }
                    td.n { (count(s.traffic.sent)) } td.n { (count(s.traffic.received)) }
                    td.n { (s.traffic.lost) } td.n { (s.switches) }
                }
            }
        }
    }
}

fn count(n: u64) -> String {
    if n < 10_000 {
        n.to_string()
    } else {
        figure(n as f64)
    }
}

/// An event's details as `key=value` words (the kind aside).
pub fn details(e: &Event) -> String {
    let value = serde_json::to_value(&e.event).unwrap_or_default();
    value
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| *k != "kind")
                .map(|(k, v)| format!("{k}={}", super::svg::clip(&v.to_string(), 160)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn event_row(e: &Event, now_ms: u64) -> Markup {
    html! {
        tr { td.mute { (age(now_ms.saturating_sub(e.at_ms))) " ago" } td { "#" (e.seq) } td { b { (e.event.name()) } } td { (details(e)) } }
    }
}

/// The command forms (shown only with `--allow-commands`).
pub fn commands(id: &str, role: Role, csrf: &str) -> Markup {
    let form = |verb: &str, fields: Markup| {
        html! {
            form.cmd method="post" action={ "/agent/" (id) "/command" } {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="verb" value=(verb);
                (fields)
                button #{ "cmd-" (verb) } type="submit" { (verb) }
            }
        }
    };
    let mode = |modes: &[&str]| html! { select name="mode" { @for m in modes { option value=(m) { (m) } } } };
    html! {
        h2 { "Commands" }
        p.mute { "Each is signed as `geolb cmd` signs it and sent to this agent only." }
        (form("stop", html! { (mode(&["term", "ldm", "kill"])) " grace " input name="grace" placeholder="10s"; }))
        (form("start", html! {}))
        (form("restart", html! { (mode(&["term", "ldm", "kill"])) }))
        @if role == Role::Server {
            (form("upgrade", html! { " to " input name="to" placeholder="2.14.6"; }))
        }
        (form("flap", html! { (mode(&["stop", "kill", "pause"])) " down " input name="down" placeholder="2s"; " up " input name="up" placeholder="2s"; " cycles " input name="cycles" placeholder="3"; }))
        @if role == Role::Client {
            (form("scale", html! { " replicas " input name="replicas" placeholder="2"; }))
        }
    }
}
