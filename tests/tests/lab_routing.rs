//! The lab's GeoDNS and anycast router end to end: the default lab comes up
//! with both, `lab status --json` gives their listeners and vantages, real
//! DNS queries are answered per region, and a region killed with `geolb cmd
//! stop region=lon --mode kill` makes the GeoDNS mark lon down and answer
//! lon's resolvers with ams, and the router withdraw lon and schedule each
//! vantage's flip, all read from their changes on the control plane (which
//! also proves the least-privilege layout lets them publish).

use futures::StreamExt;
use geolb::lab::state::LabState;
use geolb_proto::routing::{RoutingChange, RoutingEvent, CHANGES_ALL};
use geolb_tests::lab_dir::{stderr, LabDir};
use geolb_tests::ports::LAB_PORTS;
use hickory_server::proto::op::{Message, MessageType, OpCode, Query};
use hickory_server::proto::rr::{Name, RData, RecordType};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// The default lab (3 regions, 3 servers each), quick GeoDNS checks, two
/// rtt clients a region, no dns or anycast clients (their strategies live
/// in the client).
fn config(ports_base: u16) -> String {
    format!(
        r#"ports_base = {ports_base}
[clients]
rtt = 2
random = 0
dns = 0
anycast = 0
[dns]
interval = "1s"
ttl = "5s"
"#
    )
}

/// The A records `resolver` answers for `name`.
async fn resolve(resolver: SocketAddr, name: &str) -> Vec<Ipv4Addr> {
    let mut query = Message::new(fastrand::u16(..), MessageType::Query, OpCode::Query);
    query.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket
        .send_to(&query.to_vec().unwrap(), resolver)
        .await
        .unwrap();
    let mut buf = [0u8; 2048];
    let n = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf))
        .await
        .expect("the GeoDNS answers")
        .unwrap();
    let answer = Message::from_vec(&buf[..n]).unwrap();
    assert!(
        answer.answers.iter().all(|r| r.ttl == 5),
        "TTL 5 s: {answer:?}"
    );
    answer
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_region_is_marked_down_by_the_geodns_and_withdrawn_by_the_router() {
    let lab = LabDir::new("routing");
    let config = lab.config(&config(LAB_PORTS.start + 300));
    let up = lab.geolb(&["lab", "up", "--config", &config]);
    assert!(up.status.success(), "lab up: {}", stderr(&up));

    let status = lab.json(&["lab", "status", "--json"]);
    let dns = &status["dns"];
    assert_eq!(dns["name"], "nats.geolb.lab");
    let listeners = dns["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 3);
    let resolver = |region: &str| -> SocketAddr {
        let l = listeners.iter().find(|l| l["region"] == region).unwrap();
        l["listen"].as_str().unwrap().parse().unwrap()
    };
    let vantages = status["anycast"]["vantages"].as_array().unwrap();
    assert_eq!(vantages.len(), 3);
    assert_eq!(vantages[0]["id"], "lon-anycast");
    let identities = status["identities"].as_array().unwrap();
    for name in ["dns-dns", "anycast-anycast"] {
        assert!(
            identities.iter().any(|i| i["name"] == name),
            "identity {name}"
        );
    }
    // lon's resolvers are given lon's servers, each through its own link.
    let lon_servers: Vec<Ipv4Addr> = (0..3).map(|s| Ipv4Addr::new(127, 20, s, 1)).collect();
    assert_eq!(
        resolve(resolver("lon"), "nats.geolb.lab").await,
        lon_servers
    );
    let dfw = resolve(resolver("dfw"), "nats.geolb.lab").await;
    assert_eq!(
        dfw,
        (6..9)
            .map(|s| Ipv4Addr::new(127, 22, s, 1))
            .collect::<Vec<_>>()
    );

    // Follow both components' changes as the coordinator.
    let state = LabState::load(&lab.0.join("lab")).unwrap().unwrap();
    let control = geolb::lab::up::connect(&state).await.unwrap();
    let mut changes = control.client().subscribe(CHANGES_ALL).await.unwrap();
    control.client().flush().await.unwrap();

    let coordinator = state
        .identity("coordinator")
        .unwrap()
        .seed_path
        .display()
        .to_string();
    let signing = state
        .identity("signing")
        .unwrap()
        .seed_path
        .display()
        .to_string();
    let stop = lab.geolb(&[
        "--control",
        &state.control_url,
        "--nkey-file",
        &coordinator,
        "--signing-key",
        &signing,
        "cmd",
        "stop",
        "region=lon",
        "--mode",
        "kill",
    ]);
    assert!(stop.status.success(), "stop: {}", stderr(&stop));

    let mut dns_down = std::collections::BTreeSet::new();
    let (mut answered, mut withdrawn, mut scheduled) = (false, false, false);
    let watch = async {
        while let Some(message) = changes.next().await {
            let event: RoutingEvent = serde_json::from_slice(&message.payload).unwrap();
            assert!(message
                .subject
                .starts_with(&format!("geolb.routing.{}.", event.source)));
            match (event.source.as_str(), &event.change) {
                (
                    "dns",
                    RoutingChange::Health {
                        server,
                        healthy: false,
                        ..
                    },
                ) => {
                    dns_down.insert(server.clone());
                }
                (
                    "dns",
                    RoutingChange::Answers {
                        region, servers, ..
                    },
                ) if region == "lon" => {
                    answered = servers.iter().all(|s| s.starts_with("ams-")) && !servers.is_empty();
                }
                ("anycast", RoutingChange::Withdrawn { region, reason }) if region == "lon" => {
                    assert_eq!(reason, "health");
                    withdrawn = true;
                }
                ("anycast", RoutingChange::FlipScheduled { vantage, to, .. })
                    if vantage == "lon-anycast" =>
                {
                    assert_eq!(to, "ams");
                    scheduled = true;
                }
                _ => {}
            }
            if dns_down.len() == 3 && answered && withdrawn && scheduled {
                return;
            }
        }
    };
    // Route 53-style checks at 1 s x 3; the router's at 5 s, then 1 s x 2.
    tokio::time::timeout(Duration::from_secs(30), watch)
        .await
        .unwrap_or_else(|_| panic!("dns down {dns_down:?}, answered {answered}, withdrawn {withdrawn}, flip {scheduled}"));
    let ams_servers: Vec<Ipv4Addr> = (3..6).map(|s| Ipv4Addr::new(127, 20, s, 1)).collect();
    assert_eq!(
        resolve(resolver("lon"), "nats.geolb.lab").await,
        ams_servers
    );

    // Their state on request, as a scenario reads it.
    let ask = |subject: String| {
        let client = control.client();
        let id = control.next_command_id();
        async move {
            let command = geolb_proto::Command::new(id, &geolb_proto::Request::Status);
            let reply = client
                .request(subject, command.encode().into())
                .await
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&reply.payload).unwrap()
        }
    };
    let dns_state = ask(geolb_proto::routing::dns::subject("dns", "state")).await;
    assert_eq!(dns_state["ok"], true, "{dns_state}");
    let down: Vec<&str> = dns_state["state"]["servers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["healthy"] == false)
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(down, ["lon-1", "lon-2", "lon-3"]);
    let router = ask(geolb_proto::routing::anycast::subject("anycast", "state")).await;
    let lon = &router["state"]["sites"][0];
    assert_eq!(
        (lon["region"].as_str(), lon["announced"].as_bool()),
        (Some("lon"), Some(false)),
        "{router}"
    );

    let down = lab.geolb(&["lab", "down"]);
    assert!(down.status.success(), "lab down: {}", stderr(&down));
}
