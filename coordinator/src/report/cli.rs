//! `geolb report ls | summary | show ID | export`.

use super::{print, store};
use crate::control::Control;
use crate::emit;
use crate::table::Table;
use clap::{Args, Subcommand};
use std::process::ExitCode;

/// Flags of `geolb report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ReportCommand,
}

/// The report subcommands.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// List stored reports, oldest first.
    Ls {
        /// Print JSON.
        #[arg(long, env = "GEOLB_JSON")]
        json: bool,
    },
    /// One line per report: the verdict and the key figures, newest last.
    Summary {
        /// How many of the newest reports.
        #[arg(long, default_value_t = 10)]
        last: usize,
    },
    /// Export reports to S3: the JSON and one row per run (see docs/archive.md).
    Export(crate::archive::cli::ExportReportArgs),
    /// Show one report.
    Show {
        /// Report id (from `report ls`).
        id: String,
        /// Print the report's JSON.
        #[arg(long, env = "GEOLB_JSON")]
        json: bool,
        /// Write the report as one self-contained HTML file (the dashboard's report page; opens offline).
        #[arg(long, value_name = "FILE")]
        html: Option<std::path::PathBuf>,
    },
}

/// Runs `geolb report ...` against `control`.
pub async fn run(control: &Control, args: &ReportArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        ReportCommand::Ls { json } => {
            let reports = store::list(control).await?;
            if *json {
                let rows: Vec<serde_json::Value> = reports
                    .iter()
                    .map(|r| serde_json::json!({"id": r.id, "scenario": r.scenario, "started_at": r.started_at, "passed": r.passed}))
                    .collect();
                emit(&format!("{}\n", serde_json::to_string_pretty(&rows)?))?;
            } else {
                let mut table = Table::new(["ID", "SCENARIO", "STARTED", "RESULT"]);
                for r in &reports {
                    table.row([
                        r.id.as_str(),
                        &r.scenario,
                        &r.started_at,
                        if r.passed { "passed" } else { "FAILED" },
                    ]);
                }
                emit(&table.render())?;
            }
        }
        ReportCommand::Summary { last } => {
            let reports = store::list(control).await?;
            let newest = &reports[reports.len().saturating_sub(*last)..];
            emit(&summary_table(newest))?;
        }
        ReportCommand::Export(export) => {
            return crate::archive::cli::export_reports(control, export).await
        }
        ReportCommand::Show { id, json, html } => {
            let report = store::get(control, id).await?;
            if let Some(file) = html {
                std::fs::write(file, crate::dashboard::export::html(&report))
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
                emit(&format!(
                    "wrote {} ({} {})\n",
                    file.display(),
                    report.scenario,
                    report.id
                ))?;
            } else if *json {
                emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
            } else {
                emit(&print::render(&report))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The newest reports, one line each, with the figures that matter.
pub fn summary_table(reports: &[super::Report]) -> String {
    let mut table = Table::new([
        "SCENARIO",
        "RESULT",
        "RTT GAP P99/LANDED",
        "RANDOM",
        "DNS",
        "ANYCAST",
        "RTT LOST FROM RTT",
        "DURATION",
        "ID",
    ]);
    for r in reports {
        let by = &r.summary.by_strategy;
        // Each strategy's worst failover gap and its share landed where expected.
        let strategy = |s: &str| {
            by.get(s).map_or("-".into(), |s| {
                format!(
                    "{:.0}ms {:.0}%",
                    s.failover_gap_ms.p99, s.landed_expected_pct
                )
            })
        };
        let rtt = by.get("rtt");
        let mode = r.params["mode"]
            .as_str()
            .map(|m| format!(" {m}"))
            .unwrap_or_default();
        table.row([
            format!("{}{mode}", r.scenario),
            if r.passed {
                "passed".into()
            } else {
                "FAILED".into()
            },
            strategy("rtt"),
            strategy("random"),
            strategy("dns"),
            strategy("anycast"),
            rtt.map_or("-".into(), |s| {
                let m = s.messages;
                let within = m.lost_same_strategy - m.lost_same_strategy_cross_region;
                format!("{within} (+{} across)", m.lost_same_strategy_cross_region)
            }),
            r.duration_ms
                .or(r.return_home_ms)
                .map_or("-".into(), |ms| format!("{:.1}s", ms as f64 / 1000.0)),
            r.id.clone(),
        ]);
    }
    table.render()
}
