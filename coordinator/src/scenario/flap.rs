//! `flap`: a partial outage that comes and goes. Servers of a region go
//! down and up (their agents stop, kill or pause them), or the region's
//! links are cut and healed; clients must not thrash.

use super::lab::{outcomes, Lab};
use super::observe::Observer;
use super::Finished;
use geolb_proto::wan::{LinkConfig, LinkState};
use geolb_proto::{FlapArgs as AgentFlap, FlapMode, Request, WireDuration};
use std::time::Duration;

/// How the servers go down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlapHow {
    /// SIGTERM, started again on up.
    Stop,
    /// SIGKILL, started again on up.
    Kill,
    /// SIGSTOP, SIGCONT on up (TCP stays open, nothing answers).
    Pause,
    /// The region's links are cut, healed on up.
    Partition,
}

/// Flags of `scenario run flap`.
#[derive(Debug, Clone, clap::Args, serde::Serialize)]
pub struct FlapArgs {
    /// The region that flaps.
    #[arg(long)]
    pub region: String,
    /// How many of its servers (a number or `all`; partition takes the whole region).
    #[arg(long, default_value = "1")]
    pub servers: String,
    /// Each down phase.
    #[arg(long, default_value = "2s")]
    pub down: WireDuration,
    /// Each up phase.
    #[arg(long, default_value = "2s")]
    pub up: WireDuration,
    /// Down/up cycles.
    #[arg(long, default_value_t = 3)]
    pub cycles: u32,
    /// How they go down.
    #[arg(long, value_enum, default_value = "stop")]
    pub mode: FlapHow,
    /// Most server switches per `rtt` client per cycle (more is thrash).
    #[arg(long, default_value_t = 1.0)]
    pub max_switches_per_cycle: f64,
    /// How long the lab may take to settle afterwards.
    #[arg(long, default_value = "60s")]
    pub settle_timeout: WireDuration,
}

/// Runs the scenario.
pub async fn run(lab: &Lab, args: &FlapArgs, obs: &Observer) -> anyhow::Result<Finished> {
    lab.check_region(&args.region)?;
    if args.cycles == 0 || args.cycles > 1000 {
        return Err(crate::UsageError("--cycles: use 1 to 1000".into()).into());
    }
    let all = lab.servers_of(&args.region);
    let servers: Vec<String> = match args.servers.as_str() {
        "all" => all.clone(),
        n => {
            let n: usize = n
                .parse()
                .map_err(|_| crate::UsageError(format!("--servers {n:?}: give a number or all")))?;
            if n == 0 || n > all.len() {
                return Err(crate::UsageError(format!(
                    "--servers {n}: {} has 1 to {} servers",
                    args.region,
                    all.len()
                ))
                .into());
            }
            all[..n].to_vec()
        }
    };
    lab.settled(obs, args.settle_timeout.0).await?;
    obs.mark_baseline();
    let began = obs.elapsed_ms();
    let (down, up) = (args.down.0, args.up.0);
    match args.mode {
        FlapHow::Partition => partition(lab, args, obs).await?,
        how => {
            let mode = match how {
                FlapHow::Stop => FlapMode::Stop,
                FlapHow::Kill => FlapMode::Kill,
                _ => FlapMode::Pause,
            };
            obs.note(
                "fault",
                format!(
                    "flap {} ({how:?}) {} x {down:?} down / {up:?} up",
                    servers.join(", "),
                    args.cycles
                ),
            );
            let flap = Request::Flap(AgentFlap {
                down: Some(args.down),
                up: Some(args.up),
                cycles: Some(args.cycles),
                mode,
                cancel: false,
            });
            lab.command(&servers, &flap, Duration::from_secs(10))
                .await?;
            tokio::time::sleep((down + up) * args.cycles).await;
        }
    }
    obs.note("restore", "the flap is over");
    lab.servers_ready(&all, args.settle_timeout.0).await?;
    lab.settled(obs, args.settle_timeout.0).await?;
    let ended = obs.elapsed_ms();
    let now = obs.clients();
    let clients = outcomes(&now, &now, (began, ended), |v| v.latest.region.clone());
    let mut reasons = Vec::new();
    let limit = args.max_switches_per_cycle * f64::from(args.cycles);
    for c in clients.iter().filter(|c| c.strategy == "rtt") {
        if f64::from(c.switches) > limit {
            reasons.push(format!(
                "{} switched {} times in {} cycles (limit {limit})",
                c.id, c.switches, args.cycles
            ));
        }
    }
    Ok(Finished {
        clients,
        reasons,
        ..Finished::default()
    })
}

async fn partition(lab: &Lab, args: &FlapArgs, obs: &Observer) -> anyhow::Result<()> {
    let links = lab.topology.partition_links(&args.region);
    let cut = LinkConfig::default().with_state(LinkState::Cut);
    for cycle in 1..=args.cycles {
        obs.note(
            "fault",
            format!(
                "cycle {cycle}: cut {} links into {}",
                links.len(),
                args.region
            ),
        );
        lab.set_links(&links, cut).await?;
        tokio::time::sleep(args.down.0).await;
        obs.note(
            "restore",
            format!("cycle {cycle}: heal the links into {}", args.region),
        );
        lab.restore_links(&links).await?;
        tokio::time::sleep(args.up.0).await;
    }
    Ok(())
}
