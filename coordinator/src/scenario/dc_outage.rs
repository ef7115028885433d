//! `dc-outage`: a whole region goes away (its servers SIGKILLed by their
//! agents, or every link into it cut by the emulator), for a while; then it
//! comes back and the clients are watched going home. In a containerised
//! lab, `--fault engine` kills the region's server containers through the
//! Docker engine instead: a second fault source, independent of the agents
//! and of the back channel.

use super::lab::{outcomes, Lab};
use super::observe::Observer;
use super::Finished;
use geolb_proto::wan::LinkState;
use geolb_proto::{Request, StopArgs, StopMode, WireDuration};
use std::time::Duration;

/// How the region fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutageMode {
    /// The agents SIGKILL every server of the region.
    Kill,
    /// The emulator cuts every link into the region (only pings notice).
    Partition,
}

/// Who kills the servers in `kill` mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultSource {
    /// Their agents, told over the back channel.
    Agent,
    /// The Docker engine kills the whole container, agent included
    /// (`lab up --docker` only).
    Engine,
}

/// Flags of `scenario run dc-outage`.
#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct DcOutageArgs {
    /// The region that fails.
    #[arg(long)]
    pub region: String,
    /// How it fails.
    #[arg(long, value_enum, default_value = "kill")]
    pub mode: OutageMode,
    /// Who kills the servers in `kill` mode.
    #[arg(long, value_enum, default_value = "agent")]
    pub fault: FaultSource,
    /// How long it stays down.
    #[arg(long, default_value = "10s")]
    pub duration: WireDuration,
    /// Most a failover gap of an `rtt` client may last (default: kill
    /// 3 x RTT to the next region + 50 ms; partition 1 s).
    #[arg(long)]
    pub max_gap: Option<WireDuration>,
    /// Least share of the region's `rtt` clients that must land in the next region, %.
    #[arg(long, default_value_t = 99.0)]
    pub min_landed_pct: f64,
    /// How long the lab may take to heal and the clients to go home.
    #[arg(long, default_value = "60s")]
    pub settle_timeout: WireDuration,
}

/// Runs the scenario.
pub async fn run(lab: &Lab, args: &DcOutageArgs, obs: &Observer) -> anyhow::Result<Finished> {
    lab.check_region(&args.region)?;
    let region = args.region.as_str();
    let next = lab.next_region(region);
    let max_gap = args.max_gap.map(|d| d.0).unwrap_or(match args.mode {
        OutageMode::Kill => lab.state.config.rtt(region, &next) * 3 + Duration::from_millis(50),
        OutageMode::Partition => Duration::from_secs(1),
    });
    let servers = lab.servers_of(region);
    let engine = match (args.fault, args.mode, &lab.state.docker) {
        (FaultSource::Agent, _, _) => None,
        (FaultSource::Engine, OutageMode::Kill, Some(docker)) => Some(docker),
        (FaultSource::Engine, OutageMode::Partition, _) => {
            return Err(crate::UsageError(
                "--fault engine kills containers; it goes with --mode kill".into(),
            )
            .into())
        }
        (FaultSource::Engine, _, None) => {
            return Err(crate::UsageError(
                "--fault engine needs a lab in containers (`geolb lab up --docker`)".into(),
            )
            .into())
        }
    };
    let links = lab.topology.partition_links(region);
    lab.settled(obs, args.settle_timeout.0).await?;
    obs.mark_baseline();

    let fault_at = obs.elapsed_ms();
    match args.mode {
        OutageMode::Kill if engine.is_some() => {
            obs.note(
                "fault",
                format!("docker kill every server container of {region}"),
            );
            crate::lab::docker::kill(engine.expect("a containerised lab"), &servers).await?;
        }
        OutageMode::Kill => {
            obs.note("fault", format!("SIGKILL every server of {region}"));
            let kill = Request::Stop(StopArgs {
                mode: StopMode::Kill,
                grace: None,
            });
            lab.command(&servers, &kill, Duration::from_secs(10))
                .await?;
        }
        OutageMode::Partition => {
            obs.note("fault", format!("cut {} links into {region}", links.len()));
            let cut = geolb_proto::wan::LinkConfig::default().with_state(LinkState::Cut);
            lab.set_links(&links, cut).await?;
        }
    }
    tokio::time::sleep(args.duration.0).await;
    let landed = obs.clients();
    let restore_at = obs.elapsed_ms();
    match args.mode {
        OutageMode::Kill if engine.is_some() => {
            obs.note(
                "restore",
                format!("docker start every server container of {region}"),
            );
            crate::lab::docker::start(engine.expect("a containerised lab"), &servers).await?;
        }
        OutageMode::Kill => {
            obs.note("restore", format!("start every server of {region}"));
            lab.command(&servers, &Request::Start, Duration::from_secs(10))
                .await?;
        }
        OutageMode::Partition => {
            obs.note("restore", format!("heal the links into {region}"));
            lab.restore_links(&links).await?;
        }
    }
    lab.servers_ready(&servers, args.settle_timeout.0).await?;
    let home = lab.settled(obs, args.settle_timeout.0).await?;
    obs.note(
        "home",
        format!(
            "every rtt client back home {} ms after the restore",
            home.as_millis()
        ),
    );

    let clients = outcomes(&obs.clients(), &landed, (fault_at, restore_at), |v| {
        if v.latest.region == region {
            next.clone()
        } else {
            v.latest.region.clone()
        }
    });
    let mut reasons = Vec::new();
    let affected: Vec<_> = clients
        .iter()
        .filter(|c| c.strategy == "rtt" && c.region == region)
        .collect();
    for c in &affected {
        if let Some(gap) = c
            .gaps_ms
            .iter()
            .max()
            .filter(|g| **g as u128 > max_gap.as_millis())
        {
            reasons.push(format!(
                "{} was cut off {gap} ms (limit {} ms)",
                c.id,
                max_gap.as_millis()
            ));
        }
    }
    let landed_ok = affected
        .iter()
        .filter(|c| c.landed_region.as_deref() == Some(next.as_str()))
        .count();
    let pct = 100.0 * landed_ok as f64 / affected.len().max(1) as f64;
    if pct < args.min_landed_pct {
        reasons.push(format!(
            "{pct:.0}% of {region}'s rtt clients landed in {next} (want {}%)",
            args.min_landed_pct
        ));
    }
    Ok(Finished {
        clients,
        reasons,
        return_home_ms: Some(home.as_millis() as u64),
        ..Finished::default()
    })
}
