//! One report: the verdict and its reasons, the summary by strategy, the
//! timeline (one lane per source, fault periods shaded), the failover-gap
//! distribution per strategy, the landing table, and the per-client table
//! (sortable on the dashboard by its column links; by worst gap in an
//! exported file, which has no links to follow). The same body serves the
//! dashboard page and `report show --html`.

use super::report_parts::{entry_list, gap_distribution, landing_table, timeline_section};
use super::svg::figure;
use crate::report::{ClientOutcome, Report};
use maud::{html, Markup};

/// Clients listed in the per-client table.
pub const CLIENTS_LISTED: usize = 1000;

/// Where the page is shown: on the dashboard (links work) or in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// The dashboard: sort links, compare, live run.
    Live,
    /// An exported file: no links.
    Offline,
}

/// A column of the per-client table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// Client id.
    Id,
    /// Home region.
    Region,
    /// Strategy.
    Strategy,
    /// Largest gap.
    #[default]
    Gap,
    /// Number of gaps.
    Gaps,
    /// Landed region.
    Landed,
    /// Switches.
    Switches,
    /// Lost messages.
    Lost,
    /// Duplicated messages.
    Duplicated,
}

/// The per-client table's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
pub struct Sort {
    /// By which column.
    #[serde(default)]
    pub sort: SortKey,
    /// Ascending instead of the default descending.
    #[serde(default)]
    pub asc: bool,
}

const COLUMNS: [(SortKey, &str, &str); 9] = [
    (SortKey::Id, "id", "client"),
    (SortKey::Region, "region", "lives in"),
    (SortKey::Strategy, "strategy", "strategy"),
    (SortKey::Gap, "gap", "worst gap"),
    (SortKey::Gaps, "gaps", "gaps"),
    (SortKey::Landed, "landed", "landed / expected"),
    (SortKey::Switches, "switches", "switches"),
    (SortKey::Lost, "lost", "lost"),
    (SortKey::Duplicated, "duplicated", "dup"),
];

/// Sorts `clients` in place.
pub fn sort(clients: &mut [&ClientOutcome], by: Sort) {
    let worst = |c: &ClientOutcome| c.gaps_ms.iter().max().copied().unwrap_or(0);
    clients.sort_by(|a, b| {
        let o = match by.sort {
            SortKey::Id => crate::fleet::natural_cmp(&a.id, &b.id),
            SortKey::Region => a.region.cmp(&b.region),
            SortKey::Strategy => a.strategy.cmp(&b.strategy),
            SortKey::Gap => worst(a).cmp(&worst(b)),
            SortKey::Gaps => a.gaps_ms.len().cmp(&b.gaps_ms.len()),
            SortKey::Landed => a.landed_region.cmp(&b.landed_region),
            SortKey::Switches => a.switches.cmp(&b.switches),
            SortKey::Lost => a.lost.cmp(&b.lost),
            SortKey::Duplicated => a.duplicated.cmp(&b.duplicated),
        };
        let o = if by.asc { o } else { o.reverse() };
        o.then_with(|| crate::fleet::natural_cmp(&a.id, &b.id))
    });
}

/// The verdict line and reasons.
pub fn verdict(r: &Report) -> Markup {
    html! {
        p #verdict data-passed=(r.passed) {
            @if r.passed { span.st.passed { "PASSED" } } @else { span.st.failed { "FAILED" } }
            " " (r.started_at) " .. " (r.finished_at)
            @if let Some(ms) = r.duration_ms { " · main phase " (format!("{:.1}s", ms as f64 / 1000.0)) }
            @if let Some(ms) = r.return_home_ms { " · home again after " (format!("{:.1}s", ms as f64 / 1000.0)) }
        }
        @if !r.reasons.is_empty() { ul.reasons { @for reason in &r.reasons { li.bad { (reason) } } } }
        p.mute { "parameters: " code { (r.params.to_string()) } }
        @if let Some(f) = &r.fleet {
            p.mute #fleet {
                "ran on " (f.source) " (" (f.control) "): " (f.servers) " servers in " (f.regions.join(", "))
                ", " (f.clients) " clients, " (f.links) " link controls"
            }
        }
    }
}

