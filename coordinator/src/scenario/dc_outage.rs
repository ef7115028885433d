//! `dc-outage`: a whole region goes away for a while, then comes back and
//! the clients are watched going home. How it fails (`--mode`): its servers
//! SIGKILLed, every link into it cut (a partition: only pings notice), or
//! every link into it degraded (delay, jitter, loss). Who does it
//! (`--fault`): the agents over the back channel, the Docker engine (a lab
//! in containers: a second fault source, independent of the agents), or
//! Fly.io (the region's machines scaled to 0 through flyctl, and back).

use super::faults::Faults;
use super::fleet::Fleet;
use super::gates::{self, expected_after_loss};
use super::observe::Observer;
use super::outcome::outcomes;
use super::Finished;
use crate::UsageError;
use geolb_proto::wan::{LinkConfig, LinkState};
use geolb_proto::{StopMode, WireDuration};
use std::collections::BTreeMap;
use std::time::Duration;

/// How the region fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutageMode {
    /// Every server of the region is SIGKILLed (or its machine destroyed).
    Kill,
    /// Every link into the region is cut (only pings notice).
    Partition,
    /// Every link into the region gets `--delay`, `--jitter` and `--loss` added.
    Degrade,
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
    /// Fly.io destroys the region's machines (`fly scale count 0`), then
    /// creates as many again (`--app`).
    Fly,
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
    /// The Fly app of the region's servers (`--fault fly`).
    #[arg(long, env = "FLY_APP")]
    pub app: Option<String>,
    /// The flyctl program (`--fault fly`).
    #[arg(long, env = "GEOLB_FLYCTL", default_value = crate::fly::DEFAULT_FLYCTL)]
    pub flyctl: String,
    /// How long it stays down.
    #[arg(long, default_value = "10s")]
    pub duration: WireDuration,
    /// `degrade`: round-trip time added to every link into the region.
    #[arg(long, default_value = "200ms")]
    pub delay: WireDuration,
    /// `degrade`: jitter added.
    #[arg(long, default_value = "0ms")]
    pub jitter: WireDuration,
    /// `degrade`: share of chunks lost (each costs a retransmission timeout), %.
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Most a failover gap of an `rtt` client may last (default: kill
    /// 3 x its measured RTT to the next region + 50 ms; partition and degrade 1 s).
    #[arg(long)]
    pub max_gap: Option<WireDuration>,
    /// Least share of the region's `rtt` clients that must land where expected, %.
    #[arg(long, default_value_t = 99.0)]
    pub min_landed_pct: f64,
    /// How long the fleet may take to heal and the clients to go home.
    #[arg(long, default_value = "60s")]
    pub settle_timeout: WireDuration,
    /// Print what would be done, and do nothing.
    #[arg(long)]
    #[serde(skip)]
    pub dry_run: bool,
}

/// The fault's link behaviour in `degrade` mode, added to each link's own.
fn degradation(args: &DcOutageArgs) -> LinkConfig {
    LinkConfig::symmetric(args.delay.0)
        .with_jitter(args.jitter.0)
        .with_loss_pct(args.loss)
}

/// Checks the flags against the fleet before anything changes.
fn check(fleet: &Fleet, args: &DcOutageArgs) -> anyhow::Result<()> {
    fleet.check_region(&args.region)?;
    let usage = |m: &str| Err(UsageError(m.to_string()).into());
    match (args.mode, args.fault) {
        (OutageMode::Kill, _) | (_, FaultSource::Agent) => {}
        (_, FaultSource::Engine) => {
            return usage("--fault engine kills containers; it goes with --mode kill")
        }
        (_, FaultSource::Fly) => {
            return usage("--fault fly destroys machines; it goes with --mode kill")
        }
    }
    if args.fault == FaultSource::Engine && fleet.docker().is_none() {
        return usage("--fault engine needs a lab in containers (`geolb lab up --docker`)");
    }
    if args.fault == FaultSource::Fly {
        match &args.app {
            None => return usage("--fault fly needs --app APP (the Fly app of the servers)"),
            Some(app) => crate::fly::check_name("--app", app)?,
        }
        crate::fly::check_name("--region", &args.region)?;
    }
    if !(0.0..=100.0).contains(&args.loss) {
        return usage("--loss: give a percentage from 0 to 100");
    }
    if matches!(args.mode, OutageMode::Partition | OutageMode::Degrade) {
        let mode = format!("{:?}", args.mode).to_lowercase();
        fleet.require_links(&args.region, &mode)?;
    }
    Ok(())
}

