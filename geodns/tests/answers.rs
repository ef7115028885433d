//! Real DNS queries over UDP and TCP: answers per region and policy, the
//! TTL, the TXT version, SOA and NS, NXDOMAIN inside the zone and REFUSED
//! outside.

mod common;

use common::{addrs, answer_ip, code, query, tcp, udp, Fixture, NAME};
use geolb_proto::routing::dns::DnsPolicy;
use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::{RData, RecordType};

#[tokio::test]
async fn nearest_only_answers_each_region_with_its_own_servers() {
    let f = Fixture::start(DnsPolicy::NearestOnly, 30).await;
    // Servers: lon-1 (0), lon-2 (1), ams-1 (2), dfw-1 (3); regions lon 0, ams 1, dfw 2.
    let cases = [
        ("lon", vec![answer_ip(0, 0), answer_ip(0, 1)]),
        ("ams", vec![answer_ip(1, 2)]),
        ("dfw", vec![answer_ip(2, 3)]),
    ];
    for (region, want) in cases {
        for (proto, answer) in [
            (
                "udp",
                udp(f.resolver(region), &query(NAME, RecordType::A)).await,
            ),
            (
                "tcp",
                tcp(f.resolver(region), &query(NAME, RecordType::A)).await,
            ),
        ] {
            let answer = answer.unwrap_or_else(|| panic!("{region} {proto}: no answer"));
            assert_eq!(code(&answer), ResponseCode::NoError, "{region} {proto}");
            assert!(
                answer.metadata.authoritative,
                "{region} {proto}: authoritative"
            );
            assert_eq!(addrs(&answer), want, "{region} {proto}");
            assert!(
                answer.answers.iter().all(|r| r.ttl == 30),
                "{region} {proto}: TTL 30"
            );
        }
    }
    let state = f.dns.state();
    assert_eq!(state.serial, 1);
    assert_eq!(state.answers[0].servers, ["lon-1", "lon-2"]);
    assert!(state.queries >= 6, "{}", state.queries);
}

#[tokio::test]
async fn nearest_first_lists_every_server_nearest_region_first() {
    let f = Fixture::start(DnsPolicy::NearestFirst, 5).await;
    assert_eq!(
        f.a("dfw").await,
        [
            answer_ip(2, 3),
            answer_ip(2, 0),
            answer_ip(2, 1),
            answer_ip(2, 2)
        ],
        "dfw: dfw, then lon (105 ms), then ams (115 ms)"
    );
    assert_eq!(
        f.a("ams").await,
        [
            answer_ip(1, 2),
            answer_ip(1, 0),
            answer_ip(1, 1),
            answer_ip(1, 3)
        ]
    );
    let answer = udp(f.resolver("ams"), &query(NAME, RecordType::A))
        .await
        .unwrap();
    assert!(answer.answers.iter().all(|r| r.ttl == 5), "TTL 5");
}

#[tokio::test]
async fn the_zone_is_authoritative_with_a_version() {
    let f = Fixture::start(DnsPolicy::NearestOnly, 30).await;
    let lon = f.resolver("lon");
    assert_eq!(f.version("lon").await, "geolb-version=1");
    let soa = udp(lon, &query("geolb.test", RecordType::SOA))
        .await
        .unwrap();
    match soa.answers.first().map(|r| &r.data) {
        Some(RData::SOA(soa)) => {
            assert_eq!(soa.serial, 1);
            assert_eq!(soa.mname.to_ascii(), "ns.geolb.test.");
        }
        other => panic!("no SOA: {other:?}"),
    }
    let ns = tcp(lon, &query("geolb.test", RecordType::NS))
        .await
        .unwrap();
    assert!(
        matches!(ns.answers.first().map(|r| &r.data), Some(RData::NS(_))),
        "{ns:?}"
    );
    let glue = udp(lon, &query("ns.geolb.test", RecordType::A))
        .await
        .unwrap();
    assert_eq!(
        addrs(&glue),
        ["127.0.0.1".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    // NODATA: the name exists, no AAAA; the SOA says how long to cache that.
    let aaaa = udp(lon, &query(NAME, RecordType::AAAA)).await.unwrap();
    assert_eq!(
        (code(&aaaa), aaaa.answers.len()),
        (ResponseCode::NoError, 0)
    );
    assert!(
        matches!(
            aaaa.authorities.first().map(|r| &r.data),
            Some(RData::SOA(_))
        ),
        "{aaaa:?}"
    );
    let missing = udp(lon, &query("other.geolb.test", RecordType::A))
        .await
        .unwrap();
    assert_eq!(code(&missing), ResponseCode::NXDomain);
    let outside = udp(lon, &query("example.com", RecordType::A))
        .await
        .unwrap();
    assert_eq!(code(&outside), ResponseCode::Refused);
    let upper = udp(lon, &query("NATS.GeoLB.Test", RecordType::A))
        .await
        .unwrap();
    assert_eq!(addrs(&upper).len(), 2, "names are case-insensitive");
}
