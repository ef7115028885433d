//! The anycast router with real nats-servers and real TCP connections:
//! withdraw and flip under a seeded RNG (new connections go to the old
//! site until the vantage's flip, established ones are reset at it), a
//! region withdrawing by itself when its servers die or are partitioned,
//! failback, proxy mode, and bad requests.

mod common;

use common::{Nats, NatsServer};
use geolb_proto::routing::anycast::{
    AnycastConfig, AnycastMode, AnycastServer, SetAnycast, Vantage,
};
use geolb_proto::routing::{HealthCheck, Quantile, Quantiles, RoutingChange, RttMatrix};
use geolb_proto::WireDuration;
use geolb_wan::anycast::Router;
use geolb_wan::{Emulator, LinkConfig, LinkState};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::broadcast;

const SEED: u64 = 7;

fn rtt() -> RttMatrix {
    serde_json::from_str(
        r#"{"lon":{"ams":8,"dfw":105},"ams":{"lon":8,"dfw":115},"dfw":{"lon":105,"ams":115}}"#,
    )
    .unwrap()
}

/// Flips 1.5 to 2 s after a change: long enough to look before them.
fn slow_flips() -> Quantiles {
    let q = |p, ms| Quantile {
        p,
        value: WireDuration::from_millis(ms),
    };
    Quantiles(vec![q(0.0, 1500), q(1.0, 2000)])
}

fn quick_checks() -> HealthCheck {
    HealthCheck {
        interval: WireDuration::from_millis(100),
        fast_interval: WireDuration::from_millis(50),
        threshold: 2,
        recovery: 2,
        timeout: WireDuration::from_millis(500),
    }
}

/// lon-1, lon-2, ams-1, dfw-1; dfw-1 behind emulator links (to cut it).
struct Fixture {
    servers: Vec<(String, NatsServer)>,
    wan: Emulator,
    config: AnycastConfig,
}

impl Fixture {
    async fn start() -> Fixture {
        let mut servers = Vec::new();
        for id in ["lon-1", "lon-2", "ams-1", "dfw-1"] {
            servers.push((id.to_string(), common::nats_server()));
        }
        let wan = Emulator::new();
        let mut specs = Vec::new();
        for (id, server) in &servers {
            let region = id.split('-').next().unwrap().to_string();
            let target = match id.as_str() {
                "dfw-1" => wan
                    .add(
                        "cl:dfw-1",
                        common::any_addr(),
                        server.client_addr(),
                        LinkConfig::default(),
                    )
                    .await
                    .unwrap()
                    .to_string(),
                _ => server.client_addr().to_string(),
            };
            let dial: BTreeMap<String, String> = ["lon", "ams", "dfw"]
                .iter()
                .map(|r| (r.to_string(), target.clone()))
                .collect();
            specs.push(AnycastServer {
                id: id.clone(),
                region,
                dial,
                check: target,
            });
        }
        let vantage = |id: &str, region: &str| Vantage {
            id: id.into(),
            region: region.into(),
            listen: "127.0.0.1:0".into(),
        };
        let config = AnycastConfig {
            mode: AnycastMode::Bgp,
            vantages: vec![
                vantage("lon-v", "lon"),
                vantage("ams-v", "ams"),
                vantage("dfw-v", "dfw"),
            ],
            servers: specs,
            rtt_ms: rtt(),
            flip: slow_flips(),
            seed: SEED,
            health: quick_checks(),
            auto_withdraw: true,
        };
        Fixture {
            servers,
            wan,
            config,
        }
    }

    /// The id of the server a connection through `vantage` reaches, or why not.
    async fn reached(&self, router: &Router, vantage: &str) -> Result<String, String> {
        let addr = router.vantage_addr(vantage).unwrap();
        let port = info_port(addr).await?;
        let id = self
            .servers
            .iter()
            .find(|(_, s)| s.client_port() == port)
            .map(|(id, _)| id.clone());
        id.ok_or_else(|| format!("port {port} is no server of the fixture"))
    }

    fn kill(&mut self, id: &str) {
        self.servers.retain(|(i, _)| i != id);
    }
}

/// The port in the INFO line a connection to `addr` reads.
async fn info_port(addr: SocketAddr) -> Result<u16, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut reader = tokio::io::BufReader::new(stream);
    let mut line = String::new();
    let read = tokio::io::AsyncBufReadExt::read_line(&mut reader, &mut line);
    match tokio::time::timeout(Duration::from_secs(2), read).await {
        Ok(Ok(n)) if n > 0 => {}
        Ok(Ok(_)) => return Err("closed before INFO".into()),
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err("no INFO within 2 s".into()),
    }
    let info: serde_json::Value =
        serde_json::from_str(line.trim_start_matches("INFO ").trim()).map_err(|e| e.to_string())?;
    info["port"]
        .as_u64()
        .map(|p| p as u16)
        .ok_or_else(|| "INFO without a port".into())
}

