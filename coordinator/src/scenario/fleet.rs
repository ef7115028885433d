//! The fleet a scenario runs on, seen only through the control plane: the
//! live agents (from heartbeats), each server's health (from the metrics
//! its agent ships), each client's view (from its reports), and the link
//! controls registered there. The lab is one source of such a fleet
//! (`geolb scenario run` without `--control`), which adds its Docker engine
//! for `--fault engine`; any other control plane is another
//! (`geolb --control URL scenario run ...`).

use crate::control::Control;
use crate::links::{self, LinkControl};
use crate::live::{AgentView, ClientEntry, LiveFleet};
use crate::report::FleetSummary;
use crate::UsageError;
use geolb_proto::Role;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a client may go without reporting before it counts as gone.
pub const CLIENT_FRESH: Duration = Duration::from_secs(4);
/// How long opening a fleet waits for its clients to report.
const CLIENT_WARMUP: Duration = Duration::from_millis(1500);
/// Longest wait for clients at open.
const CLIENT_WARMUP_MAX: Duration = Duration::from_secs(6);

/// Where the fleet came from.
pub enum Source {
    /// The local lab in this directory.
    Lab(Box<crate::lab::state::LabState>),
    /// Whatever the control plane at this URL (secrets removed) sees.
    Control(String),
}

/// A fleet, opened for one scenario run.
pub struct Fleet {
    /// The control plane.
    pub control: Control,
    /// The fleet, followed live.
    pub live: LiveFleet,
    /// Every link control registered when the run began.
    pub links: Vec<LinkControl>,
    /// Where it came from.
    pub source: Source,
    /// Whether the control plane has JetStream (report history).
    pub jetstream: bool,
    /// The routing components registered (GeoDNS, anycast router), by id.
    pub routing: Vec<(geolb_proto::routing::Component, String)>,
    servers: Vec<AgentView>,
    clients: BTreeMap<String, ClientEntry>,
    /// Agents live at the start that must stay live (minus those a fault takes away).
    watched: Mutex<BTreeSet<String>>,
}

impl Fleet {
    /// Opens what `control` sees; fails when it sees no agents.
    pub async fn open(control: Control, source: Source) -> anyhow::Result<Fleet> {
        let ensured = crate::fleet::ensure_heartbeat_stream(&control).await?;
        let jetstream = !matches!(ensured, crate::fleet::Ensured::Unavailable);
        if matches!(ensured, crate::fleet::Ensured::Created(_)) {
            // Created just now, it holds only the last moment's heartbeats:
            // a listing then would miss agents (a fleet started by hand had
            // one region's servers listed, not the other's).
            tokio::time::sleep(crate::fleet::LISTEN_WINDOW).await;
        }
        let live = LiveFleet::start(&control).await?;
        if live.live(Role::Server).is_empty() {
            // Nothing primed the listing of servers (no JetStream, or its
            // listing did not answer in time on a loaded machine): listen
            // one window before concluding there are none.
            tokio::time::sleep(crate::fleet::LISTEN_WINDOW).await;
        }
        let servers = live.live(Role::Server);
        if servers.is_empty() {
            let others = live.live(Role::Client).len();
            anyhow::bail!(
                "no live server agents on the control plane {} ({others} client agents): a scenario needs \
                 servers under `geolb-agent run --control {}` (or `geolb lab up`); `geolb fleet ls` shows what is there",
                control.url(),
                control.url()
            );
        }
        let clients = warm_up(&live).await;
        let links = links::discover(&control).await?;
        let mut routing = Vec::new();
        for (component, service, prefix) in [
            (
                geolb_proto::routing::Component::Dns,
                geolb_proto::routing::dns::SERVICE_NAME,
                "geolb.dns",
            ),
            (
                geolb_proto::routing::Component::Anycast,
                geolb_proto::routing::anycast::SERVICE_NAME,
                "geolb.anycast",
            ),
        ] {
            for id in links::instances(&control, service, prefix).await? {
                routing.push((component, id));
            }
        }
        let watched = servers
            .iter()
            .chain(live.live(Role::Client).iter())
            .map(|a| a.id().to_string())
            .collect();
        Ok(Fleet {
            control,
            live,
            links,
            source,
            jetstream,
            routing,
            servers,
            clients,
            watched: Mutex::new(watched),
        })
    }

    /// Agents a fault takes away on purpose (a machine destroyed, a
    /// container killed): their silence does not fail the run.
    pub fn expect_gone(&self, ids: &[String]) {
        let mut watched = self.watched.lock().unwrap_or_else(|p| p.into_inner());
        for id in ids {
            watched.remove(id);
        }
    }

    /// Fails when an agent that was live at the start has gone stale.
    pub fn check_alive(&self) -> anyhow::Result<()> {
        let watched = self
            .watched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let agents = self.live.agents();
        let stale: Vec<String> = watched
            .iter()
            .filter_map(|id| {
                let agent = agents.get(id)?;
                (agent.liveness() != crate::liveness::Liveness::Live).then(|| {
                    format!(
                        "{id} (last heartbeat {} ago)",
                        crate::liveness::format_age(agent.age_ms())
                    )
                })
            })
            .collect();
        match stale.is_empty() {
            true => Ok(()),
            false => anyhow::bail!(
                "agents went stale during the run: {}; check their hosts and their link to the control plane",
                stale.join(", ")
            ),
        }
    }

