//! `scale`: the `rtt` clients of one region scale up or down (their agent's
//! `scale` verb); every client of that agent must then elect a server at
//! home.

use super::fleet::{Fleet, CLIENT_FRESH};
use super::gates;
use super::observe::Observer;
use super::outcome::{home, outcomes};
use super::Finished;
use crate::UsageError;
use geolb_proto::{Request, ScaleArgs as AgentScale, WireDuration};
use std::collections::BTreeSet;
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
    /// The client agent to scale, when the region has several with `rtt` clients.
    #[arg(long)]
    pub agent: Option<String>,
    /// How long the clients may take to connect.
    #[arg(long, default_value = "60s")]
    pub settle_timeout: WireDuration,
}

/// The agent whose `rtt` clients live in the region.
fn agent(fleet: &Fleet, args: &ScaleArgs) -> anyhow::Result<String> {
    let agents: BTreeSet<String> = fleet
        .clients()
        .values()
        .filter(|c| c.status.region == args.region && c.status.strategy == "rtt")
        .map(|c| c.agent.clone())
        .collect();
    match (&args.agent, agents.len()) {
        (Some(id), _) if agents.contains(id) => Ok(id.clone()),
        (Some(id), _) => Err(UsageError(format!(
            "--agent {id} has no rtt clients in {}; those that do: {}",
            args.region,
            list(&agents)
        ))
        .into()),
        (None, 1) => Ok(agents.into_iter().next().expect("one agent")),
        (None, 0) => Err(UsageError(format!(
            "no rtt clients report from {}; start some there (in the lab: clients.rtt > 0)",
            args.region
        ))
        .into()),
        (None, _) => Err(UsageError(format!(
            "{} has several agents with rtt clients ({}); pick one with --agent",
            args.region,
            list(&agents)
        ))
        .into()),
    }
}

/// The processes (the agent's replicas) that run `clients`: their records
/// say how many clients each process runs (`client --count`).
fn processes(fleet: &Fleet, agent: &str, clients: u32) -> anyhow::Result<u32> {
    let per_process = fleet
        .clients()
        .values()
        .filter(|c| c.agent == agent)
        .map(|c| c.status.process_clients.unwrap_or(1))
        .max()
        .unwrap_or(1);
    match clients % per_process {
        0 => Ok(clients / per_process),
        _ => Err(UsageError(format!(
            "--clients {clients}: {agent} runs {per_process} clients to a process; \
             give a multiple of {per_process}"
        ))
        .into()),
    }
}

fn list(agents: &BTreeSet<String>) -> String {
    match agents.is_empty() {
        true => "none".into(),
        false => agents.iter().cloned().collect::<Vec<_>>().join(", "),
    }
}

/// Runs the scenario.
pub async fn run(fleet: &Fleet, args: &ScaleArgs, obs: &Observer) -> anyhow::Result<Finished> {
    fleet.check_region(&args.region)?;
    if args.clients == 0 || args.clients > geolb_proto::MAX_REPLICAS {
        return Err(
            UsageError(format!("--clients: use 1 to {}", geolb_proto::MAX_REPLICAS)).into(),
        );
    }
    let agent = agent(fleet, args)?;
    let processes = processes(fleet, &agent, args.clients)?;
    gates::clients_settled(fleet, obs, args.settle_timeout.0).await?;
    obs.mark_baseline();
    let began = obs.elapsed_ms();
    obs.note("scale", format!("{agent} to {} clients", args.clients));
    let scale = Request::Scale(AgentScale {
        replicas: processes,
    });
    fleet
        .command(std::slice::from_ref(&agent), &scale, args.settle_timeout.0)
        .await?;

    let regions: BTreeSet<String> = fleet.regions().into_iter().collect();
    let mine = |obs: &Observer| {
        let mut clients = obs.clients();
        clients.retain(|_, v| v.agent == agent && v.received.elapsed() < CLIENT_FRESH);
        clients
    };
    let started = Instant::now();
    loop {
        fleet.check_alive()?;
        let clients = mine(obs);
        let homes = gates::homes(&clients, &regions);
        let home = clients
            .values()
            .filter(|v| {
                v.region_now().is_some()
                    && v.region_now() == homes.get(&v.latest.client).map(String::as_str)
            })
            .count();
        if clients.len() == args.clients as usize && home == clients.len() {
            obs.note(
                "settled",
                format!("all {home} clients of {agent} elected a server at home"),
            );
            break;
        }
        if started.elapsed() > args.settle_timeout.0 {
            obs.note(
                "timeout",
                format!(
                    "{home} of {} clients at home, {} reporting",
                    args.clients,
                    clients.len()
                ),
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let now = obs.clients();
    let homes = gates::homes(&now, &regions);
    let window = (began, obs.elapsed_ms());
    let mut clients = outcomes(&now, &now, window, &homes, |v| home(&homes, v));
    // Clients stopped by a scale-down no longer report; only the agent's live ones count.
    let wanted = mine(obs);
    clients
        .retain(|c| now.get(&c.id).is_some_and(|v| v.agent != agent) || wanted.contains_key(&c.id));
    let mut reasons = Vec::new();
    let of_agent: Vec<_> = clients
        .iter()
        .filter(|c| wanted.contains_key(&c.id))
        .collect();
    if of_agent.len() != args.clients as usize {
        reasons.push(format!(
            "{} of {} clients of {agent} report",
            of_agent.len(),
            args.clients
        ));
    }
    for c in of_agent {
        if c.landed_region.as_deref() != Some(c.expected_region.as_str()) {
            reasons.push(format!(
                "{} elected a server in {:?}, not {}",
                c.id, c.landed_region, c.expected_region
            ));
        }
    }
    Ok(Finished {
        clients,
        reasons,
        ..Finished::default()
    })
}
