//! The fleet page: regions as columns; in each, every server agent (state,
//! liveness, version, restarts, heartbeat age, health, routes, gateways,
//! connections), every client agent, and the clients living there with the
//! server and region they are on now; under them the region-to-region
//! round trips as the clients measure them, and the scenarios running.

use super::live_runs::LiveRun;
use crate::fleet::natural_cmp;
use crate::geography::Geography;
use crate::live::{AgentView, ClientEntry};
use crate::liveness::Liveness;
use geolb_proto::Role;
use maud::{html, Markup};
use std::collections::{BTreeMap, BTreeSet};

/// Clients listed per region (the rest are counted).
const CLIENTS_SHOWN: usize = 40;

/// What the fleet page shows.
pub struct FleetSnapshot {
    /// Every agent by id.
    pub agents: BTreeMap<String, AgentView>,
    /// Every client by id.
    pub clients: BTreeMap<String, ClientEntry>,
    /// Scenarios followed live, newest first.
    pub runs: Vec<LiveRun>,
}

/// `1.2s`, `340ms`, `3m`.
pub fn age(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms}ms"),
        1000..=119_999 => format!("{:.1}s", ms as f64 / 1000.0),
        _ => format!("{}m", ms / 60_000),
    }
}

fn regions(s: &FleetSnapshot) -> Vec<String> {
    let mut set: BTreeSet<String> = s.agents.values().map(|a| a.region().to_string()).collect();
    set.extend(s.clients.values().map(|c| c.status.region.clone()));
    let mut v: Vec<String> = set.into_iter().collect();
    v.sort_by(|a, b| natural_cmp(a, b));
    v
}

/// The `fleet` part: everything below the page title.
pub fn part(s: &FleetSnapshot) -> Markup {
    let regions = regions(s);
    let live = s
        .agents
        .values()
        .filter(|a| a.liveness() == Liveness::Live)
        .count();
    html! {
        p.mute #summary data-agents=(s.agents.len()) {
            (s.agents.len()) " agents (" (live) " live), " (s.clients.len()) " clients, " (regions.len()) " regions"
        }
        @if s.agents.is_empty() {
            p { "No agent has sent a heartbeat yet." }
        }
        div.regions {
            @for region in &regions { (column(s, region)) }
        }
        h2 { "Round trips between regions (ms, measured by the clients)" }
        (matrix(&Geography::measure(s.clients.values().map(|c| &c.status)), &regions))
        @if !s.runs.is_empty() {
            h2 { "Scenarios followed live" }
            ul { @for r in &s.runs { li { (run_link(r)) } } }
        }
    }
}

/// A link to a live run, with its state.
pub fn run_link(r: &LiveRun) -> Markup {
    html! {
        a href={ "/live/" (r.run) } { (if r.scenario.is_empty() { "scenario" } else { r.scenario.as_str() }) " " (r.run) }
        " "
        @match &r.ended {
            None => span.st.running-now { "running" },
            Some((true, _, _)) => span.st.passed { "passed" },
            Some((false, _, _)) => span.st.failed { "failed" },
        }
    }
}

fn column(s: &FleetSnapshot, region: &str) -> Markup {
    let mut agents: Vec<&AgentView> = s.agents.values().filter(|a| a.region() == region).collect();
    agents.sort_by(|a, b| {
        (a.role() as u8)
            .cmp(&(b.role() as u8))
            .then_with(|| natural_cmp(a.id(), b.id()))
    });
    let clients: Vec<&ClientEntry> = s
        .clients
        .values()
        .filter(|c| c.status.region == region)
        .collect();
    html! {
        div.region data-region=(region) {
            h2 { (region) }
            @for a in &agents { (card(a)) }
            @if !clients.is_empty() {
                table.clients {
                    tr { th { "client" } th { "strategy" } th { "on" } }
                    @for c in clients.iter().take(CLIENTS_SHOWN) { (client_row(c)) }
                }
                @if clients.len() > CLIENTS_SHOWN {
                    p.mute { (clients.len() - CLIENTS_SHOWN) " more clients" }
                }
            }
        }
    }
}

/// A state badge.
pub fn badge(word: &str) -> Markup {
    html! { span.st.(word) { (word) } }
}

fn card(a: &AgentView) -> Markup {
    let st = &a.heartbeat.status;
    let liveness = a.liveness();
    html! {
        div.card data-agent=(a.id()) data-state=(st.state.as_str()) data-liveness=(liveness.as_str()) {
            a href={ "/agent/" (a.id()) } { (a.id()) }
            " " span.mute { (a.role().as_str()) } " "
            (badge(st.state.as_str()))
            @if liveness != Liveness::Live { " " (badge(liveness.as_str())) }
            br;
            span.mute {
                @if let Some(v) = &st.version { "v" (v) " · " }
                "restarts " (st.restarts) " · hb " (age(a.age_ms()))
                @if a.role() == Role::Client { " · replicas " (st.replicas.len()) "/" (st.desired_replicas) }
            }
            @if let Some(server) = a.server() {
                br;
                @if server.healthy { (badge("healthy")) } @else { (badge("unhealthy")) }
                " routes " (server.routes) "/" (server.routes_configured)
                " · gateways " (server.gateways.iter().filter(|g| g.outbound).count()) "/" (server.gateways.len())
                " · conns " (server.connections)
            }
        }
    }
}

fn client_row(c: &ClientEntry) -> Markup {
    let s = &c.status;
    let away = s.server.as_ref().is_some_and(|r| r.region != s.region);
    html! {
        tr data-client=(s.client) {
            td { a href={ "/agent/" (c.agent) } { (s.client) } }
            td { (s.strategy) }
            td.(if away { "bad" } else { "" }) {
                @match &s.server {
                    Some(r) => { (if r.name.is_empty() { r.url.as_str() } else { r.name.as_str() }) " (" (r.region) ")" },
                    None => span.bad { "disconnected" },
                }
            }
        }
    }
}

/// The region-to-region matrix: rows are where clients live, columns the servers' regions.
pub fn matrix(geo: &Geography, regions: &[String]) -> Markup {
    let from: BTreeSet<&str> = geo.pairs().map(|(a, _, _)| a).collect();
    let to: BTreeSet<&str> = geo.pairs().map(|(_, b, _)| b).collect();
    let rows: Vec<&String> = regions
        .iter()
        .filter(|r| from.contains(r.as_str()))
        .collect();
    let cols: Vec<&String> = regions.iter().filter(|r| to.contains(r.as_str())).collect();
    html! {
        @if rows.is_empty() {
            p.mute #matrix { "No client has measured a round trip yet." }
        } @else {
            table #matrix {
                tr { th { "from \\ to" } @for c in &cols { th { (c) } } }
                @for r in &rows {
                    tr {
                        th { (r) }
                        @for c in &cols {
                            td.n { @if let Some(ms) = geo.rtt_ms(r, c) { (format!("{ms:.1}")) } @else { "-" } }
                        }
                    }
                }
            }
        }
    }
}