/// The next change that `pick` accepts, within `limit`.
async fn next<T>(
    changes: &mut broadcast::Receiver<RoutingChange>,
    limit: Duration,
    pick: impl Fn(&RoutingChange) -> Option<T>,
) -> T {
    let wait = async {
        loop {
            let change = changes.recv().await.expect("the router runs");
            if let Some(t) = pick(&change) {
                return t;
            }
        }
    };
    tokio::time::timeout(limit, wait)
        .await
        .expect("the change within its time")
}

/// The delay the `n`-th draw (from 0) of the seeded RNG gives.
fn seeded_delay(flip: &Quantiles, n: usize) -> u64 {
    let mut rng = fastrand::Rng::with_seed(SEED);
    let u = (0..=n).map(|_| rng.f64()).last().unwrap();
    flip.at(u).as_millis() as u64
}

#[tokio::test]
async fn a_withdrawal_flips_each_vantage_after_its_seeded_delay() {
    let f = Fixture::start().await;
    let router = Router::start(f.config.clone()).await.unwrap();
    let mut changes = router.changes();
    assert!(f
        .reached(&router, "lon-v")
        .await
        .unwrap()
        .starts_with("lon-"));
    assert_eq!(f.reached(&router, "ams-v").await.unwrap(), "ams-1");
    // An established connection of lon's vantage, to be reset at its flip.
    let mut established = Nats::connect(router.vantage_addr("lon-v").unwrap())
        .await
        .unwrap();
    let state = router.withdraw("lon").unwrap();
    assert!(!state.sites[0].announced);
    let delay = next(&mut changes, Duration::from_secs(1), |c| match c {
        RoutingChange::FlipScheduled {
            vantage,
            to,
            delay_ms,
            ..
        } if vantage == "lon-v" => {
            assert_eq!(to, "ams");
            Some(*delay_ms)
        }
        _ => None,
    })
    .await;
    assert_eq!(
        delay,
        seeded_delay(&f.config.flip, 0),
        "the first seeded draw"
    );
    // Until the flip: new connections still reach lon, the old one works.
    assert!(f
        .reached(&router, "lon-v")
        .await
        .unwrap()
        .starts_with("lon-"));
    established.send(b"PING\r\n").await.unwrap();
    established
        .pong(Duration::from_secs(2))
        .await
        .expect("established still up before the flip");
    let (reset, flipped_after) = next(&mut changes, Duration::from_secs(5), |c| match c {
        RoutingChange::Flipped {
            vantage,
            from,
            to,
            delay_ms,
            reset,
            ..
        } if vantage == "lon-v" => {
            assert_eq!((from.as_deref(), to.as_str()), (Some("lon"), "ams"));
            Some((*reset, *delay_ms))
        }
        _ => None,
    })
    .await;
    assert_eq!(flipped_after, delay);
    assert!(reset >= 1, "the established connection was reset");
    let ended = established.closed(Duration::from_secs(2)).await;
    assert_ne!(
        ended.kind(),
        std::io::ErrorKind::TimedOut,
        "reset, not left open"
    );
    assert_eq!(f.reached(&router, "lon-v").await.unwrap(), "ams-1");
    // ams's vantage never moved; dfw's nearest is still dfw.
    let state = router.state();
    let sites: Vec<_> = state
        .vantages
        .iter()
        .map(|v| v.site.clone().unwrap())
        .collect();
    assert_eq!(sites, ["ams", "ams", "dfw"]);
    assert!(state.vantages[0].resets >= 1);
    // Failback: announce, and lon's vantage flips home after the next draw.
    router.announce("lon").unwrap();
    let back = next(&mut changes, Duration::from_secs(1), |c| match c {
        RoutingChange::FlipScheduled {
            vantage,
            to,
            delay_ms,
            ..
        } if vantage == "lon-v" && to == "lon" => Some(*delay_ms),
        _ => None,
    })
    .await;
    assert_eq!(
        back,
        seeded_delay(&f.config.flip, 1),
        "the second seeded draw"
    );
    next(&mut changes, Duration::from_secs(5), |c| {
        matches!(c, RoutingChange::Flipped { vantage, to, .. } if vantage == "lon-v" && to == "lon")
            .then_some(())
    })
    .await;
    assert!(f
        .reached(&router, "lon-v")
        .await
        .unwrap()
        .starts_with("lon-"));
    // The same seed gives the same delays.
    let again = Router::start(f.config.clone()).await.unwrap();
    let mut changes = again.changes();
    again.withdraw("lon").unwrap();
    let same = next(&mut changes, Duration::from_secs(1), |c| match c {
        RoutingChange::FlipScheduled { delay_ms, .. } => Some(*delay_ms),
        _ => None,
    })
    .await;
    assert_eq!(same, delay);
    assert!(router
        .withdraw("syd")
        .unwrap_err()
        .to_string()
        .contains("syd"));
}

