//! A report as text: the verdict, the summary by strategy, then every
//! client that had a gap, lost messages, or landed off target.

use super::Report;
use crate::table::Table;

/// The report as a screen of text.
pub fn render(report: &Report) -> String {
    let mut out = format!(
        "{} {} ({} .. {}): {}\n",
        report.scenario,
        report.id,
        report.started_at,
        report.finished_at,
        if report.passed { "PASSED" } else { "FAILED" }
    );
    for reason in &report.reasons {
        out.push_str(&format!("  - {reason}\n"));
    }
    if let Some(ms) = report.duration_ms {
        out.push_str(&format!("duration: {ms} ms\n"));
    }
    out.push('\n');
    let mut table = Table::new([
        "STRATEGY",
        "CLIENTS",
        "GAP P50",
        "GAP P90",
        "GAP P99",
        "GAP MAX",
        "LANDED OK",
        "SENT",
        "LOST",
        "LOST (SAME)",
        "ACROSS",
        "DUP",
        "SWITCHES",
    ]);
    for (strategy, s) in &report.summary.by_strategy {
        let g = s.failover_gap_ms;
        table.row([
            strategy.clone(),
            s.clients.to_string(),
            format!("{:.0}ms", g.p50),
            format!("{:.0}ms", g.p90),
            format!("{:.0}ms", g.p99),
            format!("{:.0}ms", g.max),
            format!("{:.0}%", s.landed_expected_pct),
            s.messages.sent.to_string(),
            s.messages.lost.to_string(),
            s.messages.lost_same_strategy.to_string(),
            s.messages.lost_same_strategy_cross_region.to_string(),
            s.messages.duplicated.to_string(),
            format!("{:.2}", s.switches_per_client),
        ]);
    }
    out.push_str(&table.render());
    out.push_str(&routing(report));
    if let Some(servers) = &report.servers {
        let mut table = Table::new(["SERVER", "BEFORE", "AFTER"]);
        for s in servers {
            let dash = || "-".to_string();
            table.row([
                s.id.clone(),
                s.version_before.clone().unwrap_or_else(dash),
                s.version_after.clone().unwrap_or_else(dash),
            ]);
        }
        out.push('\n');
        out.push_str(&table.render());
    }
    let notable: Vec<_> = report
        .clients
        .iter()
        .filter(|c| {
            !c.gaps_ms.is_empty()
                || c.lost > 0
                || c.landed_region.as_deref() != Some(c.expected_region.as_str())
        })
        .collect();
    if !notable.is_empty() {
        let mut table = Table::new([
            "CLIENT",
            "STRATEGY",
            "GAPS (MS)",
            "LANDED",
            "EXPECTED",
            "LOST",
        ]);
        for c in notable {
            let gaps: Vec<String> = c.gaps_ms.iter().map(u64::to_string).collect();
            table.row([
                c.id.clone(),
                c.strategy.clone(),
                gaps.join(","),
                c.landed_region.clone().unwrap_or_else(|| "-".into()),
                c.expected_region.clone(),
                c.lost.to_string(),
            ]);
        }
        out.push('\n');
        out.push_str(&table.render());
    }
    out
}

/// How each strategy got back: first connection, home shares, dead
/// attempts, stale answers and flips; and when the routing systems noticed.
fn routing(report: &Report) -> String {
    let mut out = String::new();
    if let Some(r) = &report.routing {
        let secs = |ms: Option<u64>| {
            ms.map_or("-".to_string(), |ms| format!("{:.1} s", ms as f64 / 1000.0))
        };
        out.push_str(&format!(
            "\nrouting: GeoDNS marked the region down after {}, changed its answers after {}; anycast withdrew it after {}\n",
            secs(r.dns_marked_down_ms),
            secs(r.dns_answers_changed_ms),
            secs(r.anycast_withdrawn_ms)
        ));
    }
    let mut table = Table::new([
        "STRATEGY",
        "FIRST CONNECT P50",
        "HOME AT START",
        "LANDED OK",
        "HOME AT END",
        "LOST CONNS",
        "DEAD ATTEMPTS",
        "STALE P50/P99",
        "STILL STALE",
        "FLIP P50/P99",
    ]);
    let ms = |v: f64| format!("{:.0}ms", v);
    for (strategy, s) in &report.summary.by_strategy {
        let pair = |g: &Option<super::GapStats>| {
            g.map_or("-".to_string(), |g| format!("{}/{}", ms(g.p50), ms(g.p99)))
        };
        table.row([
            strategy.clone(),
            ms(s.first_connect_ms.p50),
            format!("{:.0}%", s.home_at_start_pct),
            format!("{:.0}%", s.landed_expected_pct),
            format!("{:.0}%", s.home_at_end_pct),
            format!("{:.2}", s.lost_connections_per_client),
            s.dead_attempts_per_client
                .map_or("-".into(), |d| format!("{d:.1}")),
            pair(&s.stale_ms),
            s.stale_at_end_pct
                .map_or("-".into(), |p| format!("{p:.0}%")),
            pair(&s.flip_ms),
        ]);
    }
    out.push('\n');
    out.push_str(&table.render());
    out
}
