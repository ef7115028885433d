//! The `fleet` subcommands and their output.

use super::{list_with_source, FleetEntry, Source, LISTEN_WINDOW};
use crate::control::Control;
use crate::liveness::format_age;
use crate::table::Table;

/// `geolb fleet ...`.
#[derive(Debug, clap::Args)]
pub struct FleetArgs {
    /// What to do with the fleet.
    #[command(subcommand)]
    pub command: FleetCommand,
}

/// The `fleet` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum FleetCommand {
    /// List every agent from its last heartbeat, sorted by region then id.
    Ls {
        /// Print a JSON array (each object carries the full heartbeat).
        #[arg(long, env = "GEOLB_JSON")]
        json: bool,
    },
    /// The region-to-region round trips as the clients measure them (listens 2.5 s).
    Rtt {
        /// Print JSON: `[{from, to, rtt_ms}]`.
        #[arg(long, env = "GEOLB_JSON")]
        json: bool,
    },
    /// Every link control registered (WAN emulators, agents' front links) and the regions it joins.
    Links {
        /// Print JSON.
        #[arg(long, env = "GEOLB_JSON")]
        json: bool,
    },
}

/// Runs `geolb fleet ...`.
pub async fn run(control: &Control, args: &FleetArgs) -> anyhow::Result<std::process::ExitCode> {
    let json = match args.command {
        FleetCommand::Ls { json } => json,
        FleetCommand::Rtt { json } => return super::measured::rtt(control, json).await,
        FleetCommand::Links { json } => return super::measured::links(control, json).await,
    };
    let fleet = list_with_source(control).await?;
    if fleet.source == Source::Listen {
        eprintln!(
            "geolb: note: the control plane has no JetStream; listened to heartbeats for {} ms instead",
            LISTEN_WINDOW.as_millis()
        );
    }
    if json {
        crate::emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&fleet.entries)?
        ))?;
    } else if fleet.entries.is_empty() {
        eprintln!("geolb: no agent has sent a heartbeat to {}", control.url());
    } else {
        crate::emit(&render(&fleet.entries))?;
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// The listing as an aligned text table.
pub fn render(entries: &[FleetEntry]) -> String {
    let mut table = Table::new([
        "ID",
        "REGION",
        "ROLE",
        "STATE",
        "VERSION",
        "RESTARTS",
        "REPLICAS",
        "HEARTBEAT",
        "LIVENESS",
    ]);
    for e in entries {
        table.row([
            e.id.clone(),
            e.region.clone(),
            e.role.to_string(),
            e.state.to_string(),
            e.version.clone().unwrap_or_else(|| "-".into()),
            e.restarts.to_string(),
            format!("{}/{}", e.replicas_running, e.replicas_desired),
            format!("{} ago", format_age(e.age_ms)),
            e.liveness.to_string(),
        ]);
    }
    table.render()
}
