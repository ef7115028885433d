//! `rolling-upgrade`: every server drained (lame-duck), switched to another
//! nats-server version and gated on health (its agent acks only when
//! `/healthz` is 200 and routes and gateways are back), then the clients
//! settled, before the next step.

use super::fleet::Fleet;
use super::gates;
use super::observe::Observer;
use super::outcome::{home, outcomes};
use super::Finished;
use crate::report::ServerVersions;
use crate::UsageError;
use geolb_proto::{Request, UpgradeArgs, WireDuration};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Which servers go together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pattern {
    /// Step k upgrades the k-th server of every region at once.
    OnePerRegion,
    /// Every server of one region at once, region after region.
    RegionByRegion,
    /// One server at a time.
    OneAtATime,
}

/// Flags of `scenario run rolling-upgrade`.
#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct RollingUpgradeArgs {
    /// The nats-server version to go to (installed where every agent finds
    /// it: `make tools`, the image, or a binary path), or obj:NAME (`geolb binary put`).
    #[arg(long)]
    pub to: String,
    /// Which servers go together.
    #[arg(long, value_enum, default_value = "one-per-region")]
    pub strategy: Pattern,
    /// How long a drain may take before the server is shut down (clients
    /// that did not leave on the lame-duck notice are then disconnected).
    #[arg(long, default_value = "2s")]
    pub drain_grace: WireDuration,
    /// Most the whole upgrade may take.
    #[arg(long, default_value = "30s")]
    pub max_duration: WireDuration,
    /// Most an `rtt` client may be cut off.
    #[arg(long, default_value = "100ms")]
    pub max_gap: WireDuration,
    /// Most messages `rtt` clients may miss from `rtt` clients of their own region.
    #[arg(long, default_value_t = 0)]
    pub max_lost: u64,
    /// Most messages `rtt` clients may miss from `rtt` clients of other
    /// regions (through gateways); no limit unless given.
    #[arg(long)]
    pub max_lost_cross_region: Option<u64>,
    /// How long each step may take (upgrade and clients settled).
    #[arg(long, default_value = "60s")]
    pub step_timeout: WireDuration,
}

/// Runs the scenario.
pub async fn run(
    fleet: &Fleet,
    args: &RollingUpgradeArgs,
    obs: &Observer,
) -> anyhow::Result<Finished> {
    available(fleet, args).await?;
    let steps = steps(fleet, args.strategy);
    gates::clients_settled(fleet, obs, args.step_timeout.0).await?;
    let before = versions(fleet);
    obs.mark_baseline();

    let started_ms = obs.elapsed_ms();
    let started = Instant::now();
    let upgrade = Request::Upgrade(UpgradeArgs {
        to: args.to.clone(),
        drain: true,
        timeout: Some(args.step_timeout),
        grace: Some(args.drain_grace),
        check: false,
        prefetch: false,
    });
    let mut after = BTreeMap::new();
    for (n, step) in steps.iter().enumerate() {
        obs.note(
            "step",
            format!(
                "{}/{}: upgrade {} to {}",
                n + 1,
                steps.len(),
                step.join(", "),
                args.to
            ),
        );
        let replies = fleet
            .command(
                step,
                &upgrade,
                args.step_timeout.0 + Duration::from_secs(30),
            )
            .await?;
        for (id, reply) in replies {
            after.insert(id, reply.state.version);
        }
        let settled = gates::clients_settled(fleet, obs, args.step_timeout.0).await?;
        obs.note(
            "settled",
            format!("clients settled {} ms after the step", settled.as_millis()),
        );
    }
    let duration = started.elapsed();
    let now = obs.clients();
    let homes = gates::homes(&now, &fleet.regions().into_iter().collect());
    let window = (started_ms, obs.elapsed_ms());
    let clients = outcomes(&now, &now, window, &homes, |v| home(&homes, v));

    let mut reasons = Vec::new();
    if duration > args.max_duration.0 {
        reasons.push(format!(
            "the upgrade took {} ms (limit {} ms)",
            duration.as_millis(),
            args.max_duration.0.as_millis()
        ));
    }
    let rtt: Vec<_> = clients.iter().filter(|c| c.strategy == "rtt").collect();
    // Judged on traffic among rtt clients of a region: what stock clients
    // lose while cut off is theirs, and traffic across regions also depends
    // on gateways, whose peers reconnect about a second after a server
    // restarts (nats-server): both show in the summary.
    let lost: u64 = rtt
        .iter()
        .map(|c| c.lost_same_strategy - c.lost_same_strategy_cross_region)
        .sum();
    if lost > args.max_lost {
        reasons.push(format!(
            "rtt clients missed {lost} messages from rtt clients of their region (limit {})",
            args.max_lost
        ));
    }
    let across: u64 = rtt.iter().map(|c| c.lost_same_strategy_cross_region).sum();
    if across > 0 {
        obs.note(
            "gateway_loss",
            format!("rtt clients missed {across} messages from rtt clients in other regions while gateways reconnected"),
        );
    }
    if let Some(limit) = args.max_lost_cross_region.filter(|l| across > *l) {
        reasons.push(format!(
            "rtt clients missed {across} messages from other regions (limit {limit})"
        ));
    }
    for c in &rtt {
        if let Some(gap) = c
            .gaps_ms
            .iter()
            .max()
            .filter(|g| u128::from(**g) > args.max_gap.0.as_millis())
        {
            reasons.push(format!(
                "{} was cut off {gap} ms (limit {} ms)",
                c.id,
                args.max_gap.0.as_millis()
            ));
        }
    }
    let servers = fleet
        .servers()
        .into_iter()
        .map(|id| ServerVersions {
            version_before: before.get(&id).cloned().flatten(),
            version_after: after.get(&id).cloned().flatten(),
            id,
        })
        .collect::<Vec<_>>();
    // A binary path (or an object) names no version: its server says which.
    let plain_version = args.to.starts_with(|c: char| c.is_ascii_digit()) && !args.to.contains('/');
    for s in servers.iter().filter(|s| {
        s.version_after.is_none()
            || (plain_version && s.version_after.as_deref() != Some(args.to.as_str()))
    }) {
        reasons.push(format!(
            "{} runs {:?} after the upgrade",
            s.id, s.version_after
        ));
    }
    Ok(Finished {
        clients,
        reasons,
        servers: Some(servers),
        duration_ms: Some(duration.as_millis() as u64),
        ..Finished::default()
    })
}

