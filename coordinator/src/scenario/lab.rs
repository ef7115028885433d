//! What every scenario drives the lab with, only through the back channel:
//! commands to agents, `set` to the WAN emulator, and gates read from
//! metrics and client reports.

use super::observe::{ClientView, Observer};
use crate::cmd::fan_out;
use crate::control::Control;
use crate::lab::ready;
use crate::lab::state::LabState;
use crate::lab::topology::Topology;
use crate::report::ClientOutcome;
use geolb_proto::client::MoveReason;
use geolb_proto::wan::LinkConfig;
use geolb_proto::Request;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// A running lab, as scenarios see it.
pub struct Lab {
    /// Its state file.
    pub state: LabState,
    /// Its plan.
    pub topology: Topology,
    /// The control plane.
    pub control: Control,
}

impl Lab {
    /// Opens the lab in `dir`, or says there is none.
    pub async fn open(dir: &Path) -> anyhow::Result<Lab> {
        let state = LabState::load(dir)?.ok_or_else(|| crate::lab::cli::no_lab(dir))?;
        let running = state.running().await?;
        if !state.ready || running < state.started() {
            anyhow::bail!(
                "the lab in {} is not whole ({running} of {} processes alive); `geolb lab down` then `geolb lab up`",
                dir.display(),
                state.started()
            );
        }
        let topology = Topology::plan_for(&state.config, state.placement());
        let control = crate::lab::up::connect(&state).await?;
        Ok(Lab {
            state,
            topology,
            control,
        })
    }

    /// Checks that `region` is one of the lab's.
    pub fn check_region(&self, region: &str) -> anyhow::Result<()> {
        if self.state.config.regions.iter().any(|r| r == region) {
            Ok(())
        } else {
            Err(crate::UsageError(format!(
                "region {region:?} is not in the lab; its regions are {:?}",
                self.state.config.regions
            ))
            .into())
        }
    }

    /// The other region nearest to `region`.
    pub fn next_region(&self, region: &str) -> String {
        let config = &self.state.config;
        config
            .regions
            .iter()
            .filter(|r| *r != region)
            .min_by_key(|r| config.rtt(region, r))
            .cloned()
            .unwrap_or_else(|| region.to_string())
    }

    /// The server agents of `region`.
    pub fn servers_of(&self, region: &str) -> Vec<String> {
        self.topology
            .servers
            .iter()
            .filter(|s| s.region == region)
            .map(|s| s.id.clone())
            .collect()
    }

