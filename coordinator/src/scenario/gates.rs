//! The gates between a scenario's steps, read only from what comes over
//! the control plane (so they work where no monitoring port is reachable):
//! servers healthy with their routes and gateways, clients settled. Every
//! wait also fails the run when an agent goes stale.

use super::fleet::{Fleet, CLIENT_FRESH};
use super::observe::{ClientView, Observer};
use crate::geography::{self, Geography};
use crate::live::joined;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// How often a gate looks again.
const POLL: Duration = Duration::from_millis(100);

/// Waits until every server in `ids` reports, in metrics sent after this
/// call, that it is healthy with its routes and gateways.
pub async fn servers_ready(fleet: &Fleet, ids: &[String], timeout: Duration) -> anyhow::Result<()> {
    let since = Instant::now();
    wait(fleet, timeout, || {
        let agents = fleet.live.agents();
        let missing: Vec<String> = ids
            .iter()
            .filter_map(|id| {
                let state = match agents.get(id).and_then(|a| a.metrics.as_ref()) {
                    Some((m, at)) if *at >= since => match &m.server {
                        Some(s) => joined(s, fleet.want_routes(&m.region), fleet.want_gateways()),
                        None => Err("its metrics carry no server (no --monitor?)".into()),
                    },
                    _ => Err("no metrics yet".into()),
                };
                state.err().map(|e| format!("{id}: {e}"))
            })
            .collect();
        match missing.is_empty() {
            true => Ok(()),
            false => Err(format!("servers not ready: {}", missing.join("; "))),
        }
    })
    .await
}

