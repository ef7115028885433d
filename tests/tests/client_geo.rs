//! The headless client (`geolb-agent client`, `--strategy rtt`) in a `GeoLab`:
//! three regions of three nats-servers behind the WAN emulator (lon-ams 8 ms,
//! lon-dfw 105 ms, ams-dfw 115 ms), faults injected on the servers and the links.
//!
//! Each test starts its own lab (one at a time: `GeoLab::start` waits its turn)
//! and at most two clients, with `--hold 1s` and `--shards 1`.
//! Connections are read from the servers' own `/connz`.

use std::time::Duration;

use geolb_proto::client::{ClientMove, MoveReason};
use geolb_tests::geo::{ClientProc, ClientSpec, GeoLab, GeoSpec};
use geolb_tests::{wait_for, with_timeout};
use geolb_wan::LinkConfig;

/// The first election (2 s window) and connecting, on a loaded machine.
const ELECT: Duration = Duration::from_secs(15);
/// A move the client makes by itself after a fault.
const MOVE: Duration = Duration::from_secs(10);
/// A move to a better server: once elected, the other candidates are
/// probed every 2 s, so the slower home is seen at once but each candidate
/// that only looks better on an older sample is measured again (probed
/// fast) before the hold starts.
const BETTER: Duration = Duration::from_secs(25);
/// Time for the probe rate of a client to cover no election.
const RATES: Duration = Duration::from_secs(30);
/// Starting the lab, or a region again.
const SETUP: Duration = Duration::from_secs(45);

/// Flags every test client gets.
const FLAGS: [&str; 6] = [
    "--hold",
    "1s",
    "--shards",
    "1",
    "--report-interval",
    "500ms",
];

async fn lab() -> GeoLab {
    GeoLab::start(GeoSpec::default()).await
}

/// An `rtt` client `id` living in `region`, on its home region already.
async fn client(lab: &GeoLab, id: &str, region: &str, extra: &[&str]) -> ClientProc {
    let spec = ClientSpec::new(id, region)
        .args(FLAGS)
        .args(extra.iter().copied());
    let client = lab.spawn_client(spec).expect("spawn the client");
    client.wait_region(region, ELECT).await;
    client
}

/// The name of the server `client` is on.
fn server_of(client: &ClientProc) -> String {
    client.current().expect("the client has a server").name
}

