//! The `dns` and `anycast` strategies: the routing system, not the client,
//! picks the server. The client dials one target and, whenever it has no
//! connection, starts a round: `dns` looks the name up itself (so every
//! attempt sees the answer its resolver holds now, stale or not) and dials
//! the answers in order; `anycast` dials its one address and the network
//! decides where it lands. A round that finds nobody waits a jittered,
//! doubling backoff before the next. Discovered servers are ignored, as for
//! every strategy.
//!
//! The server's region is the cluster name in its INFO (the region, in the
//! lab and in `fly/`), since the client was given no map of regions.

use super::context::Context;
use super::resolve::DnsResolver;
use super::session::{Link, LinkEvent, LinkOptions};
use super::setup::RoutedPlan;
use async_nats::Event;
use geolb_proto::client::{MoveReason, ServerRef};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long a retired connection may take to drain.
const DRAIN_GRACE: Duration = Duration::from_secs(3);

/// Runs until `token` is cancelled.
pub async fn drive(
    ctx: Arc<Context>,
    plan: RoutedPlan,
    link: LinkOptions,
    token: CancellationToken,
) -> anyhow::Result<()> {
    ctx.route_to(&plan.target);
    let resolver = match ctx.strategy {
        super::args::Strategy::Dns => Some(DnsResolver::new(&plan.resolver, plan.keep_stale)?),
        _ => None,
    };
    let (events, mut event_rx) = mpsc::unbounded_channel::<LinkEvent>();
    let mut backoff = plan.backoff.clone();
    let mut generation = 0u64;
    let mut reason = MoveReason::Initial;
    let mut down_since: Option<Instant> = None;
    loop {
        generation += 1;
        let urls = match &resolver {
            Some(resolver) => {
                let answer = resolver.lookup(&plan.host).await;
                if let Some(error) = &answer.record.error {
                    tracing::warn!(error = %error, resolver = ?plan.resolver, "DNS lookup failed.");
                }
                ctx.looked_up(answer.record);
                answer
                    .addrs
                    .iter()
                    .map(|ip| match ip {
                        std::net::IpAddr::V6(v6) => {
                            format!("{}://[{v6}]:{}", plan.scheme, plan.port)
                        }
                        v4 => format!("{}://{v4}:{}", plan.scheme, plan.port),
                    })
                    .collect()
            }
            None => vec![plan.target.clone()],
        };
        let mut open = None;
        for url in urls {
            let opened = tokio::select! {
                biased;
                _ = token.cancelled() => return Ok(()),
                opened = Link::open(&url, 0, generation, &link, events.clone(), ctx.traffic.clone()) => opened,
            };
            ctx.attempted(opened.is_err());
            match opened {
                Ok(connection) => {
                    open = Some((url, connection));
                    break;
                }
                Err(e) => tracing::debug!(url = %url, error = %e, "Nothing answers there."),
            }
        }
        let Some((url, connection)) = open else {
            let wait = backoff.next_delay();
            tokio::select! {
                biased;
                _ = token.cancelled() => return Ok(()),
                _ = tokio::time::sleep(wait) => continue,
            }
        };
        backoff.reset();
        let info = connection.client.server_info();
        let gap_ms = down_since
            .take()
            .map_or(0, |t| t.elapsed().as_millis() as u64);
        let to = ServerRef {
            url,
            region: info.cluster.clone().unwrap_or_default(),
            name: info.server_name.clone(),
            cluster: info.cluster.unwrap_or_default(),
        };
        ctx.moved(reason, Some(to), gap_ms);
        ctx.publish_to.send_replace(Some(connection.client.clone()));
        // Until the connection is lost; a lame-duck notice only names the cause.
        let mut lame_duck = false;
        let lost = loop {
            tokio::select! {
                biased;
                _ = token.cancelled() => break false,
                event = event_rx.recv() => match event {
                    Some((g, Event::LameDuckMode)) if g == generation => lame_duck = true,
                    Some((g, Event::Disconnected)) if g == generation => break true,
                    Some(_) => {}
                    None => break true,
                },
            }
        };
        ctx.publish_to.send_replace(None);
        // Lost or left: nothing to keep subscribed.
        connection.retire(Duration::ZERO, DRAIN_GRACE);
        if !lost {
            return Ok(());
        }
        down_since = Some(Instant::now());
        reason = match lame_duck {
            true => MoveReason::LameDuck,
            false => MoveReason::Lost,
        };
        ctx.moved(reason, None, 0);
    }
}
