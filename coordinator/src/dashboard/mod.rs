//! `geolb dashboard`: the fleet and every run in a browser, live and
//! historical, rendered on the server.
//!
//! # How it works
//! - The dashboard alone talks to the control plane ([`plane`]): it
//!   follows the fleet ([`crate::live::LiveFleet`]), each agent's recent
//!   history ([`history`]) and the scenarios running now ([`live_runs`]),
//!   and reads the reports kept in JetStream ([`runs`]). The browser talks
//!   only to the dashboard, so no control-plane credential reaches a page.
//! - Pages are HTML rendered with maud, charts are SVG written in Rust
//!   ([`svg`], [`timeline`]); each live page follows one Server-Sent
//!   Events stream ([`sse`]) whose `part` events replace parts of the page
//!   (our one script, [`script`]). Nothing is fetched from anywhere else.
//! - Read-only unless started with `--allow-commands` ([`commands`], CSRF
//!   in [`auth`]); loopback unless given `--token`.
//!
//! # Layout
//! - [`server`]: routes, handlers, the access check and security headers.
//! - [`page`]: the frame of every page, the CSS, the banner, the 404 page.
//! - [`fleet_page`], [`agent_page`], [`runs_page`], [`report_page`] and
//!   [`report_parts`], [`compare_page`], [`scenario_page`]: one per page.
//! - [`export`]: a report as one self-contained HTML file.

pub mod agent_page;
pub mod auth;
pub mod commands;
pub mod compare_page;
pub mod export;
pub mod fleet_page;
pub mod history;
pub mod live_runs;
pub mod page;
pub mod plane;
pub mod report_page;
pub mod report_parts;
pub mod runs;
pub mod runs_page;
pub mod scenario_page;
pub mod script;
pub mod server;
pub mod sse;
pub mod svg;
pub mod timeline;

use crate::cli::Cli;
use crate::UsageError;
use geolb_proto::connect::ControlArgs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Shortest access token accepted.
const MIN_TOKEN: usize = 16;

/// Flags of `geolb dashboard` (the control-plane flags are `geolb`'s own, given before `dashboard`).
#[derive(Debug, Clone, clap::Args)]
pub struct DashboardArgs {
    /// Address to serve on; anything but loopback needs --token.
    #[arg(long, env = "GEOLB_DASHBOARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The dashboard's own access token (not the control plane's --token): every request must carry it.
    #[arg(long = "token", env = "GEOLB_DASHBOARD_TOKEN", hide_env_values = true)]
    pub access_token: Option<String>,
    /// Offer the agents' commands (stop, start, restart, upgrade, flap, scale) on the agent pages.
    #[arg(long, env = "GEOLB_DASHBOARD_ALLOW_COMMANDS")]
    pub allow_commands: bool,
    /// Write the dashboard's URL to this file once it listens (useful with port 0).
    #[arg(long, env = "GEOLB_DASHBOARD_URL_FILE")]
    pub url_file: Option<PathBuf>,
}

impl DashboardArgs {
    /// Checks the flags: loopback or a token of at least [`MIN_TOKEN`] characters.
    pub fn check(&self) -> Result<(), UsageError> {
        if let Some(t) = &self.access_token {
            if t.len() < MIN_TOKEN {
                return Err(UsageError(format!(
                    "--token must have at least {MIN_TOKEN} characters"
                )));
            }
        }
        if !self.listen.ip().is_loopback() && self.access_token.is_none() {
            return Err(UsageError(format!(
                "--listen {} is not a loopback address: give --token TOKEN (or GEOLB_DASHBOARD_TOKEN) too, or listen on 127.0.0.1",
                self.listen
            )));
        }
        Ok(())
    }
}

/// The control plane to follow: `--control` and its credentials, else the
/// lab's (as its coordinator when commands are allowed, else as its observer).
fn control_args(
    cli: &Cli,
    allow_commands: bool,
) -> anyhow::Result<(ControlArgs, Option<geolb_proto::signing::Signer>)> {
    let signer = if allow_commands {
        cli.signing.signer()?
    } else {
        None
    };
    if cli.control.url.is_some() {
        return Ok((cli.control.clone(), signer));
    }
    let state = crate::lab::state::LabState::current()?;
    let name = if allow_commands {
        "coordinator"
    } else {
        "client-1"
    };
    let args = state.control_args(&[name])?;
    if state.identities.is_empty() {
        return Ok((args, signer));
    }
    let signer = match (allow_commands, signer) {
        (true, None) => Some(geolb_proto::signing::Signer::from_file(
            &state.identity("signing")?.seed_path,
        )?),
        (_, signer) => signer,
    };
    Ok((args, signer))
}

/// Runs the dashboard until SIGINT or SIGTERM.
pub async fn run(cli: &Cli, args: &DashboardArgs) -> anyhow::Result<ExitCode> {
    args.check()?;
    let (control, signer) = control_args(cli, args.allow_commands)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {}: {e}; pick another --listen",
                args.listen
            )
        })?;
    let url = format!("http://{}/", listener.local_addr()?);
    let plane = plane::Plane::start(control, signer, cli.signing.command_validity.0);
    let app = server::app(plane, args.allow_commands, args.access_token.clone());
    if let Some(file) = &args.url_file {
        std::fs::write(file, format!("{url}\n"))
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
    }
    crate::emit(&format!(
        "dashboard on {url} ({}); Ctrl-C stops it\n",
        if args.allow_commands {
            "commands allowed"
        } else {
            "read-only"
        }
    ))?;
    let serve = axum::serve(listener, server::router(app));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = serve => result.map_err(|e| anyhow::anyhow!("the dashboard stopped serving: {e}"))?,
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(ExitCode::SUCCESS)
}