/// What the run will do, step by step.
pub fn plan(fleet: &Fleet, args: &DcOutageArgs) -> anyhow::Result<Vec<String>> {
    check(fleet, args)?;
    let region = &args.region;
    let servers = fleet.servers_of(region);
    let links = fleet.region_links(region).len();
    let (fault, restore) = match (args.mode, args.fault) {
        (OutageMode::Kill, FaultSource::Agent) => (
            format!("SIGKILL {} through their agents", servers.join(", ")),
            format!("start {}", servers.join(", ")),
        ),
        (OutageMode::Kill, FaultSource::Engine) => (
            format!("docker kill the containers {}", servers.join(", ")),
            format!("docker start {}", servers.join(", ")),
        ),
        (OutageMode::Kill, FaultSource::Fly) => {
            let app = args.app.as_deref().unwrap_or_default();
            let line =
                |n| crate::fly::shell_line(&crate::fly::scale_count(&args.flyctl, app, region, n));
            (line(0), line(servers.len() as u32))
        }
        (OutageMode::Partition, _) => (
            format!("cut {links} links into and out of {region}"),
            format!("give the {links} links their behaviour back"),
        ),
        (OutageMode::Degrade, _) => (
            format!(
                "add {:?} round trip, {:?} jitter and {}% loss to {links} links of {region}",
                args.delay.0, args.jitter.0, args.loss
            ),
            format!("give the {links} links their behaviour back"),
        ),
    };
    Ok(vec![
        "wait until every client is settled".into(),
        fault,
        format!("hold {:?}", args.duration.0),
        restore,
        format!(
            "wait until {region} has {} servers healthy with routes and gateways",
            servers.len()
        ),
        "wait until every client is back home".into(),
    ])
}

