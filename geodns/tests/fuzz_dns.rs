//! Property-based fuzzing of the GeoDNS's request handling over real UDP
//! and TCP (`make fuzz` runs `PROPTEST_CASES` cases a UDP property and a hundredth
//! of them over TCP; `cargo test` 256 and 32):
//! arbitrary bytes and mutated valid queries are answered with a
//! well-formed message or dropped, and a valid query sent right after is
//! always answered.

use geolb_geodns::GeoDns;
use geolb_proto::routing::dns::{DnsConfig, DnsListener, DnsServer};
use hickory_server::proto::op::{Message, MessageType, OpCode, Query};
use hickory_server::proto::rr::{Name, RecordType};
use proptest::prelude::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::sync::OnceLock;
use std::time::Duration;

/// One GeoDNS for the whole run, on a runtime thread of its own.
fn server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let config: DnsConfig = DnsConfig {
                    name: "nats.geolb.test".into(),
                    ttl_s: 30,
                    policy: Default::default(),
                    health: Default::default(),
                    listeners: vec![DnsListener {
                        region: "lon".into(),
                        listen: "127.0.0.1:0".into(),
                    }],
                    servers: vec![DnsServer {
                        id: "lon-1".into(),
                        region: "lon".into(),
                        answers: [("lon".to_string(), "127.20.0.1".parse().unwrap())].into(),
                        checks: vec!["127.0.0.1:1".into()],
                    }],
                    rtt_ms: Default::default(),
                };
                let dns = GeoDns::start(config).await.unwrap();
                tx.send(dns.listener("lon").unwrap()).unwrap();
                std::future::pending::<()>().await;
            });
        });
        rx.recv().unwrap()
    })
}

fn good(id: u16) -> Vec<u8> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.add_query(Query::query(
        Name::from_ascii("nats.geolb.test.").unwrap(),
        RecordType::A,
    ));
    message.to_vec().unwrap()
}

/// Sends `bytes`, then a valid query; every datagram back parses, and the
/// valid query is answered.
fn survives_udp(bytes: &[u8]) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket.send_to(bytes, server()).unwrap();
    let id = 0xbeef;
    socket.send_to(&good(id), server()).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket
            .recv(&mut buf)
            .expect("the GeoDNS answers a valid query after a bad one");
        let message = Message::from_vec(&buf[..n]).expect("every answer is a well-formed message");
        if message.metadata.id == id
            && message.metadata.message_type == MessageType::Response
            && !message.answers.is_empty()
        {
            return;
        }
    }
}

/// Sends `bytes` length-prefixed over TCP and closes; a new connection's
/// valid query is answered.
fn survives_tcp(bytes: &[u8]) {
    let mut stream = std::net::TcpStream::connect(server()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let _ = stream.write_all(&(bytes.len() as u16).to_be_bytes());
    let _ = stream.write_all(bytes);
    let mut len = [0u8; 2];
    if stream.read_exact(&mut len).is_ok() {
        let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
        stream.read_exact(&mut body).expect("a whole answer");
        Message::from_vec(&body).expect("every answer is a well-formed message");
    }
    drop(stream);
    let mut stream = std::net::TcpStream::connect(server()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let query = good(7);
    stream
        .write_all(&(query.len() as u16).to_be_bytes())
        .unwrap();
    stream.write_all(&query).unwrap();
    stream
        .read_exact(&mut len)
        .expect("the GeoDNS answers TCP after a bad connection");
}

/// A valid query with `flips` bytes replaced and cut to `keep` bytes.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u16>(),
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        any::<usize>(),
    )
        .prop_map(|(id, flips, keep)| {
            let mut bytes = good(id);
            for (at, value) in flips {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            bytes.truncate(keep % (bytes.len() + 1));
            bytes
        })
}

proptest! {
    #[test]
    fn arbitrary_datagrams(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        survives_udp(&bytes);
    }

    #[test]
    fn mutated_queries(bytes in mutated()) {
        survives_udp(&bytes);
    }
}

proptest! {
    // Two connections a case: a hundredth of the cases keeps clear of
    // running out of ephemeral ports (TIME_WAIT) in `make fuzz`.
    #![proptest_config(ProptestConfig::with_cases((ProptestConfig::default().cases / 100).max(32)))]

    #[test]
    fn tcp_streams(bytes in prop_oneof![mutated(), proptest::collection::vec(any::<u8>(), 0..300)]) {
        survives_tcp(&bytes);
    }
}