/// Waits until `region` has `count` live server agents, each reporting
/// itself joined in metrics sent after this call (they may be new agents:
/// a Fly machine destroyed and created again has a new id).
pub async fn region_ready(
    fleet: &Fleet,
    region: &str,
    count: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<String>> {
    let since = Instant::now();
    let mut ready = Vec::new();
    wait(fleet, timeout, || {
        let servers: Vec<_> = fleet
            .live
            .live(geolb_proto::Role::Server)
            .into_iter()
            .filter(|a| a.region() == region)
            .collect();
        ready = servers
            .iter()
            .filter(|a| {
                a.metrics.as_ref().is_some_and(|(m, at)| {
                    *at >= since
                        && m.server.as_ref().is_some_and(|s| {
                            let want = (count as u32).saturating_sub(1);
                            joined(s, want, fleet.want_gateways()).is_ok()
                        })
                })
            })
            .map(|a| a.id().to_string())
            .collect();
        match ready.len() >= count {
            true => Ok(()),
            false => Err(format!(
                "{region} has {} of {count} servers ready ({} live agents)",
                ready.len(),
                servers.len()
            )),
        }
    })
    .await?;
    Ok(ready)
}

/// The region a client should be on when nothing is wrong: its own, if the
/// fleet has servers there, else the nearest by its own measurements.
pub fn home(view: &ClientView, regions: &BTreeSet<String>, geo: &Geography) -> Option<String> {
    let own = &view.latest.region;
    match regions.contains(own) {
        true => Some(own.clone()),
        false => geography::nearest(view.before(), |r| regions.contains(r), geo).map(|(r, _)| r),
    }
}

/// Every client's home region (see [`home`]).
pub fn homes(
    clients: &BTreeMap<String, ClientView>,
    regions: &BTreeSet<String>,
) -> BTreeMap<String, String> {
    let geo = Geography::measure(clients.values().map(|v| v.before()));
    clients
        .iter()
        .filter_map(|(id, v)| Some((id.clone(), home(v, regions, &geo)?)))
        .collect()
}

/// Whether a client is connected and, for `rtt`, at home.
pub fn settled(view: &ClientView, regions: &BTreeSet<String>, geo: &Geography) -> bool {
    match view.region_now() {
        None => false,
        Some(region) => {
            view.latest.strategy != "rtt" || home(view, regions, geo).as_deref() == Some(region)
        }
    }
}

/// Waits until every client known at the start reports a server (and every
/// `rtt` client is at home); returns how long it took.
pub async fn clients_settled(
    fleet: &Fleet,
    obs: &Observer,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let regions: BTreeSet<String> = fleet.regions().into_iter().collect();
    let expected: Vec<String> = fleet.clients().keys().cloned().collect();
    wait(fleet, timeout, || {
        let clients = obs.clients();
        let geo = Geography::measure(clients.values().map(|v| v.before()));
        let unsettled: Vec<String> = expected
            .iter()
            .filter_map(|id| match clients.get(id) {
                None => Some(format!("{id} never reported")),
                Some(v) if v.received.elapsed() > CLIENT_FRESH => {
                    Some(format!("{id} stopped reporting"))
                }
                Some(v) if !settled(v, &regions, &geo) => {
                    Some(format!("{id} on {}", v.region_now().unwrap_or("nothing")))
                }
                Some(_) => None,
            })
            .collect();
        match unsettled.is_empty() {
            true => Ok(()),
            false => Err(format!(
                "clients did not settle: {} of {} unsettled: {}",
                unsettled.len(),
                expected.len(),
                shorten(&unsettled)
            )),
        }
    })
    .await?;
    Ok(started.elapsed())
}

/// Waits until every routing component is back to normal, so each run
/// starts from the same routing: the GeoDNS has every server healthy, and
/// the anycast router announces every region with no flip on its way.
pub async fn routing_settled(fleet: &Fleet, timeout: Duration) -> anyhow::Result<()> {
    use geolb_proto::routing::anycast::{self, AnycastReply};
    use geolb_proto::routing::dns::{self, DnsReply};
    use geolb_proto::routing::Component;
    if fleet.routing.is_empty() {
        return Ok(());
    }
    let deadline = Instant::now() + timeout;
    loop {
        let mut unsettled = Vec::new();
        for (component, id) in &fleet.routing {
            let args = serde_json::Value::Null;
            match component {
                Component::Dns => {
                    let what = format!("the GeoDNS {id}");
                    let subject = dns::subject(id, "state");
                    let reply: DnsReply =
                        crate::links::call(&fleet.control, &what, subject, "state", args).await?;
                    let down: Vec<String> = reply
                        .state
                        .iter()
                        .flat_map(|s| &s.servers)
                        .filter(|s| !s.healthy)
                        .map(|s| s.id.clone())
                        .collect();
                    if !down.is_empty() {
                        unsettled.push(format!("{what} has {} down", down.join(", ")));
                    }
                }
                Component::Anycast => {
                    let what = format!("the anycast router {id}");
                    let subject = anycast::subject(id, "state");
                    let reply: AnycastReply =
                        crate::links::call(&fleet.control, &what, subject, "state", args).await?;
                    let Some(state) = reply.state else { continue };
                    let withdrawn: Vec<&str> = state
                        .sites
                        .iter()
                        .filter(|s| !s.announced)
                        .map(|s| s.region.as_str())
                        .collect();
                    let pending: Vec<&str> = state
                        .vantages
                        .iter()
                        .filter(|v| v.pending.is_some())
                        .map(|v| v.id.as_str())
                        .collect();
                    if !withdrawn.is_empty() || !pending.is_empty() {
                        unsettled.push(format!(
                            "{what}: withdrawn {withdrawn:?}, flips on their way {pending:?}"
                        ));
                    }
                }
            }
        }
        if unsettled.is_empty() {
            return Ok(());
        }
        fleet.check_alive()?;
        if Instant::now() >= deadline {
            anyhow::bail!(
                "routing did not settle in {timeout:?}: {}",
                unsettled.join("; ")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Sleeps `duration`, failing early when an agent goes stale.
pub async fn hold(fleet: &Fleet, duration: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + duration;
    loop {
        fleet.check_alive()?;
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        tokio::time::sleep(left.min(Duration::from_millis(250))).await;
    }
}

/// Polls `check` until it passes; fails with its last complaint after
/// `timeout`, or at once when an agent goes stale.
async fn wait(
    fleet: &Fleet,
    timeout: Duration,
    mut check: impl FnMut() -> Result<(), String>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check() {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        fleet.check_alive()?;
        if Instant::now() >= deadline {
            anyhow::bail!("{last} (after {timeout:?})");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// At most 10 items, then how many more.
fn shorten(items: &[String]) -> String {
    let mut text = items
        .iter()
        .take(10)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > 10 {
        text.push_str(&format!(" and {} more", items.len() - 10));
    }
    text
}

/// Every client's expected region after `failed` fails: the nearest other
/// region with servers, by its own measurements before the fault.
pub fn expected_after_loss(
    clients: &BTreeMap<String, ClientView>,
    failed: &str,
    regions: &BTreeSet<String>,
) -> BTreeMap<String, (String, f64)> {
    let geo = Geography::measure(clients.values().map(|v| v.before()));
    clients
        .iter()
        .filter_map(|(id, v)| {
            let allowed = |r: &str| r != failed && regions.contains(r);
            let home = home(v, regions, &geo)?;
            let target = match home == failed {
                true => geography::nearest(v.before(), allowed, &geo)?,
                false => (
                    home.clone(),
                    geo.rtt_ms(&v.latest.region, &home).unwrap_or(0.0),
                ),
            };
            Some((id.clone(), target))
        })
        .collect()
}
