//! `geolb lab init | up | status | down`.

use super::config::{LabConfig, TEMPLATE};
use super::state::{lab_dir, LabState};
use super::up::{connect, Binaries, Launcher};
use crate::table::Table;
use crate::{emit, UsageError};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Flags of `geolb lab`.
#[derive(Debug, Args)]
pub struct LabArgs {
    /// Lab directory (state, configs, logs, the control plane's store).
    #[arg(long, env = "GEOLB_LAB_DIR", global = true)]
    pub dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: LabCommand,
}

/// The lab's subcommands.
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Write the default configuration, commented, to FILE (default lab.toml).
    Init {
        /// Where to write it.
        #[arg(default_value = "lab.toml")]
        file: PathBuf,
    },
    /// Start the lab and return when everything is healthy.
    Up {
        /// Configuration file (default: the built-in default lab).
        #[arg(long, env = "GEOLB_LAB_CONFIG")]
        config: Option<PathBuf>,
        /// Folder of installed nats-server versions.
        #[arg(long, env = "GEOLB_SERVERS_DIR", default_value = ".tools/nats-server")]
        servers_dir: PathBuf,
        /// Run the lab as containers of the local Docker engine (images from `make images`).
        #[arg(long)]
        docker: bool,
        /// The images of a lab in containers.
        #[command(flatten)]
        images: super::docker::Images,
    },
    /// Show the lab: control plane, servers, clients.
    Status {
        /// Print JSON.
        #[arg(long, env = "GEOLB_JSON")]
        json: bool,
    },
    /// Stop everything the lab started.
    Down {
        /// Also remove containers and networks labelled for this lab when no state file is left.
        #[arg(long)]
        docker: bool,
    },
}

/// Runs `geolb lab ...`.
pub async fn run(args: &LabArgs) -> anyhow::Result<ExitCode> {
    let dir = lab_dir(args.dir.clone());
    match &args.command {
        LabCommand::Init { file } => init(file),
        LabCommand::Up {
            config,
            servers_dir,
            docker,
            images,
        } => {
            let config = load(config.as_ref())?;
            let launcher = match docker {
                true => Launcher::Containers(
                    super::docker::Launcher::connect(&config.nats_version, images.clone()).await?,
                ),
                false => {
                    Launcher::Processes(Binaries::find(servers_dir.clone(), &config.nats_version)?)
                }
            };
            let state = super::up::up(config, &dir, launcher).await?;
            let what = state.backend.noun();
            emit(&format!(
                "lab up in {}: control plane {}, {} {what}; `geolb lab status` shows it\n",
                state.dir.display(),
                state.control_url,
                state.started()
            ))?;
            if let Some(url) = &state.dashboard_url {
                emit(&format!(
                    "dashboard: {url} (read-only; open it in a browser)\n"
                ))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Status { json } => {
            let state = LabState::load(&dir)?.ok_or_else(|| no_lab(&dir))?;
            let control = connect(&state).await?;
            let status = super::status::status(&state, &control).await?;
            if *json {
                emit(&format!("{}\n", serde_json::to_string_pretty(&status)?))?;
            } else {
                print_status(&status)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Down { docker } => match super::down::down(&dir, *docker).await? {
            None => {
                emit(&format!("no lab in {}\n", dir.display()))?;
                Ok(ExitCode::SUCCESS)
            }
            Some(down) if down.left.is_empty() && down.networks > 0 => {
                emit(&format!(
                    "lab down: {} containers and {} networks removed, none left\n",
                    down.stopped, down.networks
                ))?;
                Ok(ExitCode::SUCCESS)
            }
            Some(down) if down.left.is_empty() => {
                emit(&format!(
                    "lab down: {} processes stopped, none left\n",
                    down.stopped
                ))?;
                Ok(ExitCode::SUCCESS)
            }
            Some(down) => anyhow::bail!(
                "lab down: {} would not go; remove them by hand",
                down.left.join(", ")
            ),
        },
    }
}

/// The lab's configuration: the file given, else the default.
pub fn load(file: Option<&PathBuf>) -> anyhow::Result<LabConfig> {
    let Some(file) = file else {
        return Ok(LabConfig::default());
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    LabConfig::parse(&text).map_err(|e| UsageError(format!("{}: {e}", file.display())).into())
}

/// The error for commands that need a running lab.
pub fn no_lab(dir: &std::path::Path) -> anyhow::Error {
    anyhow::anyhow!("no lab in {}; start one with `geolb lab up`", dir.display())
}

fn init(file: &PathBuf) -> anyhow::Result<ExitCode> {
    if file.exists() {
        return Err(UsageError(format!(
            "{} exists; remove it or name another file",
            file.display()
        ))
        .into());
    }
    std::fs::write(file, TEMPLATE)?;
    emit(&format!(
        "wrote {}; start the lab with `geolb lab up --config {}`\n",
        file.display(),
        file.display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn print_status(status: &super::status::LabStatus) -> anyhow::Result<()> {
    let mut out = format!(
        "lab in {} ({}, {} processes alive)\ncontrol plane: {}\ndashboard: {}\n\n",
        status.dir,
        if status.ready { "ready" } else { "not ready" },
        status.processes,
        status.control_url,
        status.dashboard_url.as_deref().unwrap_or("-")
    );
    let mut servers = Table::new([
        "SERVER",
        "REGION",
        "CLIENT URL",
        "MONITOR",
        "VERSION",
        "HEALTHY",
    ]);
    for s in &status.servers {
        let version = s.version.clone().unwrap_or_else(|| "-".into());
        let healthy = if s.healthy { "yes" } else { "no" };
        servers.row([
            s.id.as_str(),
            &s.region,
            &s.client_url,
            &s.monitor_url,
            &version,
            healthy,
        ]);
    }
    out.push_str(&servers.render());
    let mut clients = Table::new(["CLIENT", "REGION", "STRATEGY", "SERVER", "SERVER REGION"]);
    for c in &status.clients {
        let server = c.server.clone().unwrap_or_else(|| "-".into());
        let region = c.server_region.clone().unwrap_or_else(|| "-".into());
        clients.row([c.id.as_str(), &c.region, &c.strategy, &server, &region]);
    }
    out.push('\n');
    out.push_str(&clients.render());
    let mut identities = Table::new(["IDENTITY", "KIND", "SEED FILE"]);
    for i in &status.identities {
        identities.row([
            i.name.clone(),
            i.kind.clone(),
            i.seed_path.display().to_string(),
        ]);
    }
    out.push('\n');
    out.push_str(&identities.render());
    if let Some(dns) = &status.dns {
        let listeners: Vec<String> = dns
            .listeners
            .iter()
            .map(|l| format!("{} {}", l.region, l.listen))
            .collect();
        out.push_str(&format!(
            "\nGeoDNS {}: {} (TTL {} s, {}), resolvers: {}\n",
            dns.id,
            dns.target,
            dns.ttl_s,
            dns.policy,
            listeners.join(", ")
        ));
    }
    if let Some(anycast) = &status.anycast {
        let vantages: Vec<String> = anycast
            .vantages
            .iter()
            .map(|v| format!("{} {}", v.region, v.listen))
            .collect();
        out.push_str(&format!(
            "anycast {} ({}): {}\n",
            anycast.id,
            anycast.mode,
            vantages.join(", ")
        ));
    }
    Ok(emit(&out)?)
}