/// Runs the scenario.
pub async fn run(
    fleet: &Fleet,
    args: &DcOutageArgs,
    obs: &Observer,
    faults: &Faults,
) -> anyhow::Result<Finished> {
    check(fleet, args)?;
    let region = args.region.as_str();
    let servers = fleet.servers_of(region);
    let timeout = args.settle_timeout.0;
    gates::routing_settled(fleet, timeout).await?;
    gates::clients_settled(fleet, obs, timeout).await?;
    obs.mark_baseline();
    let regions = fleet.regions().into_iter().collect();
    let homes = gates::homes(&obs.clients(), &regions);
    let expected = match args.mode {
        OutageMode::Degrade => BTreeMap::new(),
        _ => expected_after_loss(&obs.clients(), region, &regions),
    };

    let fault_at = obs.elapsed_ms();
    let fault_epoch_ms = geolb_proto::now_ms();
    let fault = match (args.mode, args.fault) {
        (OutageMode::Kill, FaultSource::Engine) => {
            obs.note(
                "fault",
                format!("docker kill every server container of {region}"),
            );
            fleet.expect_gone(&servers);
            faults.engine_kill(fleet, &servers).await?
        }
        (OutageMode::Kill, FaultSource::Fly) => {
            let app = args.app.as_deref().unwrap_or_default();
            obs.note(
                "fault",
                format!("fly scale count 0 --region {region} --app {app}"),
            );
            fleet.expect_gone(&servers);
            faults.fly_down(&args.flyctl, app, region, servers.len() as u32)?
        }
        (OutageMode::Kill, FaultSource::Agent) => {
            obs.note("fault", format!("SIGKILL every server of {region}"));
            faults.stop_servers(fleet, &servers, StopMode::Kill).await?
        }
        (OutageMode::Partition, _) => {
            let links = fleet.region_links(region);
            obs.note(
                "fault",
                format!("cut {} links into and out of {region}", links.len()),
            );
            faults
                .change_links(fleet, &links, |c| c.with_state(LinkState::Cut))
                .await?
        }
        (OutageMode::Degrade, _) => {
            let links = fleet.region_links(region);
            let extra = degradation(args);
            obs.note(
                "fault",
                format!("degrade {} links of {region}: {extra:?}", links.len()),
            );
            faults
                .change_links(fleet, &links, |c| c.degraded_by(&extra))
                .await?
        }
    };
    gates::hold(fleet, args.duration.0).await?;
    let landed = obs.clients();
    obs.note("restore", format!("bring {region} back"));
    faults.undo(fleet, fault).await?;
    gates::region_ready(fleet, region, servers.len(), timeout).await?;
    let home = gates::clients_settled(fleet, obs, timeout).await?;
    obs.note(
        "home",
        format!(
            "every rtt client back home {} ms after the restore",
            home.as_millis()
        ),
    );
    // The next run starts from the routing it would find in production.
    gates::routing_settled(fleet, timeout).await?;
    obs.note(
        "routing",
        "the GeoDNS and the anycast router are back to normal",
    );

    // Degraded, a client should be where its own probes said was nearest.
    let expected = match args.mode {
        OutageMode::Degrade => {
            let geo = crate::geography::Geography::measure(landed.values().map(|v| &v.latest));
            landed
                .iter()
                .filter_map(|(id, v)| {
                    let near = crate::geography::nearest(&v.latest, |r| regions.contains(r), &geo)?;
                    Some((id.clone(), near))
                })
                .collect()
        }
        _ => expected,
    };
    // Recoveries may end after the restore (a stale DNS answer outlasts a
    // short outage): every move from the fault to the end counts.
    let views = obs.clients();
    let mut clients = outcomes(&views, &landed, (fault_at, obs.elapsed_ms()), &homes, |v| {
        expected
            .get(&v.latest.client)
            .map_or_else(|| v.latest.region.clone(), |(r, _)| r.clone())
    });
    let events = obs.routing();
    super::routing::per_client(
        &events,
        fault_epoch_ms,
        region,
        &servers,
        &views,
        &mut clients,
    );
    let routing = super::routing::figures(&events, fault_epoch_ms, region, &servers);
    let mut reasons = Vec::new();
    let affected: Vec<_> = clients
        .iter()
        .filter(|c| c.strategy == "rtt" && homes.get(&c.id).map(String::as_str) == Some(region))
        .collect();
    for c in &affected {
        let limit = match (args.max_gap, args.mode) {
            (Some(d), _) => d.0,
            (None, OutageMode::Kill) => {
                let rtt_ms = expected.get(&c.id).map_or(0.0, |(_, rtt)| *rtt);
                Duration::from_secs_f64(rtt_ms * 3.0 / 1000.0) + Duration::from_millis(50)
            }
            (None, _) => Duration::from_secs(1),
        };
        if let Some(gap) = c
            .gaps_ms
            .iter()
            .max()
            .filter(|g| u128::from(**g) > limit.as_millis())
        {
            reasons.push(format!(
                "{} was cut off {gap} ms (limit {} ms)",
                c.id,
                limit.as_millis()
            ));
        }
    }
    let landed_ok = affected
        .iter()
        .filter(|c| c.landed_region.as_deref() == Some(c.expected_region.as_str()))
        .count();
    let pct = 100.0 * landed_ok as f64 / affected.len().max(1) as f64;
    if pct < args.min_landed_pct {
        reasons.push(format!(
            "{pct:.0}% of {region}'s rtt clients landed where their own probes said was nearest (want {}%)",
            args.min_landed_pct
        ));
    }
    Ok(Finished {
        clients,
        reasons,
        return_home_ms: Some(home.as_millis() as u64),
        routing,
        ..Finished::default()
    })
}
