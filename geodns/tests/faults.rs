//! Every fault knob over real queries: the checker stopped and slow, the
//! server unreachable, wrong-region answers; bad faults refused.

mod common;

use common::{answer_ip, query, tcp, udp, Fixture, NAME};
use geolb_proto::routing::dns::{CheckerMode, DnsFaults, DnsPolicy};
use geolb_tests::wait_for;
use hickory_server::proto::rr::RecordType;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

fn faults(f: impl FnOnce(&mut DnsFaults)) -> DnsFaults {
    let mut faults = DnsFaults::default();
    f(&mut faults);
    faults
}

#[tokio::test]
async fn a_stopped_checker_freezes_health_until_it_runs_again() {
    let mut f = Fixture::start(DnsPolicy::NearestOnly, 1).await;
    f.dns
        .set_faults(faults(|x| x.checker = CheckerMode::Stopped))
        .unwrap();
    f.server("ams-1").kill();
    // Twenty intervals of 100 ms: a running checker marks it down after two.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let state = f.dns.state();
    assert!(state.servers[2].healthy, "frozen: {:?}", state.servers[2]);
    assert_eq!(
        f.a("ams").await,
        [answer_ip(1, 2)],
        "still answers the dead server"
    );
    f.dns.set_faults(DnsFaults::default()).unwrap();
    wait_for(
        "ams answered with lon once the checker runs",
        WAIT,
        || async { (f.a("ams").await == [answer_ip(1, 0), answer_ip(1, 1)]).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn a_slow_checker_checks_at_its_interval_times_the_factor() {
    let mut f = Fixture::start(DnsPolicy::NearestOnly, 1).await;
    // Let the first round pass, then slow to 100 ms x 100 = 10 s.
    wait_for("a first round", WAIT, || async {
        (f.dns.state().servers[3].passes >= 1).then_some(())
    })
    .await;
    f.dns
        .set_faults(faults(|x| {
            x.checker = CheckerMode::Slow;
            x.slow_factor = 100.0;
        }))
        .unwrap();
    f.server("dfw-1").kill();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        f.dns.state().servers[3].healthy,
        "no second failure yet at 10 s intervals"
    );
    f.dns
        .set_faults(faults(|x| {
            x.checker = CheckerMode::Slow;
            x.slow_factor = 2.0;
        }))
        .unwrap();
    wait_for("dfw-1 down at 200 ms intervals", WAIT, || async {
        (!f.dns.state().servers[3].healthy).then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_server_drops_every_query() {
    let f = Fixture::start(DnsPolicy::NearestOnly, 1).await;
    f.dns.set_faults(faults(|x| x.unreachable = true)).unwrap();
    for region in common::REGIONS {
        let bytes = query(NAME, RecordType::A);
        assert!(
            udp(f.resolver(region), &bytes).await.is_none(),
            "{region}: UDP answered"
        );
        assert!(
            tcp(f.resolver(region), &bytes).await.is_none(),
            "{region}: TCP answered"
        );
    }
    assert!(f.dns.state().dropped >= 6);
    f.dns.set_faults(DnsFaults::default()).unwrap();
    assert_eq!(f.a("lon").await.len(), 2, "answers again");
}

#[tokio::test]
async fn wrong_region_answers_everyone_as_one_region() {
    let f = Fixture::start(DnsPolicy::NearestOnly, 1).await;
    let state = f
        .dns
        .set_faults(faults(|x| x.wrong_region = Some("dfw".into())))
        .unwrap();
    assert_eq!(state.serial, 2, "every answer but dfw's changed");
    // Every region's clients get dfw-1, each through its own path to it.
    assert_eq!(f.a("lon").await, [answer_ip(0, 3)]);
    assert_eq!(f.a("ams").await, [answer_ip(1, 3)]);
    assert_eq!(f.a("dfw").await, [answer_ip(2, 3)]);
    assert!(
        state.answers.iter().all(|a| a.answered_as == "dfw"),
        "{:?}",
        state.answers
    );
    assert_eq!(f.version("lon").await, "geolb-version=2");
    let bad = f
        .dns
        .set_faults(faults(|x| x.wrong_region = Some("syd".into())));
    assert!(bad.unwrap_err().to_string().contains("syd"));
    let bad = f.dns.set_faults(faults(|x| x.slow_factor = 0.5));
    assert!(bad.unwrap_err().to_string().contains("slow_factor"));
    let state = f.dns.set_faults(DnsFaults::default()).unwrap();
    assert_eq!((state.serial, f.a("lon").await.len()), (3, 2));
}