/// The moves after the first `after`.
fn moves_since(client: &ClientProc, after: usize) -> Vec<ClientMove> {
    client.moves().into_iter().skip(after).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_only_go_through_the_emulator_even_after_a_region_restarts() {
    let lab = lab().await;
    let paths = lab.gateway_paths().await;
    println!("outbound gateways: {:?}", paths.outbound);
    println!("open connections per link group: {:?}", paths.open_by_pair);
    assert!(
        paths.all_through_emulator(3),
        "gateways bypass the emulator or are missing: {paths:?}"
    );
    assert_eq!(paths.outbound.len(), 9 * 2, "{paths:?}");

    // The others dial ams again, with whatever URLs gossip taught them; the
    // restart waits until every gateway is back through its own links.
    with_timeout(SETUP, lab.restart_region("ams")).await;
    let paths = lab.gateway_paths().await;
    println!("after restarting ams: {:?}", paths.outbound);
    assert!(paths.all_through_emulator(3), "{paths:?}");
    // Still so a little later: no gossiped path won in the meantime.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let paths = lab.gateway_paths().await;
    assert!(paths.all_through_emulator(3), "{paths:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_region_elects_its_own_and_a_slow_home_loses_to_ams() {
    let lab = lab().await;
    let lon = client(&lab, "lon-c1", "lon", &[]).await;
    let ams = client(&lab, "ams-c1", "ams", &[]).await;
    let dfw = client(&lab, "dfw-c1", "dfw", &[]).await;
    for c in [&lon, &ams, &dfw] {
        let moves = c.moves();
        assert_eq!(moves.len(), 1, "{}: one initial move: {moves:?}", c.id());
        assert_eq!(moves[0].reason, MoveReason::Initial);
    }

    // What the lon client measures matches the matrix: the lowest rolling
    // average over four status records, so one stall of this loaded machine
    // does not count.
    let mut lowest: Vec<(String, String, f64)> = Vec::new();
    for _ in 0..4 {
        let status = with_timeout(ELECT, lon.fresh_status(ELECT)).await;
        for cand in status.candidates {
            let got = cand.rtt_ms.expect("every candidate measured");
            match lowest.iter_mut().find(|(url, _, _)| *url == cand.url) {
                Some((_, _, low)) => *low = low.min(got),
                None => lowest.push((cand.url, cand.region, got)),
            }
        }
    }
    for (url, region, got) in &lowest {
        let want = lab.spec().rtt("lon", region).as_secs_f64() * 1e3;
        println!("lon -> {url} ({region}): {got:.2} ms, configured {want} ms");
        assert!(
            *got >= want * 0.9 && *got <= want * 1.2 + 3.0,
            "lon -> {region} measured {got} ms, configured {want} ms"
        );
    }

    let before = lon.move_count();
    lab.set_client_rtt("lon", "lon", Duration::from_millis(30));
    with_timeout(BETTER, lon.wait_region("ams", BETTER)).await;
    let moved = moves_since(&lon, before);
    assert_eq!(moved.len(), 1, "one move: {moved:?}");
    assert_eq!((moved[0].reason, moved[0].gap_ms), (MoveReason::Better, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_servers_send_the_client_to_lon_then_ams_and_it_comes_back() {
    let lab = lab().await;
    let lon = client(&lab, "lon-c1", "lon", &[]).await;

    let first = server_of(&lon);
    let before = lon.move_count();
    lab.kill("lon", lab.index(&first));
    let landed = with_timeout(MOVE, lon.wait_landed(before, MOVE)).await;
    println!("SIGKILL {first}: {landed:?}");
    let to = landed.to.clone().expect("landed");
    assert_eq!(to.region, "lon", "another lon server: {landed:?}");
    assert_ne!(to.name, first);
    assert_eq!(landed.reason, MoveReason::Lost);

    let before = lon.move_count();
    lab.kill_region("lon");
    let landed = with_timeout(MOVE, lon.wait_landed(before, MOVE)).await;
    println!("SIGKILL lon: {landed:?}");
    assert_eq!(landed.to.as_ref().map(|s| s.region.as_str()), Some("ams"));

    let before = lon.move_count();
    with_timeout(SETUP, lab.restart_region("lon")).await;
    with_timeout(MOVE, lon.wait_region("lon", MOVE)).await;
    let back = moves_since(&lon, before);
    println!("lon restarted: {back:?}");
    assert_eq!(back.len(), 1, "one move home: {back:?}");
    assert_eq!((back[0].reason, back[0].gap_ms), (MoveReason::Better, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_region_sends_the_client_to_ams_until_it_heals() {
    let lab = lab().await;
    let lon = client(&lab, "lon-c1", "lon", &[]).await;

    let before = lon.move_count();
    lab.partition("lon");
    let landed = with_timeout(MOVE, lon.wait_landed(before, MOVE)).await;
    println!(
        "lon partitioned: reason {:?}, gap {} ms, to {:?}",
        landed.reason, landed.gap_ms, landed.to
    );
    assert_eq!(landed.to.as_ref().map(|s| s.region.as_str()), Some("ams"));
    assert!(
        matches!(landed.reason, MoveReason::Unresponsive | MoveReason::Lost),
        "{landed:?}"
    );
    assert!(
        landed.gap_ms > 0,
        "a partition cannot be make-before-break: {landed:?}"
    );
    assert!(landed.gap_ms < 3_000, "{landed:?}");

    let before = lon.move_count();
    lab.heal("lon");
    with_timeout(MOVE, lon.wait_region("lon", MOVE)).await;
    let back = moves_since(&lon, before);
    println!("lon healed: {back:?}");
    assert_eq!(back.last().map(|m| m.reason), Some(MoveReason::Better));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_server_sends_the_client_to_another_lon_server() {
    let lab = lab().await;
    let lon = client(&lab, "lon-c1", "lon", &[]).await;

    let first = server_of(&lon);
    let before = lon.move_count();
    lab.pause("lon", lab.index(&first));
    let landed = with_timeout(MOVE, lon.wait_landed(before, MOVE)).await;
    println!("SIGSTOP {first}: {landed:?}");
    let to = landed.to.clone().expect("landed");
    assert_eq!(to.region, "lon", "another lon server: {landed:?}");
    assert_ne!(to.name, first);
    assert_eq!(landed.reason, MoveReason::Unresponsive);
    lab.resume("lon", lab.index(&first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lame_duck_moves_without_a_gap_or_a_lost_message() {
    let lab = lab().await;
    let lon = client(&lab, "lon-c1", "lon", &["--rate", "20"]).await;
    let ams = client(&lab, "ams-c1", "ams", &["--rate", "20"]).await;
    // Both hear each other before the drain.
    let heard = |c: &ClientProc| c.traffic().is_some_and(|t| t.received > 40);
    wait_for("both clients to hear traffic", MOVE, || {
        let ready = heard(&lon) && heard(&ams);
        async move { ready.then_some(()) }
    })
    .await;
    let lon_before = with_timeout(MOVE, lon.fresh_status(MOVE)).await.traffic;
    let ams_before = with_timeout(MOVE, ams.fresh_status(MOVE)).await.traffic;

    let first = server_of(&lon);
    let before = lon.move_count();
    lab.lame_duck("lon", lab.index(&first));
    let landed = with_timeout(MOVE, lon.wait_landed(before, MOVE)).await;
    println!("SIGUSR2 {first}: {landed:?}");
    assert_eq!(landed.reason, MoveReason::LameDuck);
    assert_eq!(landed.gap_ms, 0, "make-before-break: {landed:?}");
    assert_eq!(landed.to.as_ref().map(|s| s.region.as_str()), Some("lon"));

    // Two seconds of traffic after the move, then compare.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lon_after = with_timeout(MOVE, lon.fresh_status(MOVE)).await.traffic;
    let ams_after = with_timeout(MOVE, ams.fresh_status(MOVE)).await.traffic;
    println!("lon: {lon_before:?} -> {lon_after:?}");
    println!("ams: {ams_before:?} -> {ams_after:?}");
    assert!(
        lon_after.received > lon_before.received + 40,
        "lon keeps hearing"
    );
    assert!(
        ams_after.received > ams_before.received + 40,
        "ams keeps hearing"
    );
    assert_eq!(lon_after.lost, lon_before.lost, "lon lost messages");
    assert_eq!(ams_after.lost, ams_before.lost, "ams lost messages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_equal_regions_do_not_make_the_client_flap() {
    let lab = lab().await;
    // lon as far as ams (8 ms), both with some jitter.
    let jittery =
        LinkConfig::symmetric(Duration::from_millis(8)).with_jitter(Duration::from_micros(500));
    lab.set_client_link("lon", "lon", jittery);
    lab.set_client_link("lon", "ams", jittery);
    let spec = ClientSpec::new("lon-c1", "lon").args(FLAGS);
    let lon = lab.spawn_client(spec).expect("spawn the client");
    let first = wait_for("the client to elect a server", ELECT, || {
        let current = lon.current();
        async move { current }
    })
    .await;
    println!("elected {first:?}");

    tokio::time::sleep(Duration::from_secs(8)).await;
    let moves = lon.moves();
    println!("moves: {moves:?}");
    let switches = moves
        .iter()
        .filter(|m| m.reason != MoveReason::Initial)
        .count();
    assert!(switches <= 1, "the client flapped: {moves:?}");
    let status = with_timeout(MOVE, lon.fresh_status(MOVE)).await;
    assert!(status.switches <= 1, "{status:?}");
}

/// The latest status of each of `ids` from one process's records.
fn latest(client: &ClientProc, ids: &[String]) -> Vec<Option<geolb_proto::client::ClientStatus>> {
    let statuses = client.statuses();
    ids.iter()
        .map(|id| statuses.iter().rev().find(|s| &s.client == id).cloned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_in_one_process_elect_probe_and_fail_over_each_on_its_own() {
    let lab = lab().await;
    let spec = ClientSpec::new("many", "ams")
        .args(FLAGS)
        .args(["--count", "6"]);
    let client = lab.spawn_client(spec).expect("spawn the clients");
    let ids: Vec<String> = (0..6).map(|i| format!("many-{i}")).collect();
    let at_home = |region: &'static str| {
        let ids = ids.clone();
        let client = &client;
        move || {
            let all = latest(client, &ids);
            let done = all.iter().all(|s| {
                s.as_ref()
                    .and_then(|s| s.server.as_ref())
                    .is_some_and(|server| server.region == region)
            });
            async move { done.then_some(all) }
        }
    };
    let all = wait_for("all six clients on ams", ELECT, at_home("ams")).await;
    let candidates = lab.servers_for("ams").len();
    for status in all.into_iter().flatten() {
        assert_eq!(status.process_clients, Some(6), "{status:?}");
        assert_eq!(status.candidates.len(), candidates, "{status:?}");
    }
    // Elected: its server at 5 PINGs a second, the others at 0.5, where all
    // at 5 would be 5 x candidates.
    let most = 5.0 + (candidates - 1) as f64 * 0.5;
    // The rate spans 10 to 20 s: once the election's burst (every
    // candidate at 5) has left it, about 21 s after the start.
    let rates = wait_for("a probe rate from every client", RATES, || {
        let all = latest(&client, &ids);
        let rates: Option<Vec<f64>> = all.iter().map(|s| s.as_ref()?.probe_rate).collect();
        let settled = rates.filter(|r| r.iter().all(|&r| r > 0.0 && r <= most * 1.1));
        async move { settled }
    })
    .await;
    println!(
        "probe rates: {rates:?} (at most {most}; {} with every candidate at 5)",
        5 * candidates
    );

    let moves: Vec<usize> = ids
        .iter()
        .map(|id| client.moves().iter().filter(|m| &m.client == id).count())
        .collect();
    lab.kill_region("ams");
    wait_for("all six clients on lon", MOVE, at_home("lon")).await;
    for (id, before) in ids.iter().zip(moves) {
        let after: Vec<ClientMove> = client
            .moves()
            .into_iter()
            .filter(|m| &m.client == id)
            .skip(before)
            .collect();
        let landed = after.iter().find(|m| m.to.is_some()).expect("it moved");
        assert_eq!(landed.to.as_ref().unwrap().region, "lon", "{id}: {after:?}");
    }
}

/// The connections named `name` on each server of `region`: (server, cid, subscriptions).
fn connections_named(lab: &GeoLab, region: &str, name: &str) -> Vec<(String, u64, u64)> {
    let monitors: Vec<(String, String)> = (lab.lock().region(region).servers().iter())
        .map(|s| (s.name().to_string(), s.monitor_url()))
        .collect();
    let mut found = Vec::new();
    for (server, url) in monitors {
        let Ok(connz) = geolb_tests::http::get_json(&format!("{url}/connz?subs=1")) else {
            continue;
        };
        for c in connz["connections"].as_array().into_iter().flatten() {
            if c["name"] == name {
                let cid = c["cid"].as_u64().unwrap_or_default();
                found.push((
                    server.clone(),
                    cid,
                    c["subscriptions"].as_u64().unwrap_or(0),
                ));
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_outage_promotes_the_standby_in_the_next_region() {
    let lab = lab().await;
    let lon = client(&lab, "lon-c1", "lon", &[]).await;

    // At home, the client also holds one ams connection, with no subscription.
    let standby = wait_for("the client's standby connection in ams", MOVE, || {
        let found = connections_named(&lab, "ams", "lon-c1");
        std::future::ready((found.len() == 1 && found[0].2 == 0).then(|| found[0].clone()))
    })
    .await;
    println!("standby: {standby:?}");

    let before = lon.move_count();
    lab.kill_region("lon");
    let landed = with_timeout(MOVE, lon.wait_landed(before, MOVE)).await;
    println!("SIGKILL lon: {landed:?}");
    let to = landed.to.clone().expect("landed");
    assert_eq!(
        (to.region.as_str(), to.name.as_str()),
        ("ams", standby.0.as_str())
    );
    // A SUB on an open connection: the gap may round to 0 ms.
    assert_eq!(landed.reason, MoveReason::Lost, "{landed:?}");

    // The same connection now carries the subscriptions: no new one was opened.
    let promoted = wait_for("the standby's subscriptions", MOVE, || {
        let found = connections_named(&lab, "ams", "lon-c1");
        let subscribed = found.iter().any(|c| c.1 == standby.1 && c.2 > 0);
        std::future::ready(subscribed.then_some(found))
    })
    .await;
    assert!(
        promoted
            .iter()
            .all(|c| c.1 == standby.1 || c.0 != standby.0),
        "one connection on {}: {promoted:?}",
        standby.0
    );
}