#[tokio::test]
async fn a_dead_region_withdraws_itself_and_its_vantage_is_refused_until_the_flip() {
    let mut f = Fixture::start().await;
    let router = Router::start(f.config.clone()).await.unwrap();
    let mut changes = router.changes();
    f.kill("lon-1");
    f.kill("lon-2");
    next(&mut changes, Duration::from_secs(5), |c| match c {
        RoutingChange::Withdrawn { region, reason } if region == "lon" => {
            assert_eq!(reason, "health");
            Some(())
        }
        _ => None,
    })
    .await;
    // Before the flip the vantage still sends to lon, whose servers are gone.
    let before = f.reached(&router, "lon-v").await;
    assert!(
        before.is_err(),
        "refused or reset before the flip: {before:?}"
    );
    next(&mut changes, Duration::from_secs(5), |c| {
        matches!(c, RoutingChange::Flipped { vantage, .. } if vantage == "lon-v").then_some(())
    })
    .await;
    assert_eq!(f.reached(&router, "lon-v").await.unwrap(), "ams-1");
    assert_eq!(router.state().sites[0].withdrawn.as_deref(), Some("health"));
}

#[tokio::test]
async fn a_partitioned_region_withdraws_itself() {
    let f = Fixture::start().await;
    let router = Router::start(f.config.clone()).await.unwrap();
    let mut changes = router.changes();
    f.wan
        .set("cl:dfw-1", LinkConfig::default().with_state(LinkState::Cut))
        .unwrap();
    next(&mut changes, Duration::from_secs(10), |c| {
        matches!(c, RoutingChange::Withdrawn { region, .. } if region == "dfw").then_some(())
    })
    .await;
    next(&mut changes, Duration::from_secs(5), |c| {
        matches!(c, RoutingChange::Flipped { vantage, to, .. } if vantage == "dfw-v" && to == "lon")
            .then_some(())
    })
    .await;
    assert!(f
        .reached(&router, "dfw-v")
        .await
        .unwrap()
        .starts_with("lon-"));
    f.wan.set("cl:dfw-1", LinkConfig::default()).unwrap();
    next(&mut changes, Duration::from_secs(10), |c| {
        matches!(c, RoutingChange::Announced { region, .. } if region == "dfw").then_some(())
    })
    .await;
}

#[tokio::test]
async fn proxy_mode_stays_local_and_crosses_only_when_every_local_server_fails() {
    let mut f = Fixture::start().await;
    let mut config = f.config.clone();
    config.mode = AnycastMode::Proxy;
    let router = Router::start(config).await.unwrap();
    let mut changes = router.changes();
    for _ in 0..6 {
        assert!(f
            .reached(&router, "lon-v")
            .await
            .unwrap()
            .starts_with("lon-"));
    }
    f.kill("lon-1");
    next(&mut changes, Duration::from_secs(5), |c| {
        matches!(c, RoutingChange::Health { server, healthy: false, .. } if server == "lon-1")
            .then_some(())
    })
    .await;
    for _ in 0..6 {
        assert_eq!(
            f.reached(&router, "lon-v").await.unwrap(),
            "lon-2",
            "the healthy local server"
        );
    }
    f.kill("lon-2");
    next(&mut changes, Duration::from_secs(5), |c| {
        matches!(c, RoutingChange::Health { server, healthy: false, .. } if server == "lon-2")
            .then_some(())
    })
    .await;
    assert_eq!(
        f.reached(&router, "lon-v").await.unwrap(),
        "ams-1",
        "across only now"
    );
    assert_eq!(
        router.state().vantages[0].site.as_deref(),
        Some("lon"),
        "the edge stays in lon"
    );
    // Back to BGP at run time: lon withdrew by health, so its vantage is on ams at once.
    let state = router.set(&SetAnycast {
        mode: Some(AnycastMode::Bgp),
        auto_withdraw: None,
    });
    assert_eq!(state.vantages[0].site.as_deref(), Some("ams"));
    while let Ok(change) = changes.try_recv() {
        assert!(
            !matches!(change, RoutingChange::FlipScheduled { .. }),
            "no flips in proxy mode: {change:?}"
        );
    }
}