    /// Sends `request` to every agent in `ids`; an error names each failure.
    pub async fn command(
        &self,
        ids: &[String],
        request: &Request,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let results = fan_out(&self.control, ids, request, timeout).await;
        let failures: Vec<String> = results
            .into_iter()
            .filter_map(|(id, result)| match result {
                Ok(reply) if reply.ok => None,
                Ok(reply) => Some(format!(
                    "{id}: {}",
                    reply.error.map_or("refused".into(), |e| e.to_string())
                )),
                Err(e) => Some(format!("{id}: {e}")),
            })
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("{} failed: {}", request.verb(), failures.join("; "))
        }
    }

    /// Gives every link in `links` the behaviour `config`.
    pub async fn set_links(&self, links: &[String], config: LinkConfig) -> anyhow::Result<()> {
        let args = serde_json::json!({ "links": links, "config": config });
        ready::wan_request(&self.control, "set", args)
            .await
            .map(|_| ())
    }

    /// Gives every link in `links` its configured behaviour back.
    pub async fn restore_links(&self, links: &[String]) -> anyhow::Result<()> {
        let mut by_config: BTreeMap<String, (LinkConfig, Vec<String>)> = BTreeMap::new();
        for link in self
            .topology
            .links
            .iter()
            .filter(|l| links.contains(&l.name))
        {
            let key = serde_json::to_string(&link.config)?;
            by_config
                .entry(key)
                .or_insert((link.config, Vec::new()))
                .1
                .push(link.name.clone());
        }
        for (config, names) in by_config.into_values() {
            self.set_links(&names, config).await?;
        }
        Ok(())
    }

    /// Waits until the servers in `ids` are healthy with routes and gateways.
    pub async fn servers_ready(&self, ids: &[String], timeout: Duration) -> anyhow::Result<()> {
        ready::servers(&self.control, &self.state.config, ids, timeout).await
    }

    /// Waits until every client reports a server and every `rtt` client is
    /// in its own region; returns how long it took.
    pub async fn settled(
        &self,
        observer: &Observer,
        timeout: Duration,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let expected = self
            .topology
            .clients
            .iter()
            .map(|g| g.replicas as usize)
            .sum::<usize>();
        loop {
            let clients = observer.clients();
            let unsettled: Vec<String> = clients
                .iter()
                .filter(|(_, v)| !settled(v))
                .map(|(id, v)| format!("{id} on {}", v.region_now().unwrap_or("nothing")))
                .collect();
            if clients.len() >= expected && unsettled.is_empty() {
                return Ok(started.elapsed());
            }
            if started.elapsed() >= timeout {
                anyhow::bail!(
                    "clients did not settle in {timeout:?}: {} of {expected} report; unsettled: {}",
                    clients.len(),
                    unsettled.join(", ")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Whether a client is connected and, for `rtt`, in its own region.
pub fn settled(view: &ClientView) -> bool {
    match view.region_now() {
        None => false,
        Some(region) => view.latest.strategy != "rtt" || region == view.latest.region,
    }
}

/// The outcome of every client: gaps of its moves in `window` (ms since
/// the observer started), where it was at `landed` (a snapshot), what it
/// should have been, and its counters since the baseline.
pub fn outcomes(
    clients: &BTreeMap<String, ClientView>,
    landed: &BTreeMap<String, ClientView>,
    window: (u64, u64),
    expected: impl Fn(&ClientView) -> String,
) -> Vec<ClientOutcome> {
    clients
        .iter()
        .map(|(id, view)| {
            let moves: Vec<&geolb_proto::client::ClientMove> = view
                .moves
                .iter()
                .filter(|(t, m)| {
                    (window.0..=window.1).contains(t)
                        && m.to.is_some()
                        && m.reason != MoveReason::Initial
                })
                .map(|(_, m)| m)
                .collect();
            let base = view
                .baseline
                .as_ref()
                .map(|b| b.traffic)
                .unwrap_or_default();
            let now = view.latest.traffic;
            let lost_same_strategy = lost_from_own_strategy(clients, view, |_| true);
            let lost_same_strategy_cross_region = lost_from_own_strategy(clients, view, |sender| {
                sender.latest.region != view.latest.region
            });
            ClientOutcome {
                id: id.clone(),
                region: view.latest.region.clone(),
                strategy: view.latest.strategy.clone(),
                gaps_ms: moves.iter().map(|m| m.gap_ms).collect(),
                landed_region: landed
                    .get(id)
                    .and_then(|v| v.region_now().map(String::from)),
                expected_region: expected(view),
                switches: moves.len() as u32,
                sent: now.sent.saturating_sub(base.sent),
                received: now.received.saturating_sub(base.received),
                lost: now.lost.saturating_sub(base.lost),
                lost_same_strategy,
                lost_same_strategy_cross_region,
                duplicated: now.duplicated.saturating_sub(base.duplicated),
            }
        })
        .collect()
}

/// Messages sent by clients of `view`'s own strategy (and passing `also`)
/// that it missed since the baseline.
fn lost_from_own_strategy(
    clients: &BTreeMap<String, ClientView>,
    view: &ClientView,
    also: impl Fn(&ClientView) -> bool,
) -> u64 {
    let same = |sender: &String| {
        clients
            .get(sender)
            .is_some_and(|s| s.latest.strategy == view.latest.strategy && also(s))
    };
    let before = |sender: &String| {
        view.baseline
            .as_ref()
            .and_then(|b| b.by_sender.get(sender))
            .map_or(0, |c| c.lost)
    };
    view.latest
        .by_sender
        .iter()
        .filter(|(sender, _)| same(sender))
        .map(|(sender, counts)| counts.lost.saturating_sub(before(sender)))
        .sum()
}
