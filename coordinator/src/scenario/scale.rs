//! `scale`: the `rtt` clients of one region scale up or down (their agent's
//! `scale` verb); every new client must elect a server at home.

use super::lab::{outcomes, Lab};
use super::observe::Observer;
use super::Finished;
use geolb_proto::{Request, ScaleArgs as AgentScale, WireDuration};
use std::time::{Duration, Instant};

/// Flags of `scenario run scale`.
#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct ScaleArgs {
    /// The region whose clients scale.
    #[arg(long)]
    pub region: String,
    /// How many `rtt` clients it should have.
    #[arg(long)]
    pub clients: u32,
    /// How long the clients may take to connect.
    #[arg(long, default_value = "60s")]
    pub settle_timeout: WireDuration,
}

/// Runs the scenario.
pub async fn run(lab: &Lab, args: &ScaleArgs, obs: &Observer) -> anyhow::Result<Finished> {
    lab.check_region(&args.region)?;
    if args.clients == 0 || args.clients > geolb_proto::MAX_REPLICAS {
        return Err(crate::UsageError(format!(
            "--clients: use 1 to {}",
            geolb_proto::MAX_REPLICAS
        ))
        .into());
    }
    let agent = format!("{}-rtt", args.region);
    if !lab.topology.clients.iter().any(|g| g.agent_id == agent) {
        anyhow::bail!(
            "the lab has no rtt clients in {} to scale; give clients.rtt > 0 in its config",
            args.region
        );
    }
    lab.settled(obs, args.settle_timeout.0).await?;
    obs.mark_baseline();
    let began = obs.elapsed_ms();
    obs.note("scale", format!("{agent} to {} clients", args.clients));
    let scale = Request::Scale(AgentScale {
        replicas: args.clients,
    });
    lab.command(std::slice::from_ref(&agent), &scale, args.settle_timeout.0)
        .await?;

    let ids: Vec<String> = (0..args.clients).map(|i| format!("{agent}-{i}")).collect();
    let started = Instant::now();
    loop {
        let clients = obs.clients();
        let home = ids
            .iter()
            .filter(|id| {
                clients.get(*id).and_then(|v| v.region_now()) == Some(args.region.as_str())
            })
            .count();
        if home == ids.len() {
            obs.note(
                "settled",
                format!("all {home} clients elected a server in {}", args.region),
            );
            break;
        }
        if started.elapsed() > args.settle_timeout.0 {
            obs.note(
                "timeout",
                format!("{home} of {} clients at home", ids.len()),
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let now = obs.clients();
    let mut clients = outcomes(&now, &now, (began, obs.elapsed_ms()), |v| {
        v.latest.region.clone()
    });
    // Clients stopped by a scale-down no longer report; only the wanted ones count.
    clients.retain(|c| !c.id.starts_with(&format!("{agent}-")) || ids.contains(&c.id));
    let mut reasons = Vec::new();
    for id in &ids {
        match clients.iter().find(|c| &c.id == id) {
            None => reasons.push(format!("{id} never reported")),
            Some(c) if c.landed_region.as_deref() != Some(args.region.as_str()) => {
                reasons.push(format!(
                    "{id} elected a server in {:?}, not {}",
                    c.landed_region, args.region
                ))
            }
            Some(_) => {}
        }
    }
    Ok(Finished {
        clients,
        reasons,
        ..Finished::default()
    })
}
