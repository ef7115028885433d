//! Group `strategies`, the routing part: what the lab's GeoDNS answers per
//! second over UDP on this machine (the `geolb-agent geodns` process, as
//! the lab runs it), beside two peers measured in the same run with the
//! same load: hickory-server answering one fixed record (the library's own
//! floor, without our policy, health table or version), and a UDP echo
//! (the loopback and syscall floor); and what the anycast router adds to a
//! connection (connect, INFO, PING/PONG) and to a round trip on an
//! established one, against dialling the server directly.

use super::report::Report;
use geolb_tests::tools::release_bin;
use geolb_tests::{free_port, ProcessGuard};
use hickory_server::proto::op::{Message, MessageType, OpCode, Query};
use hickory_server::proto::rr::{Name, RecordType};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// How long each load runs.
const LOAD: Duration = Duration::from_secs(3);
/// Sockets and queries in flight on each.
const SOCKETS: usize = 4;
const WINDOW: usize = 8;

fn query(id: u16) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii("nats.geolb.bench.").unwrap(),
        RecordType::A,
    ));
    m.to_vec().unwrap()
}

/// Answers a second from `server` under a closed-loop load.
fn qps(server: SocketAddr) -> f64 {
    let threads: Vec<_> = (0..SOCKETS)
        .map(|t| {
            std::thread::spawn(move || {
                let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                socket
                    .set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                let bytes = query(t as u16);
                for _ in 0..WINDOW {
                    let _ = socket.send_to(&bytes, server);
                }
                let (mut answered, mut buf) = (0u64, [0u8; 1500]);
                let end = Instant::now() + LOAD;
                while Instant::now() < end {
                    // An answer, or a loss (timeout): either way, send the next one.
                    if socket.recv(&mut buf).is_ok() {
                        answered += 1;
                    }
                    let _ = socket.send_to(&bytes, server);
                }
                answered
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
    total as f64 / LOAD.as_secs_f64()
}

/// A UDP echo on a thread of its own.
fn echo() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..n], from);
        }
    });
    addr
}

/// hickory-server answering every query with one fixed A record, on a
/// single-threaded runtime of its own (as the agent runs).
fn fixed_hickory() -> SocketAddr {
    use hickory_server::net::runtime::Time;
    use hickory_server::proto::op::Metadata;
    use hickory_server::proto::rr::rdata::A;
    use hickory_server::proto::rr::{RData, Record};
    use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo, Server};
    use hickory_server::zone_handler::MessageResponseBuilder;
    struct Fixed;
    #[async_trait::async_trait]
    impl RequestHandler for Fixed {
        async fn handle_request<R: ResponseHandler, T: Time>(
            &self,
            request: &Request,
            mut handle: R,
        ) -> ResponseInfo {
            let name = Name::from_ascii("nats.geolb.bench.").unwrap();
            let record = Record::from_rdata(name, 30, RData::A(A([127, 20, 0, 1].into())));
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.authoritative = true;
            let response = MessageResponseBuilder::new(&request.queries, None).build(
                metadata,
                [&record],
                [],
                [],
                [],
            );
            handle.send_response(response).await.unwrap_or_else(|_| {
                ResponseInfo::from(hickory_server::proto::op::Header {
                    metadata,
                    counts: Default::default(),
                })
            })
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            tx.send(udp.local_addr().unwrap()).unwrap();
            let mut server = Server::new(Fixed);
            server.register_socket(udp);
            let _ = server.block_until_done().await;
        });
    });
    rx.recv().unwrap()
}