/// Asks every server whether it has `--to` (`upgrade --check`); refuses
/// the run, naming those that lack it, before any server is touched.
async fn available(fleet: &Fleet, args: &RollingUpgradeArgs) -> anyhow::Result<()> {
    let check = Request::Upgrade(UpgradeArgs {
        to: args.to.clone(),
        drain: true,
        timeout: None,
        grace: None,
        check: true,
        prefetch: false,
    });
    let servers = fleet.servers();
    let results =
        crate::cmd::fan_out(&fleet.control, &servers, &check, Duration::from_secs(10)).await;
    let lacking: Vec<String> = results
        .into_iter()
        .filter_map(|(id, result)| match result {
            Ok(reply) if reply.ok => None,
            Ok(reply) => Some(format!(
                "{id} ({})",
                reply.error.map_or("refused".into(), |e| e.message)
            )),
            Err(e) => Some(format!("{id} ({e})")),
        })
        .collect();
    match lacking.is_empty() {
        true => Ok(()),
        false => Err(UsageError(format!(
            "nats-server {} is not available to every server, so no server was touched; lacking it: {}",
            args.to,
            lacking.join("; ")
        ))
        .into()),
    }
}

/// The groups of servers upgraded together, in order.
pub fn steps(fleet: &Fleet, pattern: Pattern) -> Vec<Vec<String>> {
    let regions = fleet.regions();
    let per_region = regions
        .iter()
        .map(|r| fleet.servers_of(r).len())
        .max()
        .unwrap_or(0);
    match pattern {
        Pattern::OnePerRegion => (0..per_region)
            .map(|i| {
                regions
                    .iter()
                    .filter_map(|r| fleet.servers_of(r).get(i).cloned())
                    .collect()
            })
            .collect(),
        Pattern::RegionByRegion => regions.iter().map(|r| fleet.servers_of(r)).collect(),
        Pattern::OneAtATime => fleet.servers().into_iter().map(|s| vec![s]).collect(),
    }
}

/// Every server's version, from its last heartbeat.
fn versions(fleet: &Fleet) -> BTreeMap<String, Option<String>> {
    fleet
        .servers()
        .into_iter()
        .map(|id| {
            let version = fleet
                .live
                .agent(&id)
                .and_then(|a| a.heartbeat.status.version);
            (id, version)
        })
        .collect()
}
