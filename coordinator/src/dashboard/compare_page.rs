//! Two runs side by side: their verdicts, their figures by strategy with
//! the difference, and their timelines on one time axis aligned on each
//! run's first fault (t = 0 is when the fault began).

use super::report_page::verdict;
use super::report_parts::{gap_distribution, timeline_section};
use super::timeline::{end, first_fault};
use crate::report::{Report, StrategySummary};
use maud::{html, Markup};
use std::collections::BTreeSet;

/// The figures compared, by strategy: name and value.
fn figures(s: &StrategySummary) -> [(&'static str, f64); 8] {
    let g = s.failover_gap_ms;
    [
        ("gap p50 (ms)", g.p50),
        ("gap p99 (ms)", g.p99),
        ("gap max (ms)", g.max),
        ("landed ok (%)", s.landed_expected_pct),
        ("lost", s.messages.lost as f64),
        ("lost, same strategy", s.messages.lost_same_strategy as f64),
        ("duplicated", s.messages.duplicated as f64),
        ("switches per client", s.switches_per_client),
    ]
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The compare body of runs `a` and `b`.
pub fn body(a: &Report, b: &Report) -> Markup {
    let fa = first_fault(&a.timeline).unwrap_or(0);
    let fb = first_fault(&b.timeline).unwrap_or(0);
    let before = fa.max(fb);
    let after = (end(&a.timeline).saturating_sub(fa)).max(end(&b.timeline).saturating_sub(fb));
    let t_max = before + after;
    let strategies: BTreeSet<&String> = a
        .summary
        .by_strategy
        .keys()
        .chain(b.summary.by_strategy.keys())
        .collect();
    html! {
        h1 { "Compare " (a.scenario) }
        @if a.scenario != b.scenario {
            p.bad { "These runs are of different scenarios (" (a.scenario) ", " (b.scenario) "): the figures are shown, but they do not measure the same thing." }
        }
        div.cols #compare data-a=(a.id) data-b=(b.id) {
            div { h2 { "A: " a href={ "/runs/" (a.id) } { (a.id) } } (verdict(a)) }
            div { h2 { "B: " a href={ "/runs/" (b.id) } { (b.id) } } (verdict(b)) }
        }
        h2 { "Figures" }
        table.compare {
            tr { th { "strategy" } th { "figure" } th { "A" } th { "B" } th { "B - A" } }
            @for s in &strategies {
                @let (sa, sb) = (a.summary.by_strategy.get(*s), b.summary.by_strategy.get(*s));
                @for i in 0..8 {
                    @let fa = sa.map(|x| figures(x)[i]);
                    @let fb = sb.map(|x| figures(x)[i]);
                    tr {
                        td { @if i == 0 { b { (s) } } }
                        td { (sa.or(sb).map(|x| figures(x)[i].0).unwrap_or("")) }
                        td.n { (fa.map_or("-".into(), |v| number(v.1))) }
                        td.n { (fb.map_or("-".into(), |v| number(v.1))) }
                        td.n { @if let (Some(x), Some(y)) = (fa, fb) { (number(y.1 - x.1)) } }
                    }
                }
            }
        }
        h2 { "Timelines, aligned on the first fault (t = 0)" }
        h3 { "A " span.mute { (a.id) } }
        (timeline_section(&a.timeline, before - fa, Some(t_max), before as i64))
        h3 { "B " span.mute { (b.id) } }
        (timeline_section(&b.timeline, before - fb, Some(t_max), before as i64))
        h2 { "Failover gaps" }
        div.cols { div { h3 { "A" } (gap_distribution(a)) } div { h3 { "B" } (gap_distribution(b)) } }
    }
}
