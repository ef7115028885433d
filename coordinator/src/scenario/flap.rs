//! `flap`: a partial outage that comes and goes. Servers of a region go
//! down and up (their agents stop, kill or pause them), or the region's
//! links are cut and healed; clients must not thrash.

use super::faults::Faults;
use super::fleet::Fleet;
use super::gates;
use super::observe::Observer;
use super::outcome::{home, outcomes};
use super::Finished;
use geolb_proto::wan::LinkState;
use geolb_proto::{FlapArgs as AgentFlap, FlapMode, WireDuration};

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
    /// The region's links are cut, healed on up (needs link control).
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
pub async fn run(
    fleet: &Fleet,
    args: &FlapArgs,
    obs: &Observer,
    faults: &Faults,
) -> anyhow::Result<Finished> {
    fleet.check_region(&args.region)?;
    if args.cycles == 0 || args.cycles > 1000 {
        return Err(crate::UsageError("--cycles: use 1 to 1000".into()).into());
    }
    if args.mode == FlapHow::Partition {
        fleet.require_links(&args.region, "partition")?;
    }
    let all = fleet.servers_of(&args.region);
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
    gates::routing_settled(fleet, args.settle_timeout.0).await?;
    gates::clients_settled(fleet, obs, args.settle_timeout.0).await?;
    obs.mark_baseline();
    let began = obs.elapsed_ms();
    let (down, up) = (args.down.0, args.up.0);
    match args.mode {
        FlapHow::Partition => partition(fleet, args, obs, faults).await?,
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
            let flap = AgentFlap {
                down: Some(args.down),
                up: Some(args.up),
                cycles: Some(args.cycles),
                mode,
                cancel: false,
            };
            let fault = faults.flap(fleet, &servers, flap).await?;
            gates::hold(fleet, (down + up) * args.cycles).await?;
            // Over by now: nothing to cancel, unless the run fails before this.
            faults.forget(fault);
        }
    }
    obs.note("restore", "the flap is over");
    gates::servers_ready(fleet, &all, args.settle_timeout.0).await?;
    gates::clients_settled(fleet, obs, args.settle_timeout.0).await?;
    let ended = obs.elapsed_ms();
    let now = obs.clients();
    let homes = gates::homes(&now, &fleet.regions().into_iter().collect());
    let clients = outcomes(&now, &now, (began, ended), &homes, |v| home(&homes, v));
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

async fn partition(
    fleet: &Fleet,
    args: &FlapArgs,
    obs: &Observer,
    faults: &Faults,
) -> anyhow::Result<()> {
    let links = fleet.region_links(&args.region);
    for cycle in 1..=args.cycles {
        obs.note(
            "fault",
            format!(
                "cycle {cycle}: cut {} links into {}",
                links.len(),
                args.region
            ),
        );
        let cut = faults
            .change_links(fleet, &links, |c| c.with_state(LinkState::Cut))
            .await?;
        gates::hold(fleet, args.down.0).await?;
        obs.note(
            "restore",
            format!("cycle {cycle}: heal the links into {}", args.region),
        );
        faults.undo(fleet, cut).await?;
        gates::hold(fleet, args.up.0).await?;
    }
    Ok(())
}
