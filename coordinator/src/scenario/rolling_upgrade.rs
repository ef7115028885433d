//! `rolling-upgrade`: every server drained (lame-duck), switched to another
//! nats-server version and gated on health (its agent acks only when
//! `/healthz` is 200 and routes and gateways are back), then the clients
//! settled, before the next step.

use super::lab::{outcomes, Lab};
use super::observe::Observer;
use super::Finished;
use crate::fleet;
use crate::report::ServerVersions;
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
    /// The nats-server version to go to (installed by `make tools`).
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
pub async fn run(lab: &Lab, args: &RollingUpgradeArgs, obs: &Observer) -> anyhow::Result<Finished> {
    if !lab.state.has_version(&args.to) {
        let fix = match lab.state.docker {
            Some(_) => "rebuild the images with it (`make images NATS_VERSIONS=...`)",
            None => "run `make tools`",
        };
        return Err(crate::UsageError(format!(
            "nats-server {} is not installed in {}; {fix} or pick an installed version",
            args.to,
            lab.state.servers_dir.display()
        ))
        .into());
    }
    let steps = steps(lab, args.strategy);
    lab.settled(obs, args.step_timeout.0).await?;
    let before = versions(lab).await?;
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
        lab.command(
            step,
            &upgrade,
            args.step_timeout.0 + Duration::from_secs(30),
        )
        .await?;
        let settled = lab.settled(obs, args.step_timeout.0).await?;
        obs.note(
            "settled",
            format!("clients settled {} ms after the step", settled.as_millis()),
        );
    }
    let duration = started.elapsed();
    // Heartbeats carry the version once a second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = versions(lab).await?;
    let clients = outcomes(
        &obs.clients(),
        &obs.clients(),
        (started_ms, obs.elapsed_ms()),
        |v| v.latest.region.clone(),
    );

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
    let servers = lab
        .topology
        .servers
        .iter()
        .map(|s| ServerVersions {
            id: s.id.clone(),
            version_before: before.get(&s.id).cloned(),
            version_after: after.get(&s.id).cloned(),
        })
        .collect::<Vec<_>>();
    for s in servers
        .iter()
        .filter(|s| s.version_after.as_deref() != Some(args.to.as_str()))
    {
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

/// The groups of servers upgraded together, in order.
pub fn steps(lab: &Lab, pattern: Pattern) -> Vec<Vec<String>> {
    let regions = &lab.state.config.regions;
    let per_region = lab.state.config.servers_per_region as usize;
    match pattern {
        Pattern::OnePerRegion => (0..per_region)
            .map(|i| {
                regions
                    .iter()
                    .map(|r| lab.servers_of(r)[i].clone())
                    .collect()
            })
            .collect(),
        Pattern::RegionByRegion => regions.iter().map(|r| lab.servers_of(r)).collect(),
        Pattern::OneAtATime => lab
            .topology
            .servers
            .iter()
            .map(|s| vec![s.id.clone()])
            .collect(),
    }
}

/// Every server's version, from its last heartbeat.
async fn versions(lab: &Lab) -> anyhow::Result<BTreeMap<String, String>> {
    let fleet = fleet::list(&lab.control).await?;
    Ok(fleet
        .into_iter()
        .filter_map(|e| e.version.map(|v| (e.id, v)))
        .collect())
}