/// The GeoDNS and the router as lab processes, over one nats-server.
pub async fn run(report: &mut Report) -> anyhow::Result<()> {
    let agent = release_bin("geolb-agent").map_err(anyhow::Error::msg)?;
    let server = geolb_tests::NatsServer::start(geolb_tests::default_version(), Default::default());
    let target = format!("127.0.0.1:{}", server.client_port());
    let dir = std::env::temp_dir().join(format!("geolb-bench-strategies-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (dns_port, vantage_port) = (free_port(), free_port());
    let dns = serde_json::json!({
        "name": "nats.geolb.bench", "ttl_s": 30,
        "listeners": [{"region": "lon", "listen": format!("127.0.0.1:{dns_port}")}],
        "servers": [{"id": "lon-1", "region": "lon", "answers": {"lon": "127.20.0.1"}, "checks": [target]}],
        "rtt_ms": {}
    });
    let anycast = serde_json::json!({
        "vantages": [{"id": "lon-v", "region": "lon", "listen": format!("127.0.0.1:{vantage_port}")}],
        "servers": [{"id": "lon-1", "region": "lon", "dial": {"lon": target}, "check": target}],
        "rtt_ms": {}
    });
    let mut guards = Vec::new();
    for (command, config) in [("geodns", dns), ("anycast", anycast)] {
        let file = dir.join(format!("{command}.json"));
        std::fs::write(&file, config.to_string())?;
        let mut cmd = std::process::Command::new(&agent);
        cmd.args([command, "--config", file.to_str().unwrap_or_default()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        guards.push(ProcessGuard::spawn(command, &mut cmd)?);
    }
    let geodns: SocketAddr = format!("127.0.0.1:{dns_port}").parse()?;
    let vantage: SocketAddr = format!("127.0.0.1:{vantage_port}").parse()?;
    geolb_tests::wait_for(
        "the GeoDNS and the router",
        Duration::from_secs(10),
        || async {
            let dns_up = UdpSocket::bind("127.0.0.1:0").ok().and_then(|s| {
                s.set_read_timeout(Some(Duration::from_millis(200))).ok()?;
                s.send_to(&query(1), geodns).ok()?;
                s.recv(&mut [0u8; 512]).ok()
            });
            let routed = tokio::net::TcpStream::connect(vantage).await.is_ok();
            (dns_up.is_some() && routed).then_some(())
        },
    )
    .await;

    let (ours, floor, echo_qps) =
        tokio::task::spawn_blocking(move || (qps(geodns), qps(fixed_hickory()), qps(echo())))
            .await?;
    let detail = format!(
        "{SOCKETS} sockets x {WINDOW} in flight, {LOAD:?}; same load: hickory-server with one fixed record {floor:.0}/s, UDP echo {echo_qps:.0}/s"
    );
    report.add_at_least("strategies_geodns_qps", ours, "queries/s", None, detail);
    report.add_at_least(
        "strategies_hickory_fixed_qps",
        floor,
        "queries/s",
        None,
        "the peer: hickory-server, one fixed A record, its own current-thread runtime",
    );

    let direct: SocketAddr = target.parse()?;
    let (setup_direct, rtt_direct) = connection_costs(direct).await?;
    let (setup_routed, rtt_routed) = connection_costs(vantage).await?;
    report.add(
        "strategies_anycast_setup_extra",
        (setup_routed - setup_direct) * 1000.0,
        "us",
        None,
        format!("median connect+INFO+PONG through a vantage {:.3} ms, direct {:.3} ms (200 connections each)", setup_routed, setup_direct),
    );
    report.add(
        "strategies_anycast_rtt_extra",
        (rtt_routed - rtt_direct) * 1000.0,
        "us",
        None,
        format!("median PING round trip on an established connection: through a vantage {:.3} ms, direct {:.3} ms", rtt_routed, rtt_direct),
    );
    drop(guards);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Median connection set-up (connect, INFO, CONNECT+PING, PONG) and median
/// PING round trip on one established connection, in ms.
async fn connection_costs(addr: SocketAddr) -> anyhow::Result<(f64, f64)> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    async fn pong(r: &mut BufReader<tokio::net::TcpStream>) -> anyhow::Result<()> {
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).await? == 0 {
                anyhow::bail!("closed");
            }
            if line == "PONG\r\n" {
                return Ok(());
            }
        }
    }
    let mut setups = Vec::new();
    let mut kept = None;
    for _ in 0..200 {
        let start = Instant::now();
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut r = BufReader::new(stream);
        let mut info = String::new();
        r.read_line(&mut info).await?;
        r.get_mut()
            .write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n")
            .await?;
        pong(&mut r).await?;
        setups.push(start.elapsed().as_secs_f64() * 1000.0);
        kept = Some(r);
    }
    let mut r = kept.ok_or_else(|| anyhow::anyhow!("no connection"))?;
    let mut rtts = Vec::new();
    for _ in 0..500 {
        let start = Instant::now();
        r.get_mut().write_all(b"PING\r\n").await?;
        pong(&mut r).await?;
        rtts.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    Ok((median(setups), median(rtts)))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
