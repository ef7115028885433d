//! A scenario running now, as its updates arrive on
//! `geolb.scenario.<run>`: its steps and gates, the timeline growing, and
//! where the clients are now (rows: where they live; columns: the region
//! of the server they are on), so a move between regions shows at once.

use super::live_runs::LiveRun;
use super::report_parts::{entry_list, timeline_section};
use crate::fleet::natural_cmp;
use crate::live::ClientEntry;
use maud::{html, Markup};
use std::collections::{BTreeMap, BTreeSet};

/// The `run` part of a live run.
pub fn part(run: &LiveRun, clients: &[ClientEntry], now_ms: u64) -> Markup {
    let elapsed = match (&run.ended, run.began_ms) {
        (Some((_, _, at)), b) if b > 0 => at.saturating_sub(b),
        (None, b) if b > 0 => now_ms.saturating_sub(b),
        _ => 0,
    }
    .max(super::timeline::end(&run.entries));
    html! {
        p #state data-ended=(run.ended.is_some()) {
            @match &run.ended {
                None => { span.st.running-now { "running" } " for " (format!("{:.1}s", elapsed as f64 / 1000.0)) },
                Some((passed, reasons, _)) => {
                    @if *passed { span.st.passed { "passed" } } @else { span.st.failed { "failed" } }
                    " after " (format!("{:.1}s", elapsed as f64 / 1000.0)) " · " a href={ "/runs/" (run.run) } { "its report" }
                    @if !reasons.is_empty() { ul { @for r in reasons { li.bad { (r) } } } }
                },
            }
            @if run.dropped > 0 { " · " (run.dropped) " entries past the first " (run.entries.len()) " not kept" }
        }
        p.mute { "parameters: " code { (run.params.to_string()) } }
        h2 { "Timeline" }
        (timeline_section(&run.entries, 0, Some(elapsed.max(super::timeline::end(&run.entries))), 0))
        h2 { "Where the clients are now" }
        (positions(clients))
        (entry_list(&run.entries))
    }
}

/// Clients by home region (rows) and the region they are on (columns).
pub fn positions(clients: &[ClientEntry]) -> Markup {
    let mut cells: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut cols: BTreeSet<&str> = BTreeSet::new();
    let mut rows: BTreeSet<&str> = BTreeSet::new();
    for c in clients {
        let on = c
            .status
            .server
            .as_ref()
            .map_or("(none)", |s| s.region.as_str());
        *cells.entry((c.status.region.as_str(), on)).or_default() += 1;
        cols.insert(on);
        rows.insert(c.status.region.as_str());
    }
    let mut cols: Vec<&str> = cols.into_iter().collect();
    cols.sort_by(|a, b| natural_cmp(a, b));
    html! {
        @if clients.is_empty() { p.mute #positions { "No client has reported yet." } }
        @else { table #positions {
            tr { th { "live in \\ on" } @for c in &cols { th { (c) } } }
            @for r in &rows {
                tr { th { (r) } @for c in &cols {
                    td.n.(if r == c { "exp" } else { "" }) { @if let Some(n) = cells.get(&(*r, *c)) { (n) } }
                } }
            }
        } }
    }
}
