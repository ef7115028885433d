//! The runs: every report kept on the control plane, newest first,
//! filtered by scenario, with its headline figures, two radio columns to
//! pick a pair to compare, and the scenarios running now.

use super::fleet_page::run_link;
use super::live_runs::LiveRun;
use super::runs::RunRow;
use maud::{html, Markup};
use std::collections::BTreeSet;

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0}ms"))
}

/// The `runs` part: the live runs and the table of stored ones.
pub fn part(
    rows: &[RunRow],
    live: &[LiveRun],
    scenario: Option<&str>,
    error: Option<&str>,
) -> Markup {
    let scenarios: BTreeSet<&str> = rows.iter().map(|r| r.scenario.as_str()).collect();
    let shown: Vec<&RunRow> = rows
        .iter()
        .rev()
        .filter(|r| scenario.is_none_or(|s| r.scenario == s))
        .collect();
    html! {
        @if let Some(e) = error { p.bad { (e) } }
        @let running: Vec<&LiveRun> = live.iter().filter(|r| r.ended.is_none()).collect();
        @if !running.is_empty() {
            h2 { "Running now" }
            ul { @for r in &running { li { (run_link(r)) } } }
        }
        form method="get" action="/runs" {
            "scenario "
            select name="scenario" {
                option value="" { "all" }
                @for s in &scenarios { option value=(s) selected[scenario == Some(*s)] { (s) } }
            }
            " " button type="submit" { "filter" }
        }
        form method="get" action="/compare" {
            table #runs data-count=(shown.len()) {
                tr { th { "A" } th { "B" } th { "run" } th { "scenario" } th { "started" } th { "result" } th { "rtt gap p99" } th { "random gap p99" }
                     th { "rtt landed" } th { "lost" } th { "duration" } th { "clients" } th { "entries" } }
                @for r in &shown {
                    tr data-run=(r.id) {
                        td { input type="radio" name="a" value=(r.id); }
                        td { input type="radio" name="b" value=(r.id); }
                        td { a href={ "/runs/" (r.id) } { (r.id) } }
                        td { (r.scenario) } td { (r.started_at) }
                        td { @if r.passed { span.st.passed { "passed" } } @else { span.st.failed title=(r.reasons.join("; ")) { "failed" } } }
                        td.n { (ms(r.rtt_gap_p99)) } td.n { (ms(r.random_gap_p99)) }
                        td.n { (r.rtt_landed_pct.map_or("-".into(), |p| format!("{p:.0}%"))) }
                        td.n { (r.lost) }
                        td.n { (r.duration_ms.map_or("-".into(), |d| format!("{:.1}s", d as f64 / 1000.0))) }
                        td.n { (r.clients) } td.n { (r.entries) }
                    }
                }
            }
            @if shown.is_empty() { p.mute { "No run kept yet: `geolb scenario run ...` stores its report here." } }
            button #compare type="submit" { "compare A and B" }
        }
    }
}
