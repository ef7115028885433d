//! The GeoDNS tests' fixture: real nats-servers (lon-1, lon-2, ams-1,
//! dfw-1), an emulator link from every region to every server (the
//! addresses the answers carry and the checker probes through, as in the
//! lab), a GeoDNS on loopback, and DNS queries over UDP and TCP.

#![allow(dead_code)]

use geolb_geodns::GeoDns;
use geolb_proto::routing::dns::{DnsConfig, DnsListener, DnsPolicy, DnsServer};
use geolb_proto::routing::{HealthCheck, RttMatrix};
use geolb_proto::WireDuration;
use geolb_tests::{default_version, NatsServer, ServerConfig};
use geolb_wan::{Emulator, LinkConfig};
use hickory_server::proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_server::proto::rr::{Name, RData, RecordType};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The name the fixture's GeoDNS answers.
pub const NAME: &str = "nats.geolb.test";
/// The regions, in order.
pub const REGIONS: [&str; 3] = ["lon", "ams", "dfw"];

/// Servers, links and a GeoDNS.
pub struct Fixture {
    /// The nats-servers by id, in order.
    pub servers: Vec<(String, NatsServer)>,
    /// The links `dns:<region>-><server>`.
    pub wan: Emulator,
    /// The GeoDNS.
    pub dns: GeoDns,
    /// Its configuration.
    pub config: DnsConfig,
}

/// The lab's round trips.
pub fn rtt() -> RttMatrix {
    serde_json::from_str(
        r#"{"lon":{"ams":8,"dfw":105},"ams":{"lon":8,"dfw":115},"dfw":{"lon":105,"ams":115}}"#,
    )
    .unwrap()
}

/// Quick health checks for tests: every 100 ms, 2 failures down, 2 passes up.
pub fn quick() -> HealthCheck {
    HealthCheck {
        interval: WireDuration::from_millis(100),
        fast_interval: WireDuration::default(),
        threshold: 2,
        recovery: 2,
        timeout: WireDuration::from_millis(500),
    }
}

/// The address region `r` (index) is given for server `s` (index): 127.(20+r).s.1.
pub fn answer_ip(r: usize, s: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 20 + r as u8, s as u8, 1)
}

impl Fixture {
    /// Starts everything with `policy` and a TTL of `ttl_s`.
    pub async fn start(policy: DnsPolicy, ttl_s: u32) -> Fixture {
        let ids = ["lon-1", "lon-2", "ams-1", "dfw-1"];
        let servers: Vec<(String, NatsServer)> = ids
            .iter()
            .map(|id| {
                let server =
                    NatsServer::start(default_version(), ServerConfig::default().server_name(*id));
                (id.to_string(), server)
            })
            .collect();
        let wan = Emulator::new();
        // One common port for every answer address, as A records carry none.
        let port = geolb_tests::free_port();
        let mut specs = Vec::new();
        for (s, (id, server)) in servers.iter().enumerate() {
            let region = id.split('-').next().unwrap().to_string();
            let mut answers = BTreeMap::new();
            let mut checks = Vec::new();
            for (r, from) in REGIONS.iter().enumerate() {
                let ip = answer_ip(r, s);
                let listen = SocketAddr::from((ip, port));
                let target = format!("127.0.0.1:{}", server.client_port());
                wan.add(
                    &format!("dns:{from}->{id}"),
                    listen,
                    target,
                    LinkConfig::default(),
                )
                .await
                .unwrap_or_else(|e| panic!("bind {listen}: {e}"));
                answers.insert(from.to_string(), ip);
                checks.push(listen.to_string());
            }
            specs.push(DnsServer {
                id: id.clone(),
                region,
                answers,
                checks,
            });
        }
        let config = DnsConfig {
            name: NAME.into(),
            ttl_s,
            policy,
            health: quick(),
            listeners: REGIONS
                .iter()
                .map(|r| DnsListener {
                    region: r.to_string(),
                    listen: "127.0.0.1:0".into(),
                })
                .collect(),
            servers: specs,
            rtt_ms: rtt(),
        };
        let dns = GeoDns::start(config.clone())
            .await
            .expect("the GeoDNS starts");
        Fixture {
            servers,
            wan,
            dns,
            config,
        }
    }

    /// The listener of `region`.
    pub fn resolver(&self, region: &str) -> SocketAddr {
        self.dns.listener(region).expect("a listener per region")
    }

    /// The server with id `id`.
    pub fn server(&mut self, id: &str) -> &mut NatsServer {
        &mut self
            .servers
            .iter_mut()
            .find(|(i, _)| i == id)
            .expect("a server of the fixture")
            .1
    }

    /// Cuts (or heals) every link to server `id`, as a partition of its region does.
    pub fn cut(&self, id: &str, cut: bool) {
        let state = match cut {
            true => geolb_wan::LinkState::Cut,
            false => geolb_wan::LinkState::Up,
        };
        let n = self.wan.set_where(
            |n| n.ends_with(&format!("->{id}")),
            LinkConfig::default().with_state(state),
        );
        assert_eq!(n, REGIONS.len());
    }

    /// The A records (in order) region `region`'s resolver gets.
    pub async fn a(&self, region: &str) -> Vec<Ipv4Addr> {
        let answer = udp(self.resolver(region), &query(NAME, RecordType::A))
            .await
            .expect("an answer");
        addrs(&answer)
    }

    /// The version the TXT record of `region`'s resolver carries.
    pub async fn version(&self, region: &str) -> String {
        let answer = udp(self.resolver(region), &query(NAME, RecordType::TXT))
            .await
            .expect("an answer");
        match answer.answers.first().map(|r| &r.data) {
            Some(RData::TXT(txt)) => txt.to_string(),
            other => panic!("no TXT answer: {other:?}"),
        }
    }
}

/// A query for `name`/`kind` with a random id, as bytes.
pub fn query(name: &str, kind: RecordType) -> Vec<u8> {
    let mut message = Message::new(fastrand::u16(..), MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
    message.to_vec().unwrap()
}

/// Sends `bytes` over UDP to `server`; the answer, or None after 1 s.
pub async fn udp(server: SocketAddr, bytes: &[u8]) -> Option<Message> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(bytes, server).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some(Message::from_vec(&buf[..n]).expect("the GeoDNS answers well-formed messages"))
}

/// Sends `bytes` over TCP (length-prefixed) to `server`; the answer, or None after 1 s.
pub async fn tcp(server: SocketAddr, bytes: &[u8]) -> Option<Message> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(server).await.ok()?;
        stream
            .write_all(&(bytes.len() as u16).to_be_bytes())
            .await
            .ok()?;
        stream.write_all(bytes).await.ok()?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await.ok()?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        stream.read_exact(&mut buf).await.ok()?;
        Some(Message::from_vec(&buf).expect("the GeoDNS answers well-formed messages"))
    };
    tokio::time::timeout(Duration::from_secs(1), exchange)
        .await
        .ok()?
}

/// The A records of an answer, in order.
pub fn addrs(message: &Message) -> Vec<Ipv4Addr> {
    message
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

/// The response code of an answer.
pub fn code(message: &Message) -> ResponseCode {
    message.metadata.response_code
}
