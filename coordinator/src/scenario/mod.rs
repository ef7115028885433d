//! `geolb scenario run NAME`: the seed's failure scenarios on any fleet a
//! control plane sees (the local lab by default, or `geolb --control URL`),
//! driven only through the back channel (agents' verbs, registered link
//! controls, flyctl), each step gated on health, then a report (see
//! [`crate::report`]). A run that fails half-way undoes its faults.
//!
//! # Layout
//! - [`fleet`]: the fleet a run sees (agents, servers, clients, links), from the lab or a control plane.
//! - [`gates`]: servers ready, clients settled, home regions, expected regions.
//! - [`faults`]: the faults applied and how each is undone.
//! - [`observe`]: the timeline and what every client reported, published as it grows.
//! - [`outcome`]: what every client saw (pure).
//! - [`routing`]: what the GeoDNS and the anycast router did during a fault (pure).
//! - one module per scenario: [`rolling_upgrade`], [`dc_outage`], [`flap`], [`scale`].

pub mod dc_outage;
pub mod faults;
pub mod flap;
pub mod fleet;
pub mod gates;
pub mod observe;
pub mod outcome;
pub mod rolling_upgrade;
pub mod routing;
pub mod scale;

use crate::cli::Cli;
use crate::emit;
use crate::report::{self, ClientOutcome, Report, ServerVersions};
use clap::{Args, Subcommand};
use faults::Faults;
use fleet::{Fleet, Source};
use geolb_proto::scenario::ScenarioUpdate;
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
    /// Run a scenario on the lab (or, with --control, any fleet) and report what the clients saw.
    Run(RunArgs),
}

/// Flags of `geolb scenario run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Lab directory, when no --control is given.
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
    /// When the routing systems noticed the fault.
    pub routing: Option<crate::report::RoutingFigures>,
}

/// Runs `geolb scenario ...`: on the fleet of `--control`, else on the lab.
pub async fn run(cli: &Cli, args: &ScenarioArgs) -> anyhow::Result<ExitCode> {
    let ScenarioCommand::Run(run) = &args.command;
    let fleet = open(cli, run).await?;
    if let Scenario::DcOutage(a) = &run.name {
        if a.dry_run {
            let steps = dc_outage::plan(&fleet, a)?;
            let text: Vec<String> = steps
                .iter()
                .enumerate()
                .map(|(i, s)| format!("{}. {s}\n", i + 1))
                .collect();
            emit(&text.concat())?;
            return Ok(ExitCode::SUCCESS);
        }
    }
    let report = execute(&fleet, &run.name).await?;
    if let Some(file) = &run.report {
        std::fs::write(file, serde_json::to_vec_pretty(&report)?)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
    }
    match fleet.jetstream {
        true => report::store::save(&fleet.control, &report).await?,
        false => eprintln!(
            "geolb: note: the control plane {} has no JetStream, so this report is not kept in its history (`geolb report` will not list it){}",
            fleet.control.url(),
            match &run.report {
                Some(file) => format!("; its JSON is in {}", file.display()),
                None => "; keep it with --report FILE".into(),
            }
        ),
    }
    if run.json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        emit(&report::print::render(&report))?;
    }
    let lab_archive = match &fleet.source {
        Source::Lab(state) => state.config.archive.as_ref(),
        Source::Control(_) => None,
    };
    crate::archive::lab::after_run(&run.export, lab_archive, &report).await?;
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The fleet of `--control`, or of the lab in `--dir`.
pub async fn open(cli: &Cli, run: &RunArgs) -> anyhow::Result<Fleet> {
    if cli.control.url.is_some() {
        let control = cli.connect().await?;
        let url = control.url().to_string();
        return Fleet::open(control, Source::Control(url)).await;
    }
    let dir = crate::lab::state::lab_dir(run.dir.clone());
    let state = crate::lab::state::LabState::load(&dir)?.ok_or_else(|| {
        anyhow::anyhow!(
            "no lab in {} and no --control given: start `geolb lab up`, or run on another fleet with `geolb --control URL scenario run ...`",
            dir.display()
        )
    })?;
    let running = state.running().await?;
    if !state.ready || running < state.started() {
        anyhow::bail!(
            "the lab in {} is not whole ({running} of {} processes alive); `geolb lab down` then `geolb lab up`",
            dir.display(),
            state.started()
        );
    }
    let control = crate::lab::up::connect(&state).await?;
    Fleet::open(control, Source::Lab(Box::new(state))).await
}

/// Runs one scenario on `fleet` and builds its report. A gate that times
/// out, an agent gone stale or Ctrl-C ends the scenario early: every fault
/// it applied is undone and the report fails with the reason.
pub async fn execute(fleet: &Fleet, scenario: &Scenario) -> anyhow::Result<Report> {
    let started_at = geolb_proto::now_ms();
    let stamp = report::rfc3339(started_at);
    let id = format!(
        "{}-{}",
        stamp[..19].replace([':', '-'], "").replace('T', "-"),
        scenario.name()
    );
    publish(
        fleet,
        &id,
        &ScenarioUpdate::Begin {
            v: geolb_proto::PROTOCOL_VERSION,
            run: id.clone(),
            scenario: scenario.name().into(),
            params: scenario.params(),
            at_ms: started_at,
        },
    )
    .await;
    let observer = Observer::start(&fleet.live, fleet.control.client().clone(), id.clone());
    observer.note("begin", scenario.name());
    let faults = Faults::default();
    let work = async {
        match scenario {
            Scenario::RollingUpgrade(a) => rolling_upgrade::run(fleet, a, &observer).await,
            Scenario::DcOutage(a) => dc_outage::run(fleet, a, &observer, &faults).await,
            Scenario::Flap(a) => flap::run(fleet, a, &observer, &faults).await,
            Scenario::Scale(a) => scale::run(fleet, a, &observer).await,
        }
    };
    let outcome = tokio::select! {
        outcome = work => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted (Ctrl-C)")),
    };
    faults.undo_all(fleet, &observer).await;
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
    let passed = finished.reasons.is_empty();
    // Let the observer publish the last entries before the end.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    publish(
        fleet,
        &id,
        &ScenarioUpdate::End {
            run: id.clone(),
            passed,
            reasons: finished.reasons.clone(),
            at_ms: finished_at,
        },
    )
    .await;
    Ok(Report {
        id,
        scenario: scenario.name().into(),
        params: scenario.params(),
        started_at: stamp,
        finished_at: report::rfc3339(finished_at),
        passed,
        reasons: finished.reasons,
        timeline: observer.timeline(),
        summary: report::summary::summarise(&finished.clients),
        clients: finished.clients,
        servers: finished.servers,
        duration_ms: finished.duration_ms,
        return_home_ms: finished.return_home_ms,
        fleet: Some(fleet.summary()),
        routing: finished.routing,
    })
}

/// Publishes one progress update of run `id` (lost if the control plane is away).
async fn publish(fleet: &Fleet, id: &str, update: &ScenarioUpdate) {
    if let Ok(body) = serde_json::to_vec(update) {
        let client = fleet.control.client();
        let _ = client
            .publish(geolb_proto::scenario::subject(id), body.into())
            .await;
        let _ = client.flush().await;
    }
}
