//! `geolb scenario run NAME`: the seed's failure scenarios on the lab,
//! driven only through the back channel (agents and the WAN emulator), each
//! step gated on health, then a report (see [`crate::report`]).
//!
//! # Layout
//! - [`lab`]: opening the lab, commands, link changes, gates, outcomes.
//! - [`observe`]: the timeline and what every client reported.
//! - one module per scenario: [`rolling_upgrade`], [`dc_outage`], [`flap`], [`scale`].

pub mod dc_outage;
pub mod flap;
pub mod lab;
pub mod observe;
pub mod rolling_upgrade;
pub mod scale;

use crate::emit;
use crate::report::{self, ClientOutcome, Report, ServerVersions};
use clap::{Args, Subcommand};
use lab::Lab;
use observe::Observer;
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags of `geolb scenario`.
#[derive(Debug, Args)]
pub struct ScenarioArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ScenarioCommand,
}

/// The scenario subcommands.
#[derive(Debug, Subcommand)]
pub enum ScenarioCommand {
    /// Run a scenario on the lab and report what the clients saw.
    Run(RunArgs),
}

/// Flags of `geolb scenario run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Lab directory.
    #[arg(long, env = "GEOLB_LAB_DIR", global = true)]
    pub dir: Option<PathBuf>,
    /// Also write the report's JSON to this file.
    #[arg(long, global = true)]
    pub report: Option<PathBuf>,
    /// Print the report's JSON instead of the table.
    #[arg(long, env = "GEOLB_JSON", global = true)]
    pub json: bool,
    /// Export the report to S3 (`--export s3://...`, or the lab's `[archive]`).
    #[command(flatten)]
    pub export: crate::archive::cli::ExportArgs,
    /// The scenario.
    #[command(subcommand)]
    pub name: Scenario,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Upgrade every server, drained and gated on health, in a pattern.
    RollingUpgrade(rolling_upgrade::RollingUpgradeArgs),
    /// A whole region fails (kill or partition), then comes back.
    DcOutage(dc_outage::DcOutageArgs),
    /// Servers (or links) of a region go down and up repeatedly.
    Flap(flap::FlapArgs),
    /// The rtt clients of a region scale up or down.
    Scale(scale::ScaleArgs),
}

impl Scenario {
    fn name(&self) -> &'static str {
        match self {
            Scenario::RollingUpgrade(_) => "rolling-upgrade",
            Scenario::DcOutage(_) => "dc-outage",
            Scenario::Flap(_) => "flap",
            Scenario::Scale(_) => "scale",
        }
    }

    fn params(&self) -> serde_json::Value {
        let value = match self {
            Scenario::RollingUpgrade(a) => serde_json::to_value(a),
            Scenario::DcOutage(a) => serde_json::to_value(a),
            Scenario::Flap(a) => serde_json::to_value(a),
            Scenario::Scale(a) => serde_json::to_value(a),
        };
        value.unwrap_or_default()
    }
}

/// What a scenario hands back for the report.
#[derive(Debug, Default)]
pub struct Finished {
    /// Every client.
    pub clients: Vec<ClientOutcome>,
    /// Thresholds missed.
    pub reasons: Vec<String>,
    /// Servers' versions (rolling upgrades).
    pub servers: Option<Vec<ServerVersions>>,
    /// Main phase duration (rolling upgrades).
    pub duration_ms: Option<u64>,
    /// Time to go home after a restore.
    pub return_home_ms: Option<u64>,
}

/// Runs `geolb scenario ...`.
pub async fn run(args: &ScenarioArgs) -> anyhow::Result<ExitCode> {
    let ScenarioCommand::Run(run) = &args.command;
    let dir = crate::lab::state::lab_dir(run.dir.clone());
    let lab = Lab::open(&dir).await?;
    let report = execute(&lab, &run.name).await?;
    if let Some(file) = &run.report {
        std::fs::write(file, serde_json::to_vec_pretty(&report)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
    }
    report::store::save(&lab.control, &report).await?;
    if run.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        emit(&report::print::render(&report))?;
    }
    crate::archive::lab::after_run(&run.export, &lab.state, &report).await?;
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs one scenario on `lab` and builds its report. A gate that times out
/// ends the scenario early: the report then fails with that reason.
pub async fn execute(lab: &Lab, scenario: &Scenario) -> anyhow::Result<Report> {
    let started_at = geolb_proto::now_ms();
    let observer = Observer::start(&lab.control).await?;
    observer.note("begin", scenario.name());
    let outcome = match scenario {
        Scenario::RollingUpgrade(a) => rolling_upgrade::run(lab, a, &observer).await,
        Scenario::DcOutage(a) => dc_outage::run(lab, a, &observer).await,
        Scenario::Flap(a) => flap::run(lab, a, &observer).await,
        Scenario::Scale(a) => scale::run(lab, a, &observer).await,
    };
    let finished = match outcome {
        Ok(finished) => finished,
        Err(e) if e.downcast_ref::<crate::UsageError>().is_some() => return Err(e),
        Err(e) => {
            observer.note("aborted", format!("{e:#}"));
            Finished {
                reasons: vec![format!("{e:#}")],
                ..Finished::default()
            }
        }
    };
    observer.note("end", scenario.name());
    let finished_at = geolb_proto::now_ms();
    let stamp = report::rfc3339(started_at);
    let id = format!(
        "{}-{}",
        stamp[..19].replace([':', '-'], "").replace('T', "-"),
        scenario.name()
    );
    Ok(Report {
        id,
        scenario: scenario.name().into(),
        params: scenario.params(),
        started_at: stamp,
        finished_at: report::rfc3339(finished_at),
        passed: finished.reasons.is_empty(),
        reasons: finished.reasons,
        timeline: observer.timeline(),
        summary: report::summary::summarise(&finished.clients),
        clients: finished.clients,
        servers: finished.servers,
        duration_ms: finished.duration_ms,
        return_home_ms: finished.return_home_ms,
    })
}
