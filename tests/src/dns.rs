//! `DnsServer`: a small authoritative DNS server for tests (hickory-server),
//! on UDP and TCP, answering A and AAAA queries from records the test sets
//! and changes while it runs, for every client or for one client address
//! (so two hosts can be shown different answers, as DNS that has not caught
//! up yet would).
//!
//! A name with records answers NOERROR (with no answer for a type it has
//! none of); any other name NXDOMAIN. It runs on a thread of its own with
//! its own runtime, so a test that blocks does not stall it, and stops on
//! `Drop`.
//!
//! ```no_run
//! use geolb_tests::dns::DnsServer;
//! let dns = DnsServer::start("127.0.0.1:0".parse().unwrap());
//! dns.set("ams.geolb.internal", &["fdaa::2".parse().unwrap()]);
//! ```

use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo, Server};
use hickory_server::zone_handler::MessageResponseBuilder;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The TTL of every answer unless [`DnsServer::set_ttl`] says otherwise (Fly's internal DNS: 5 s).
pub const DEFAULT_TTL: u32 = 5;

/// Records by lower-case name without the final dot.
type Zone = HashMap<String, Vec<IpAddr>>;

#[derive(Debug, Default)]
struct Records {
    all: Zone,
    by_client: HashMap<IpAddr, Zone>,
    ttl: Option<u32>,
    /// Queries answered, by client address.
    asked: HashMap<IpAddr, u64>,
}

impl Records {
    /// What `client` is told for `name`: its own records first, else everyone's.
    fn lookup(&self, client: IpAddr, name: &str) -> Option<&Vec<IpAddr>> {
        self.by_client
            .get(&client)
            .and_then(|zone| zone.get(name))
            .or_else(|| self.all.get(name))
    }
}

/// A DNS server on one address, UDP and TCP; stopped on `Drop`.
pub struct DnsServer {
    addr: SocketAddr,
    records: Arc<Mutex<Records>>,
    queries: Arc<AtomicU64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DnsServer {
    /// Serves on `bind` (UDP and TCP on the same port; port 0 picks one
    /// free for both). Panics with the reason when it cannot bind.
    pub fn start(bind: SocketAddr) -> DnsServer {
        let records = Arc::new(Mutex::new(Records::default()));
        let queries = Arc::new(AtomicU64::new(0));
        let handler = Handler {
            records: records.clone(),
            queries: queries.clone(),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (bound, bound_rx) = std::sync::mpsc::channel::<Result<SocketAddr, String>>();
        let thread = std::thread::Builder::new()
            .name("test-dns".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => return drop(bound.send(Err(e.to_string()))),
                };
                runtime.block_on(async move {
                    let (udp, tcp) = match bind_both(bind).await {
                        Ok(sockets) => sockets,
                        Err(e) => return drop(bound.send(Err(e))),
                    };
                    let addr = udp.local_addr().map_err(|e| e.to_string());
                    let mut server = Server::new(handler);
                    server.register_socket(udp);
                    server.register_listener(tcp, Duration::from_secs(5), 64);
                    let _ = bound.send(addr);
                    let _ = stopped.await;
                    let _ = server.shutdown_gracefully().await;
                });
            })
            .expect("spawn the DNS server thread");
        let addr = match bound_rx.recv() {
            Ok(Ok(addr)) => addr,
            Ok(Err(e)) => panic!("the test DNS server cannot serve on {bind}: {e}"),
            Err(_) => panic!("the test DNS server thread ended before binding {bind}"),
        };
        DnsServer {
            addr,
            records,
            queries,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Where it answers.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `name` resolves to `addrs` for every client without records of its own
    /// (an empty list: the name exists, with no address).
    pub fn set(&self, name: &str, addrs: &[IpAddr]) {
        self.lock().all.insert(key(name), addrs.to_vec());
    }

    /// `name` resolves to `addrs` for queries from `client` only.
    pub fn set_for(&self, client: IpAddr, name: &str, addrs: &[IpAddr]) {
        let mut records = self.lock();
        let zone = records.by_client.entry(client).or_default();
        zone.insert(key(name), addrs.to_vec());
    }

    /// `client` is told what everyone is told again.
    pub fn clear_for(&self, client: IpAddr) {
        self.lock().by_client.remove(&client);
    }

    /// `name` no longer exists (NXDOMAIN), for everyone.
    pub fn remove(&self, name: &str) {
        let mut records = self.lock();
        let name = key(name);
        records.all.remove(&name);
        for zone in records.by_client.values_mut() {
            zone.remove(&name);
        }
    }

    /// The TTL of every answer from now on.
    pub fn set_ttl(&self, ttl: u32) {
        self.lock().ttl = Some(ttl);
    }

    /// Queries answered so far.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Queries answered so far from `client`.
    pub fn queries_from(&self, client: IpAddr) -> u64 {
        self.lock().asked.get(&client).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A name as the records hold it: lower case, no final dot.
fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// UDP and TCP on the same port (with port 0, a few tries at a free one).
async fn bind_both(
    bind: SocketAddr,
) -> Result<(tokio::net::UdpSocket, tokio::net::TcpListener), String> {
    let mut last = String::new();
    for _ in 0..20 {
        let udp = tokio::net::UdpSocket::bind(bind)
            .await
            .map_err(|e| format!("UDP: {e}"))?;
        let port = udp.local_addr().map_err(|e| e.to_string())?.port();
        match tokio::net::TcpListener::bind(SocketAddr::new(bind.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if bind.port() == 0 => last = format!("TCP: {e}"),
            Err(e) => return Err(format!("TCP: {e}")),
        }
    }
    Err(last)
}

/// Answers queries from the records.
struct Handler {
    records: Arc<Mutex<Records>>,
    queries: Arc<AtomicU64>,
}

impl Handler {
    /// The answer records and the response code for one query.
    fn answer(&self, client: IpAddr, name: &Name, kind: RecordType) -> (Vec<Record>, ResponseCode) {
        let mut records = self.records.lock().unwrap_or_else(|p| p.into_inner());
        *records.asked.entry(client).or_default() += 1;
        let ttl = records.ttl.unwrap_or(DEFAULT_TTL);
        let Some(addrs) = records.lookup(client, &key(&name.to_ascii())) else {
            return (Vec::new(), ResponseCode::NXDomain);
        };
        let answers = addrs
            .iter()
            .filter_map(|ip| match (ip, kind) {
                (IpAddr::V4(v4), RecordType::A) => Some(RData::A(A(*v4))),
                (IpAddr::V6(v6), RecordType::AAAA) => Some(RData::AAAA(AAAA(*v6))),
                _ => None,
            })
            .map(|rdata| Record::from_rdata(name.clone(), ttl, rdata))
            .collect();
        (answers, ResponseCode::NoError)
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        self.queries.fetch_add(1, Ordering::Relaxed);
        let builder = MessageResponseBuilder::new(&request.queries, None);
        let Some(query) = request.queries.queries().first() else {
            let response = builder.error_msg(&request.metadata, ResponseCode::FormErr);
            return send(&mut response_handle, response, request).await;
        };
        let name = Name::from(query.name());
        let (answers, code) = self.answer(request.src().ip(), &name, query.query_type());
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        metadata.response_code = code;
        let response = builder.build(metadata, answers.iter(), [], [], []);
        send(&mut response_handle, response, request).await
    }
}

async fn send<'q, 'a, R: ResponseHandler>(
    handle: &mut R,
    response: hickory_server::zone_handler::MessageResponse<
        'q,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    request: &Request,
) -> ResponseInfo {
    match handle.send_response(response).await {
        Ok(info) => info,
        Err(_) => {
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            })
        }
    }
}
