//! `lab up`'s part for the GeoDNS and the anycast router: their identities,
//! their configuration files, their processes (`geolb-agent geodns` and
//! `geolb-agent anycast`), and the gate that they answer on the control
//! plane before any client starts.

use super::docker;
use super::launch::{Launcher, View};
use super::state::LabState;
use super::topology::Topology;
use crate::control::Control;
use geolb_proto::routing::{anycast, dns};
use std::time::{Duration, Instant};

/// The lab's GeoDNS id.
pub const DNS_ID: &str = "dns";
/// The lab's anycast router id.
pub const ANYCAST_ID: &str = "anycast";

/// The routing identities of the control plane, as `(kind, id)`.
pub fn identities(t: &Topology) -> Vec<(String, String)> {
    let mut ids = Vec::new();
    if t.routing.dns.is_some() {
        ids.push(("dns".to_string(), DNS_ID.to_string()));
    }
    if t.routing.anycast.is_some() {
        ids.push(("anycast".to_string(), ANYCAST_ID.to_string()));
    }
    ids
}

/// Starts the GeoDNS and the router of the plan, and waits until they answer.
pub async fn start(
    state: &mut LabState,
    t: &Topology,
    launcher: &Launcher,
    view: &View,
    control: &Control,
) -> anyhow::Result<()> {
    let parts = [
        (
            "geodns",
            DNS_ID,
            "dns.json",
            t.routing
                .dns
                .as_ref()
                .map(|d| serde_json::to_vec_pretty(&d.config)),
        ),
        (
            "anycast",
            ANYCAST_ID,
            "anycast.json",
            t.routing.anycast.as_ref().map(serde_json::to_vec_pretty),
        ),
    ];
    for (command, id, file, config) in parts {
        let Some(config) = config else { continue };
        let path = state.dir.join(file);
        std::fs::write(&path, config?)?;
        let mut args = vec![
            view.agent.display().to_string(),
            command.into(),
            "--id".into(),
            id.into(),
            "--config".into(),
            launcher.path(state, &path),
        ];
        let kind = match command {
            "geodns" => "dns",
            _ => "anycast",
        };
        super::up::with_identity(&mut args, state, launcher, view, &format!("{kind}-{id}"))?;
        // On every region's network, like the emulator (only processes plan one yet).
        launcher
            .launch(state, t, id, docker::Kind::Wan, args)
            .await?;
    }
    if t.routing.dns.is_some() {
        answers(control, &dns::subject(DNS_ID, "state"), "the GeoDNS").await?;
    }
    if t.routing.anycast.is_some() {
        answers(
            control,
            &anycast::subject(ANYCAST_ID, "state"),
            "the anycast router",
        )
        .await?;
    }
    Ok(())
}

/// Waits until `subject` answers an ok reply.
async fn answers(control: &Control, subject: &str, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let asked = crate::links::call::<serde_json::Value>(
            control,
            what,
            subject.to_string(),
            "state",
            serde_json::Value::Null,
        );
        let last = match asked.await {
            Ok(_) => return Ok(()),
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() >= deadline {
            anyhow::bail!("{what} is not ready after 10 s ({subject}): {last}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Checks that every `dns:` link's address can be bound here.
pub fn check_dns_addresses(t: &Topology) -> anyhow::Result<()> {
    for link in t.links.iter().filter(|l| l.name.starts_with("dns:")) {
        if let Err(e) = std::net::TcpListener::bind(link.listen.as_str()) {
            anyhow::bail!(
                "cannot listen on {} for the GeoDNS's answers ({e}); every 127/8 address must be local (Linux) \
                 and the port free: set ports_base, or clients.dns = 0",
                link.listen
            );
        }
    }
    Ok(())
}
