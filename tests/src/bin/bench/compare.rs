//! Group `strategies`, the scenario part: the four strategies side by side
//! on the default lab (its real-world GeoDNS and anycast defaults), through
//! a region killed and a region partitioned for 40 s each: per strategy the
//! recovery (each affected client's gap) p50/p99, the share landed where
//! expected, and for `dns` the share of affected clients still on a stale
//! answer at the end, with the routing systems' detection times.

use super::report::Report;
use super::scenarios::{figure, BenchLab};
use serde_json::Value;

/// How long each outage lasts: past the GeoDNS's detection (3 checks 10 s apart).
const OUTAGE: &str = "40s";

/// Runs both outages and records every strategy's figures.
pub async fn run(report: &mut Report) -> anyhow::Result<()> {
    let lab = BenchLab::up("strategies", "", false)?;
    for mode in ["kill", "partition"] {
        let run = lab.scenario(
            "dc-outage",
            &["--region", "lon", "--mode", mode, "--duration", OUTAGE],
        )?;
        for strategy in ["rtt", "random", "dns", "anycast"] {
            let gaps = gaps_of(&run, strategy);
            let name = format!("strategies_{mode}_{strategy}");
            report.add(
                &format!("{name}_recovery_p50_ms"),
                figure(&run, strategy, &["failover_gap_ms", "p50"]),
                "ms",
                None,
                format!(
                    "dc-outage lon {mode} {OUTAGE}: {} of its lon clients recovered",
                    gaps
                ),
            );
            report.add(
                &format!("{name}_recovery_p99_ms"),
                figure(&run, strategy, &["failover_gap_ms", "p99"]),
                "ms",
                None,
                format!("dc-outage lon {mode}"),
            );
            report.add_at_least(
                &format!("{name}_landed_pct"),
                figure(&run, strategy, &["landed_expected_pct"]),
                "%",
                None,
                "every client of the strategy, where it should be at the end of the outage",
            );
        }
        let stale = figure(&run, "dns", &["stale_at_end_pct"]);
        report.add(
            &format!("strategies_{mode}_dns_stale_at_end_pct"),
            stale,
            "%",
            None,
            "affected dns clients that never got the GeoDNS's new answer in the run",
        );
        let routing = &run["routing"];
        let ms = |key: &str| routing[key].as_f64().unwrap_or(f64::NAN);
        report.add(
            &format!("strategies_{mode}_dns_detection_ms"),
            ms("dns_answers_changed_ms"),
            "ms",
            None,
            format!(
                "the GeoDNS changed lon's answers (marked the first server down after {} ms)",
                ms("dns_marked_down_ms")
            ),
        );
        report.add(
            &format!("strategies_{mode}_anycast_withdrawn_ms"),
            ms("anycast_withdrawn_ms"),
            "ms",
            None,
            "lon withdrew its anycast address (its site checks failed)",
        );
    }
    Ok(())
}

/// How many of lon's clients of `strategy` had a gap.
fn gaps_of(run: &Value, strategy: &str) -> String {
    let clients: Vec<&Value> = run["clients"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["region"] == "lon" && c["strategy"] == strategy)
        .collect();
    let moved = clients
        .iter()
        .filter(|c| c["gaps_ms"].as_array().is_some_and(|g| !g.is_empty()))
        .count();
    format!("{moved}/{}", clients.len())
}