    /// Sends `request` to every agent in `ids` at once; their replies, or
    /// an error naming each failure.
    pub async fn command(
        &self,
        ids: &[String],
        request: &geolb_proto::Request,
        timeout: Duration,
    ) -> anyhow::Result<Vec<(String, geolb_proto::Reply)>> {
        let results = crate::cmd::fan_out(&self.control, ids, request, timeout).await;
        let mut replies = Vec::new();
        let mut failures = Vec::new();
        for (id, result) in results {
            match result {
                Ok(reply) if reply.ok => replies.push((id, reply)),
                Ok(reply) => failures.push(format!(
                    "{id}: {}",
                    reply.error.map_or("refused".into(), |e| e.to_string())
                )),
                Err(e) => failures.push(format!("{id}: {e}")),
            }
        }
        match failures.is_empty() {
            true => Ok(replies),
            false => anyhow::bail!("{} failed: {}", request.verb(), failures.join("; ")),
        }
    }

    /// The regions with servers, in the fleet's order.
    pub fn regions(&self) -> Vec<String> {
        let mut regions: Vec<String> = Vec::new();
        for s in &self.servers {
            if !regions.iter().any(|r| r == s.region()) {
                regions.push(s.region().to_string());
            }
        }
        regions
    }

    /// Checks that `region` has servers in the fleet; the error lists those that do.
    pub fn check_region(&self, region: &str) -> anyhow::Result<()> {
        let regions = self.regions();
        let whose = match self.source {
            Source::Lab(_) => "is not in the lab",
            Source::Control(_) => "has no servers in the fleet",
        };
        match regions.iter().any(|r| r == region) {
            true => Ok(()),
            false => Err(UsageError(format!(
                "region {region:?} {whose}; its regions are {}",
                regions.join(", ")
            ))
            .into()),
        }
    }

    /// The server agents of `region` when the run began, in natural order.
    pub fn servers_of(&self, region: &str) -> Vec<String> {
        self.servers
            .iter()
            .filter(|s| s.region() == region)
            .map(|s| s.id().to_string())
            .collect()
    }

    /// Every server agent when the run began.
    pub fn servers(&self) -> Vec<String> {
        self.servers.iter().map(|s| s.id().to_string()).collect()
    }

    /// The clients reporting when the run began, by id.
    pub fn clients(&self) -> &BTreeMap<String, ClientEntry> {
        &self.clients
    }

    /// Route peers a server of `region` must have to count as joined.
    pub fn want_routes(&self, region: &str) -> u32 {
        self.servers_of(region).len().saturating_sub(1) as u32
    }

    /// Outbound gateways a server must have to count as joined.
    pub fn want_gateways(&self) -> usize {
        self.regions().len().saturating_sub(1)
    }

    /// The links whose cutting cuts `region` off: every path into it, and its gateways out.
    pub fn region_links(&self, region: &str) -> Vec<LinkControl> {
        self.links
            .iter()
            .filter(|l| {
                l.link
                    .path
                    .as_ref()
                    .is_some_and(|p| p.into_or_out_of(region))
            })
            .cloned()
            .collect()
    }

    /// The links into `region`, or a usage error saying how to provide some.
    pub fn require_links(&self, region: &str, mode: &str) -> anyhow::Result<Vec<LinkControl>> {
        let links = self.region_links(region);
        if links.is_empty() {
            return Err(UsageError(format!(
                "--mode {mode} needs link control into {region}, and none is registered on the control plane: \
                 run its servers' agents with `--front client=LISTEN->TARGET --front gateway=LISTEN->TARGET`, \
                 or a WAN emulator (`geolb-agent wan --control ...`) whose links name {region} in their `path`"
            ))
            .into());
        }
        Ok(links)
    }

    /// The lab's Docker engine state, for a lab in containers.
    pub fn docker(&self) -> Option<&crate::lab::docker::DockerLab> {
        match &self.source {
            Source::Lab(state) => state.backend.docker(),
            Source::Control(_) => None,
        }
    }

    /// What the report says about this fleet.
    pub fn summary(&self) -> FleetSummary {
        let (source, control) = match &self.source {
            Source::Lab(state) => ("lab", state.control_url.clone()),
            Source::Control(url) => ("control", url.clone()),
        };
        FleetSummary {
            source: source.into(),
            control,
            regions: self.regions(),
            servers: self.servers.len() as u32,
            clients: self.clients.len() as u32,
            links: self.links.len() as u32,
            history: self.jetstream,
        }
    }

    /// The clients reporting now (heard from within [`CLIENT_FRESH`]).
    pub fn fresh_clients(&self) -> BTreeMap<String, ClientEntry> {
        let mut clients = self.live.clients();
        clients.retain(|_, c| c.received.elapsed() < CLIENT_FRESH);
        clients
    }

    /// The regions that have live servers now.
    pub fn live_regions(&self) -> BTreeSet<String> {
        self.live.server_regions()
    }
}

/// Waits until no new client has appeared for a while; the clients known then.
async fn warm_up(live: &LiveFleet) -> BTreeMap<String, ClientEntry> {
    let began = Instant::now();
    let mut last_count = usize::MAX;
    let mut quiet_since = Instant::now();
    loop {
        let mut clients = live.clients();
        clients.retain(|_, c| c.received.elapsed() < CLIENT_FRESH);
        if clients.len() != last_count {
            last_count = clients.len();
            quiet_since = Instant::now();
        }
        if quiet_since.elapsed() >= CLIENT_WARMUP || began.elapsed() >= CLIENT_WARMUP_MAX {
            return clients;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