/// The summary by strategy.
pub fn summary(r: &Report) -> Markup {
    html! {
        table.summary {
            tr { th { "strategy" } th { "clients" } th { "gap p50" } th { "p90" } th { "p99" } th { "max" } th { "with gaps" }
                 th { "landed ok" } th { "sent" } th { "lost" } th { "lost (same)" } th { "across" } th { "dup" } th { "switches/client" } }
            @for (name, s) in &r.summary.by_strategy {
                @let g = s.failover_gap_ms;
                @let m = s.messages;
                tr data-strategy=(name) {
                    td { b { (name) } } td.n { (s.clients) }
                    td.n { (format!("{:.0}ms", g.p50)) } td.n { (format!("{:.0}ms", g.p90)) } td.n { (format!("{:.0}ms", g.p99)) } td.n { (format!("{:.0}ms", g.max)) }
                    td.n { (s.clients_with_gaps) } td.n { (format!("{:.0}%", s.landed_expected_pct)) }
                    td.n { (figure(m.sent as f64)) } td.n { (m.lost) } td.n { (m.lost_same_strategy) } td.n { (m.lost_same_strategy_cross_region) }
                    td.n { (m.duplicated) } td.n { (format!("{:.2}", s.switches_per_client)) }
                }
            }
        }
    }
}

fn header(key: SortKey, name: &str, label: &str, by: Sort, links: Links) -> Markup {
    let arrow = match (by.sort == key, by.asc) {
        (true, true) => " ▲",
        (true, false) => " ▼",
        _ => "",
    };
    html! {
        th {
            @if links == Links::Live {
                a href={ "?sort=" (name) (if by.sort == key && !by.asc { "&asc=true" } else { "" }) } { (label) (arrow) }
            } @else { (label) (arrow) }
        }
    }
}

/// The per-client table in order `by`.
pub fn client_table(r: &Report, by: Sort, links: Links) -> Markup {
    let mut clients: Vec<&ClientOutcome> = r.clients.iter().collect();
    sort(&mut clients, by);
    html! {
        table #clients {
            tr { @for (key, name, label) in COLUMNS { (header(key, name, label, by, links)) } th { "sent" } th { "received" } }
            @for c in clients.iter().take(CLIENTS_LISTED) {
                @let ok = c.landed_region.as_deref() == Some(c.expected_region.as_str());
                tr data-client=(c.id) {
                    td { (c.id) } td { (c.region) } td { (c.strategy) }
                    td.n { (c.gaps_ms.iter().max().map_or("-".to_string(), |g| format!("{g}ms"))) }
                    td.n { (c.gaps_ms.len()) }
                    td.(if ok { "ok" } else { "bad" }) { (c.landed_region.as_deref().unwrap_or("-")) " / " (c.expected_region) }
                    td.n { (c.switches) } td.n { (c.lost) } td.n { (c.duplicated) }
                    td.n { (c.sent) } td.n { (c.received) }
                }
            }
        }
        @if clients.len() > CLIENTS_LISTED { p.mute { (clients.len() - CLIENTS_LISTED) " more clients not listed" } }
    }
}

/// The whole report body.
pub fn body(r: &Report, by: Sort, links: Links) -> Markup {
    html! {
        h1 { (r.scenario) " " span.mute { (r.id) } }
        @if links == Links::Live {
            p { a href={ "/runs?scenario=" (r.scenario) } { "other " (r.scenario) " runs" } " · "
                a href={ "/compare?a=" (r.id) } { "compare with another run" } }
        }
        (verdict(r))
        h2 { "Summary by strategy" }
        (summary(r))
        h2 { "Timeline" }
        (timeline_section(&r.timeline, 0, None, 0))
        h2 { "Failover-gap distribution" }
        (gap_distribution(r))
        h2 { "Where clients landed" }
        (landing_table(r))
        @if let Some(servers) = &r.servers {
            h2 { "Servers" }
            table { tr { th { "server" } th { "before" } th { "after" } }
                @for s in servers { tr { td { (s.id) } td { (s.version_before.as_deref().unwrap_or("-")) } td { (s.version_after.as_deref().unwrap_or("-")) } } } }
        }
        h2 { "Clients" }
        (client_table(r, by, links))
        (entry_list(&r.timeline))
    }
}
