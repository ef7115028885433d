//! The `geolb` command line: global flags, one subcommand per module, and
//! the one-line error convention (`geolb: <message>`, exit 1, or 2 for usage).

use crate::cmd::CmdArgs;
use crate::control::{Control, SigningArgs};
use crate::control_plane::cmd::ControlPlaneArgs;
use crate::fleet::FleetArgs;
use crate::watch::WatchArgs;
use crate::{cmd, fleet, watch, UsageError};
use clap::{Parser, Subcommand};
use geolb_proto::connect::ControlArgs;
pub use geolb_proto::logging::LogFormat;
use std::process::ExitCode;

/// Exit code of bad command-line input.
pub const USAGE_EXIT: u8 = 2;

/// The nats-geolb coordinator: see the fleet of agents and drive it over the control plane.
#[derive(Debug, Parser)]
#[command(name = "geolb", version, propagate_version = true)]
pub struct Cli {
    /// Control-plane connection.
    #[command(flatten)]
    pub control: ControlArgs,
    /// Command signing.
    #[command(flatten)]
    pub signing: SigningArgs,
    /// Log format on stderr (level from RUST_LOG, default warn).
    #[arg(long, env = "GEOLB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The agents and their last heartbeat, the round trips clients measure, the link controls (default: the lab's control plane).
    Fleet(FleetArgs),
    /// Send a command (status, stop, start, restart, upgrade, flap, scale) to agents.
    Cmd(CmdArgs),
    /// Follow agent events until Ctrl-C.
    Watch(WatchArgs),
    /// Keys and permissions of a least-privilege control plane (`init`).
    ControlPlane(ControlPlaneArgs),
    /// The local lab: init, up, status, down.
    Lab(crate::lab::cli::LabArgs),
    /// Run a failure scenario on the lab, or on any fleet with --control.
    Scenario(crate::scenario::ScenarioArgs),
    /// Stored scenario reports: ls, show.
    Report(crate::report::cli::ReportArgs),
    /// Fly.io: scale or deploy the apps in fly/ through flyctl.
    Fly(crate::fly::FlyArgs),
    /// Executables on the control plane for `upgrade --to obj:NAME`: put, ls, rm.
    Binary(crate::objects::ObjectArgs),
    /// Payload files on the control plane for `client --payload obj:NAME`: put, ls, rm.
    Data(crate::objects::ObjectArgs),
    /// Archive the control plane's telemetry to S3 (s3://BUCKET/PREFIX) until SIGTERM.
    Archive(crate::archive::cli::ArchiveArgs),
    /// The web dashboard: the fleet and every run, live and historical.
    Dashboard(crate::dashboard::DashboardArgs),
}

/// Parses the command line; `Err` holds the exit code after help, version or a usage error was printed.
pub fn parse() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|err| {
        use clap::error::ErrorKind::*;
        match err.kind() {
            DisplayHelp | DisplayVersion | DisplayHelpOnMissingArgumentOrSubcommand => {
                let _ = err.print();
                ExitCode::from(err.exit_code() as u8)
            }
            _ => {
                eprintln!("geolb: {}", one_line(&err.render().to_string()));
                ExitCode::from(USAGE_EXIT)
            }
        }
    })
}

/// Clap's message on one line: the text before `Usage:`, without the `error:` prefix.
fn one_line(rendered: &str) -> String {
    let text: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.starts_with("Usage:"))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
        .collect();
    let text = text.join(" ");
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    format!("{text}; see --help")
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Fleet(args) => fleet::run(&cli.lab_control().await?, args).await,
        Command::Cmd(args) => {
            let plan = args.plan()?;
            cmd::run(&cli.connect().await?, &plan).await
        }
        Command::Watch(args) => {
            let subject = args.subject()?;
            watch::run(&cli.connect().await?, &subject, args.json).await
        }
        Command::ControlPlane(args) => crate::control_plane::cmd::run(args),
        Command::Lab(args) => crate::lab::cli::run(args).await,
        Command::Scenario(args) => crate::scenario::run(&cli, args).await,
        Command::Report(args) => crate::report::cli::run(&cli.lab_control().await?, args).await,
        Command::Fly(args) => crate::fly::run(args),
        Command::Binary(args) => crate::objects::run_binary(&cli.lab_control().await?, args).await,
        Command::Data(args) => crate::objects::run_data(&cli.lab_control().await?, args).await,
        Command::Archive(args) => crate::archive::cli::run(&cli.control, args).await,
        Command::Dashboard(args) => crate::dashboard::run(&cli, args).await,
    }
}

impl Cli {
    /// Connects to the control plane, signing commands when `--signing-key` is given.
    pub async fn connect(&self) -> anyhow::Result<Control> {
        let signer = self.signing.signer()?;
        let control = Control::connect(&self.control).await?;
        Ok(control.with_signer(signer, self.signing.command_validity.0))
    }

    /// `--control` when given, else the control plane of the lab in
    /// `GEOLB_LAB_DIR` (default `.lab`).
    pub async fn lab_control(&self) -> anyhow::Result<Control> {
        if self.control.url.is_some() {
            return self.connect().await;
        }
        crate::lab::up::connect(&crate::lab::state::LabState::current()?).await
    }
}

/// Prints `error` as one line and returns its exit code (2 for usage, 1 otherwise).
pub fn report(error: &anyhow::Error) -> ExitCode {
    if let Some(io) = error.downcast_ref::<std::io::Error>() {
        if io.kind() == std::io::ErrorKind::BrokenPipe {
            return ExitCode::SUCCESS;
        }
    }
    eprintln!("geolb: {error:#}");
    if error.downcast_ref::<UsageError>().is_some() {
        ExitCode::from(USAGE_EXIT)
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_errors_fit_on_one_line() {
        let err = Cli::try_parse_from(["geolb", "cmd", "status"]).unwrap_err();
        let line = one_line(&err.render().to_string());
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("<SELECTOR>"), "{line}");
        let err = Cli::try_parse_from(["geolb", "cmd", "nuke", "all"]).unwrap_err();
        let line = one_line(&err.render().to_string());
        assert!(
            line.starts_with("invalid value 'nuke' for '<VERB>'"),
            "{line}"
        );
    }

    #[test]
    fn usage_errors_exit_2() {
        let usage = anyhow::Error::new(UsageError("bad".into()));
        assert_eq!(report(&usage), ExitCode::from(2));
        assert_eq!(report(&anyhow::anyhow!("down")), ExitCode::FAILURE);
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
