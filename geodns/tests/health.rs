//! Health-driven answers with real nats-servers: a server killed, a
//! server's links cut (a partition), and both back; the version moves with
//! every change and is published as it happens.

mod common;

use common::{answer_ip, Fixture};
use geolb_proto::routing::dns::DnsPolicy;
use geolb_proto::routing::RoutingChange;
use geolb_tests::wait_for;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn a_killed_region_is_answered_with_the_next_nearest_and_back() {
    let mut f = Fixture::start(DnsPolicy::NearestOnly, 1).await;
    let mut changes = f.dns.changes();
    assert_eq!(f.a("lon").await, [answer_ip(0, 0), answer_ip(0, 1)]);
    f.server("lon-1").kill();
    wait_for(
        "lon-1 marked down: lon answered lon-2 only",
        WAIT,
        || async { (f.a("lon").await == [answer_ip(0, 1)]).then_some(()) },
    )
    .await;
    f.server("lon-2").kill();
    wait_for("lon answered with ams", WAIT, || async {
        (f.a("lon").await == [answer_ip(0, 2)]).then_some(())
    })
    .await;
    let state = f.dns.state();
    assert_eq!(
        state.serial, 3,
        "two changes of answers: {:?}",
        state.answers
    );
    assert!(state.servers.iter().filter(|s| !s.healthy).count() == 2);
    assert_eq!(f.version("lon").await, "geolb-version=3");
    // Published as they happened: health down, then the new answers.
    let mut seen = Vec::new();
    while let Ok(change) = changes.try_recv() {
        seen.push(change);
    }
    let down = seen.iter().position(
        |c| matches!(c, RoutingChange::Health { server, healthy: false, .. } if server == "lon-1"),
    );
    let answered = seen.iter().position(
        |c| matches!(c, RoutingChange::Answers { serial: 2, region, .. } if region == "lon"),
    );
    assert!(
        down.is_some() && answered.is_some() && down < answered,
        "{seen:?}"
    );
    // ams's clients were never told about lon: their answer did not change.
    assert!(
        !seen
            .iter()
            .any(|c| matches!(c, RoutingChange::Answers { region, .. } if region == "ams")),
        "{seen:?}"
    );
    f.server("lon-1").restart();
    wait_for("lon-1 up again after its recovery", WAIT, || async {
        (f.a("lon").await == [answer_ip(0, 0)]).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_partitioned_server_fails_its_checks() {
    let f = Fixture::start(DnsPolicy::NearestFirst, 1).await;
    f.cut("dfw-1", true);
    wait_for("dfw-1 marked down through cut links", WAIT, || async {
        let state = f.dns.state();
        let dfw = state.servers.iter().find(|s| s.id == "dfw-1")?;
        (!dfw.healthy).then_some(())
    })
    .await;
    let detail = f.dns.state().servers[3].detail.clone().unwrap_or_default();
    assert!(detail.contains("no PONG"), "a cut link times out: {detail}");
    assert_eq!(
        f.a("dfw").await,
        [answer_ip(2, 0), answer_ip(2, 1), answer_ip(2, 2)]
    );
    f.cut("dfw-1", false);
    wait_for("dfw-1 back first for dfw", WAIT, || async {
        (f.a("dfw").await.first() == Some(&answer_ip(2, 3))).then_some(())
    })
    .await;
}

#[tokio::test]
async fn nothing_healthy_anywhere_fails_open() {
    let mut f = Fixture::start(DnsPolicy::NearestOnly, 1).await;
    for id in ["lon-1", "lon-2", "ams-1", "dfw-1"] {
        f.server(id).kill();
    }
    wait_for("every server marked down", WAIT, || async {
        f.dns
            .state()
            .servers
            .iter()
            .all(|s| !s.healthy)
            .then_some(())
    })
    .await;
    // As Route 53: every record is considered healthy, the policy applies.
    assert_eq!(f.a("lon").await, [answer_ip(0, 0), answer_ip(0, 1)]);
    assert_eq!(f.a("dfw").await, [answer_ip(2, 3)]);
}
