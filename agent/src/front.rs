//! `geolb-agent run --front KIND=LISTEN->TARGET`: the child's listeners
//! behind the agent's own emulated links, so a region can be partitioned or
//! degraded on any host (Fly.io, a plain VM) with no privileges and no
//! extra container. Each front link is announced on the control plane like
//! an emulator's links ([`crate::links`]), as emulator `<agent id>`, leading
//! to this agent's region from anywhere.
//!
//! The child listens on TARGET (e.g. nats-server `listen: 127.0.0.1:14222`)
//! and the agent on LISTEN (`0.0.0.0:4222`); clients and gateway peers dial
//! LISTEN. A target that never opens is reported loudly (an ERROR line and a
//! `front_target_down` event) rather than left to puzzle whoever dials it.

use crate::identity::Identity;
use crate::links::Links;
use geolb_proto::wan::{Carries, LinkConfig, LinkPath, LinkSpec};
use geolb_proto::EventKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One `--front` flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Front {
    /// client, websocket, leafnode or gateway.
    pub kind: String,
    /// What the link carries.
    pub carries: Carries,
    /// Where the agent listens.
    pub listen: SocketAddr,
    /// Where the child listens.
    pub target: SocketAddr,
}

impl std::str::FromStr for Front {
    type Err = String;

    fn from_str(s: &str) -> Result<Front, String> {
        let usage = "give KIND=LISTEN->TARGET, e.g. client=0.0.0.0:4222->127.0.0.1:14222";
        let (kind, rest) = s
            .split_once('=')
            .ok_or_else(|| format!("--front {s:?}: {usage}"))?;
        let (listen, target) = rest
            .split_once("->")
            .ok_or_else(|| format!("--front {s:?}: {usage}"))?;
        let carries = match kind {
            "client" | "websocket" | "leafnode" => Carries::Client,
            "gateway" => Carries::Gateway,
            other => {
                return Err(format!(
                    "--front {s:?}: kind {other:?} is not client, websocket, leafnode or gateway \
                     (routes stay direct: a region's partition keeps its cluster whole)"
                ))
            }
        };
        let addr = |what: &str, text: &str| {
            text.trim()
                .parse::<SocketAddr>()
                .map_err(|_| format!("--front {s:?}: {what} {text:?} is not IP:PORT; {usage}"))
        };
        let front = Front {
            kind: kind.to_string(),
            carries,
            listen: addr("LISTEN", listen)?,
            target: addr("TARGET", target)?,
        };
        if front.listen == front.target {
            return Err(format!(
                "--front {s:?}: LISTEN and TARGET are the same address; the child must listen elsewhere"
            ));
        }
        Ok(front)
    }
}

impl Front {
    /// The link's name on the control plane: `front:<agent id>:<kind>`.
    pub fn link_name(&self, agent: &str) -> String {
        format!("front:{agent}:{}", self.kind)
    }
}

/// Starts every front link of `identity` (no delay: real geography adds its own).
pub async fn start(fronts: &[Front], identity: &Identity) -> anyhow::Result<Links> {
    let mut kinds: Vec<&str> = fronts.iter().map(|f| f.kind.as_str()).collect();
    kinds.sort_unstable();
    if let Some(w) = kinds.windows(2).find(|w| w[0] == w[1]) {
        anyhow::bail!("--front {} is given twice; give each kind once", w[0]);
    }
    let mut links = Links::new();
    for front in fronts {
        let spec = LinkSpec {
            name: front.link_name(&identity.id),
            listen: front.listen.to_string(),
            target: front.target.to_string(),
            config: LinkConfig::default(),
            path: Some(LinkPath {
                carries: front.carries,
                from: None,
                to: identity.region.clone(),
                server: Some(identity.id.clone()),
            }),
        };
        links
            .add(&spec)
            .await
            .map_err(|e| anyhow::anyhow!("--front {}: {e:#}", front.kind))?;
        tracing::info!(link = %spec.name, listen = %front.listen, target = %front.target, "Front link up.");
    }
    Ok(links)
}

/// Watches every front target until it accepts a connection; one that has
/// not after `timeout` is reported (ERROR and `front_target_down`), then
/// watched on, and its opening reported too.
pub async fn watch_targets(
    fronts: Vec<Front>,
    identity: Identity,
    timeout: Duration,
    events: mpsc::Sender<EventKind>,
    token: CancellationToken,
) {
    let began = Instant::now();
    let mut waiting: Vec<(Front, bool)> = fronts.into_iter().map(|f| (f, false)).collect();
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for (front, reported) in waiting {
            if opens(front.target).await {
                if reported {
                    tracing::info!(link = %front.link_name(&identity.id), target = %front.target, "Front target open at last.");
                }
                continue;
            }
            let late = began.elapsed() >= timeout;
            if late && !reported {
                let link = front.link_name(&identity.id);
                tracing::error!(
                    link = %link,
                    target = %front.target,
                    waited_s = timeout.as_secs(),
                    "Nothing listens on the front link's target: whoever dials {} is refused. \
                     Make the child listen on {} (nats-server `listen`, `gateway.listen`, ...).",
                    front.listen,
                    front.target
                );
                let _ = events
                    .send(EventKind::FrontTargetDown {
                        link,
                        target: front.target.to_string(),
                        waited_ms: began.elapsed().as_millis() as u64,
                    })
                    .await;
            }
            still.push((front, reported || late));
        }
        waiting = still;
        tokio::select! {
            biased;
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

async fn opens(target: SocketAddr) -> bool {
    let connect = tokio::net::TcpStream::connect(target);
    matches!(
        tokio::time::timeout(Duration::from_millis(500), connect).await,
        Ok(Ok(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_front_flags() {
        let f: Front = "client=0.0.0.0:4222->127.0.0.1:14222".parse().unwrap();
        assert_eq!(f.carries, Carries::Client);
        assert_eq!(f.listen, "0.0.0.0:4222".parse().unwrap());
        assert_eq!(f.target, "127.0.0.1:14222".parse().unwrap());
        assert_eq!(f.link_name("lon-1"), "front:lon-1:client");
        let g: Front = "gateway=[::]:7222->[::1]:17222".parse().unwrap();
        assert_eq!(g.carries, Carries::Gateway);
        for bad in [
            "client",
            "client=0.0.0.0:4222",
            "route=0.0.0.0:6222->127.0.0.1:16222",
            "client=host:4222->127.0.0.1:1",
            "client=127.0.0.1:4222->127.0.0.1:4222",
        ] {
            assert!(bad.parse::<Front>().is_err(), "{bad}");
        }
        let err = "route=0.0.0.0:6222->127.0.0.1:16222"
            .parse::<Front>()
            .unwrap_err();
        assert!(err.contains("routes stay direct"), "{err}");
    }
}
