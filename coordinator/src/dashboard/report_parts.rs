//! The parts of a report page that are charts or cross-tables (pure):
//! the timeline with its fault periods shaded, the failover-gap
//! distribution per strategy, and the landing table.

use super::svg::{histogram, timeline, Lane, PALETTE};
use super::timeline::{end, fault_periods, lanes};
use crate::fleet::natural_cmp;
use crate::report::{ClientOutcome, Report};
use geolb_proto::scenario::TimelineEntry;
use maud::{html, Markup, PreEscaped};
use std::collections::{BTreeMap, BTreeSet};

/// Entries listed under the timeline (the chart summarises them all).
pub const LISTED: usize = 200;

/// The timeline section: the chart, its legend, and the first entries.
pub fn timeline_section(
    entries: &[TimelineEntry],
    shift_ms: u64,
    t_max: Option<u64>,
    origin_ms: i64,
) -> Markup {
    let shifted: Vec<TimelineEntry>;
    let entries = if shift_ms > 0 {
        shifted = entries
            .iter()
            .map(|e| TimelineEntry {
                t_ms: e.t_ms + shift_ms,
                ..e.clone()
            })
            .collect();
        &shifted[..]
    } else {
        entries
    };
    let t_max = t_max.unwrap_or_else(|| end(entries)).max(1);
    let lanes: Vec<Lane> = lanes(entries, t_max);
    let faults = fault_periods(entries, t_max);
    html! {
        div.timeline-box data-entries=(entries.len()) data-faults=(faults.len()) {
            (PreEscaped(timeline(&lanes, &faults, t_max, origin_ms)))
            p.legend.mute {
                span { i style="background:#fecaca" {} "fault period" }
                span { i style="background:#dc2626" {} "fault" }
                span { i style="background:#16a34a" {} "restore" }
                span { i style="background:#2563eb" {} "scenario step" }
                span { i style="background:#d97706" {} "client move" }
                span { i style="background:#94a3b8" {} "agent event" }
                (entries.len()) " entries in " (lanes.len()) " lanes; a mark stands for the entries close to it in time"
            }
        }
    }
}

/// The entries as a list: the scenario's own first, then the first [`LISTED`] of all.
pub fn entry_list(entries: &[TimelineEntry]) -> Markup {
    let steps: Vec<&TimelineEntry> = entries
        .iter()
        .filter(|e| e.source == "scenario")
        .take(LISTED)
        .collect();
    html! {
        h2 { "Steps and gates" }
        (entry_table(&steps))
        details {
            summary { "All entries (" (entries.len().min(LISTED)) " of " (entries.len()) " shown)" }
            (entry_table(&entries.iter().take(LISTED).collect::<Vec<_>>()))
        }
    }
}

fn entry_table(entries: &[&TimelineEntry]) -> Markup {
    html! {
        table.entries {
            tr { th { "t" } th { "source" } th { "kind" } th { "detail" } }
            @for e in entries {
                tr.(super::timeline::class(e).0) {
                    td.n { (format!("{:.3}s", e.t_ms as f64 / 1000.0)) } td { (e.source) } td { (e.kind) }
                    td { (super::svg::clip(&e.detail, 300)) }
                }
            }
        }
    }
}

/// Upper bounds of the gap bins, ms (the last bin is open).
const BINS: [u64; 12] = [
    0, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 120_000,
];

fn bin_labels() -> Vec<String> {
    let ms = |v: u64| {
        if v >= 1000 {
            format!("{}s", v as f64 / 1000.0)
        } else {
            format!("{v}ms")
        }
    };
    let mut labels: Vec<String> = BINS.iter().map(|b| format!("≤{}", ms(*b))).collect();
    labels.push(format!(">{}", ms(BINS[BINS.len() - 1])));
    labels
}

/// The bin counts of `gaps`.
pub fn bin(gaps: impl IntoIterator<Item = u64>) -> Vec<u64> {
    let mut counts = vec![0; BINS.len() + 1];
    for g in gaps {
        let i = BINS.iter().position(|b| g <= *b).unwrap_or(BINS.len());
        counts[i] += 1;
    }
    counts
}

/// Every gap of every client, by strategy.
pub fn gaps_by_strategy(clients: &[ClientOutcome]) -> BTreeMap<String, Vec<u64>> {
    let mut by: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for c in clients {
        by.entry(c.strategy.clone())
            .or_default()
            .extend(c.gaps_ms.iter().copied());
    }
    by
}

/// The failover-gap distribution: one bar colour per strategy.
pub fn gap_distribution(r: &Report) -> Markup {
    let groups: Vec<(String, Vec<u64>)> = gaps_by_strategy(&r.clients)
        .into_iter()
        .map(|(s, gaps)| (format!("{s} ({} gaps)", gaps.len()), bin(gaps)))
        .collect();
    html! {
        @if groups.iter().all(|g| g.1.iter().all(|n| *n == 0)) {
            p.mute { "No client had a gap." }
        } @else {
            (PreEscaped(histogram("Failover gaps per strategy (every gap of every client)", &bin_labels(), &groups)))
            p.legend { @for (i, g) in groups.iter().enumerate() { span { i style={ "background:" (PALETTE[i % PALETTE.len()]) } {} (g.0) } } }
        }
    }
}

/// Where the clients landed: per strategy and home region, how many landed in each region.
pub fn landing_table(r: &Report) -> Markup {
    let none = "(none)".to_string();
    let mut landed: BTreeSet<&String> = r
        .clients
        .iter()
        .filter_map(|c| c.landed_region.as_ref())
        .collect();
    if r.clients.iter().any(|c| c.landed_region.is_none()) {
        landed.insert(&none);
    }
    let mut cols: Vec<&String> = landed.into_iter().collect();
    cols.sort_by(|a, b| natural_cmp(a, b));
    let mut rows: BTreeMap<(&str, &str), Vec<&ClientOutcome>> = BTreeMap::new();
    for c in &r.clients {
        rows.entry((c.strategy.as_str(), c.region.as_str()))
            .or_default()
            .push(c);
    }
    html! {
        table.landing {
            tr { th { "strategy" } th { "lives in" } @for c in &cols { th { "on " (c) } } th { "as expected" } }
            @for ((strategy, home), clients) in &rows {
                @let expected: BTreeSet<&str> = clients.iter().map(|c| c.expected_region.as_str()).collect();
                tr {
                    td { (strategy) } td { (home) }
                    @for col in &cols {
                        @let n = clients.iter().filter(|c| c.landed_region.as_ref().unwrap_or(&none) == *col).count();
                        td.n.(if expected.contains(col.as_str()) { "exp" } else { "" }) { @if n > 0 { (n) } }
                    }
                    @let ok = clients.iter().filter(|c| c.landed_region.as_deref() == Some(c.expected_region.as_str())).count();
                    td.n { (ok) "/" (clients.len()) }
                }
            }
        }
        p.mute { "Green cells are the regions the clients were expected in (the nearest healthy region by their own measurements)." }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_fall_in_their_bins() {
        let counts = bin([0, 5, 10, 11, 999, 1000, 200_000]);
        assert_eq!(counts[0], 1);
        assert_eq!(counts[1], 2);
        assert_eq!(counts[2], 1);
        assert_eq!(counts[6], 2);
        assert_eq!(counts[12], 1);
        assert_eq!(counts.iter().sum::<u64>(), 7);
        assert_eq!(bin_labels().len(), counts.len());
    }
}
