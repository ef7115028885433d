//! Malformed and truncated packets over UDP and TCP are answered FORMERR
//! or dropped, and the GeoDNS keeps answering.

mod common;

use common::{code, query, tcp, udp, Fixture, NAME};
use geolb_proto::routing::dns::DnsPolicy;
use hickory_server::proto::op::ResponseCode;
use hickory_server::proto::rr::RecordType;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn bad_packets_never_stop_the_server() {
    let f = Fixture::start(DnsPolicy::NearestOnly, 30).await;
    let lon = f.resolver("lon");
    let good = query(NAME, RecordType::A);
    let mut response = good.clone();
    response[2] |= 0x80; // QR: a response, which a server must not answer
    let mut two_queries = good.clone();
    two_queries[5] = 2; // QDCOUNT 2 with one question present
    let mut many = good.clone();
    many[5] = 0; // QDCOUNT 0
    let mut update = good.clone();
    update[2] = (update[2] & 0x87) | (5 << 3); // opcode UPDATE
    let cases: Vec<(&str, Vec<u8>, Option<ResponseCode>)> = vec![
        ("empty", vec![], None),
        ("one byte", vec![0], None),
        (
            "header only, one question promised",
            good[..12].to_vec(),
            Some(ResponseCode::FormErr),
        ),
        (
            "question cut in its name",
            good[..16].to_vec(),
            Some(ResponseCode::FormErr),
        ),
        (
            "question without its class",
            good[..good.len() - 2].to_vec(),
            Some(ResponseCode::FormErr),
        ),
        ("a response", response, None),
        (
            "two questions promised",
            two_queries,
            Some(ResponseCode::FormErr),
        ),
        ("no question", many, Some(ResponseCode::FormErr)),
        ("an update", update, Some(ResponseCode::NotImp)),
        (
            "noise",
            (0..300).map(|i| (i * 37 % 251) as u8).collect(),
            None,
        ),
    ];
    for (what, bytes, want) in &cases {
        let answer = udp(lon, bytes).await;
        match (want, &answer) {
            (Some(want), Some(a)) => assert_eq!(code(a), *want, "{what}"),
            (Some(_), None) => panic!("{what}: no answer"),
            (None, Some(a)) => assert_ne!(code(a), ResponseCode::NoError, "{what}: {a:?}"),
            (None, None) => {}
        }
        assert!(
            udp(lon, &good).await.is_some(),
            "{what}: the server stopped answering UDP"
        );
    }
    // TCP: a length prefix promising more than is sent, then a close; a
    // zero length; garbage after a good query on the same connection.
    for bytes in [
        vec![0u8, 200, 1, 2, 3],
        vec![0, 0],
        [&[0u8, good.len() as u8][..], &good, &[9, 9, 9]].concat(),
    ] {
        let mut stream = tokio::net::TcpStream::connect(lon).await.unwrap();
        stream.write_all(&bytes).await.unwrap();
        drop(stream);
        assert!(
            tcp(lon, &good).await.is_some(),
            "the server stopped answering TCP after {bytes:?}"
        );
    }
    assert!(udp(lon, &good).await.is_some());
}
