//! The lab's dashboard: `geolb dashboard`, read-only, as one more lab
//! process (a host process also for a lab in containers, next to the
//! control plane's published port), started once the clients are up and
//! recorded like the others so `lab down` stops it. It connects as the
//! lab's observer identity (`client-1`), so it can read but not command.
//!
//! `GEOLB_LAB_DASHBOARD` sets where it listens (default `127.0.0.1:0`, a
//! free port; the URL is in `lab status` and printed by `lab up`), or
//! `off` for none.

use super::process;
use super::state::{LabProcess, LabState};
use std::time::{Duration, Instant};

/// The variable that sets the dashboard's address, or `off`.
pub const ENV: &str = "GEOLB_LAB_DASHBOARD";
/// The name of its lab process and log.
pub const NAME: &str = "dashboard";

/// Starts the dashboard of `state`'s lab, unless turned off; records its URL.
pub async fn start(state: &mut LabState) -> anyhow::Result<()> {
    let listen = std::env::var(ENV).unwrap_or_else(|_| "127.0.0.1:0".to_string());
    if listen == "off" {
        return Ok(());
    }
    let url_file = state.dir.join("dashboard.url");
    let _ = std::fs::remove_file(&url_file);
    let mut args = vec!["--control".to_string(), state.control_url.clone()];
    if !state.identities.is_empty() {
        args.push("--nkey-file".into());
        args.push(state.identity("client-1")?.seed_path.display().to_string());
    }
    args.extend([
        "dashboard".into(),
        "--listen".into(),
        listen.clone(),
        "--url-file".into(),
        url_file.display().to_string(),
    ]);
    let log = state.dir.join("logs").join(format!("{NAME}.log"));
    let pid = process::spawn(&std::env::current_exe()?, &args, &log)?;
    state.processes.push(LabProcess {
        name: NAME.into(),
        pid,
    });
    state.save()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(&url_file) {
            if !text.trim().is_empty() {
                state.dashboard_url = Some(text.trim().to_string());
                return state.save();
            }
        }
        if !process::alive(pid) || Instant::now() > deadline {
            anyhow::bail!(
                "the lab's dashboard did not start on {listen} (see {}); set {ENV} to another address or to off",
                log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
