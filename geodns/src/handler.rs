//! Answering one DNS request on one region's listener (hickory-server's
//! `RequestHandler`): A records of the region's answer, the TXT version,
//! SOA and NS for the zone, NXDOMAIN inside the zone, REFUSED outside.
//! Under the `unreachable` fault nothing is sent at all.

use crate::Inner;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::rdata::{A, NS, SOA, TXT};
use hickory_server::proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The handler of one listener.
pub struct Handler {
    /// What all listeners share.
    pub inner: Arc<Inner>,
    /// The index of this listener's region in the configuration.
    pub region: usize,
}

/// The records of one response.
#[derive(Default)]
struct Reply {
    code: ResponseCode,
    authoritative: bool,
    answers: Vec<Record>,
    authorities: Vec<Record>,
}

impl Handler {
    /// What to answer `name`/`kind`/`class` on this listener.
    fn reply(&self, name: &Name, kind: RecordType, class: DNSClass) -> Reply {
        let inner = &self.inner;
        let (serial, ttl) = (inner.serial(), inner.config.ttl_s);
        let zone = &inner.zone;
        let refused = Reply {
            code: ResponseCode::Refused,
            ..Reply::default()
        };
        if class != DNSClass::IN || !zone.zone_of(name) {
            return refused;
        }
        let soa = Record::from_rdata(
            zone.clone(),
            ttl,
            RData::SOA(SOA::new(
                inner.ns.clone(),
                inner.hostmaster.clone(),
                serial,
                3600,
                600,
                86_400,
                ttl,
            )),
        );
        let answers: Vec<Record> = match (name, kind) {
            (n, RecordType::A) if *n == inner.name => inner
                .answer(self.region)
                .into_iter()
                .map(|ip| Record::from_rdata(n.clone(), ttl, RData::A(A(ip))))
                .collect(),
            // The same TTL as the A records, so a cache holds the pair.
            (n, RecordType::TXT) if *n == inner.name => vec![Record::from_rdata(
                n.clone(),
                ttl,
                RData::TXT(TXT::new(vec![format!("geolb-version={serial}")])),
            )],
            (n, RecordType::SOA) if n == zone => vec![soa.clone()],
            (n, RecordType::NS) if n == zone => {
                vec![Record::from_rdata(
                    n.clone(),
                    ttl,
                    RData::NS(NS(inner.ns.clone())),
                )]
            }
            (n, RecordType::A) if *n == inner.ns => {
                let ip = inner.listener_ip(self.region);
                vec![Record::from_rdata(n.clone(), ttl, RData::A(A(ip)))]
            }
            _ => Vec::new(),
        };
        let exists = *name == inner.name || name == zone || *name == inner.ns;
        Reply {
            code: match exists {
                true => ResponseCode::NoError,
                false => ResponseCode::NXDomain,
            },
            authoritative: true,
            authorities: match answers.is_empty() {
                // NODATA and NXDOMAIN carry the SOA (negative caching).
                true => vec![soa],
                false => Vec::new(),
            },
            answers,
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        if self.inner.unreachable.load(Ordering::Relaxed) {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
            metadata.response_code = ResponseCode::ServFail;
            return info(metadata);
        }
        self.inner.queries.fetch_add(1, Ordering::Relaxed);
        let edns = request.edns.as_ref().map(|_| {
            let mut edns = Edns::new();
            edns.set_max_payload(1232);
            edns
        });
        let builder = MessageResponseBuilder::new(&request.queries, edns.as_ref());
        let query = match (request.metadata.op_code, request.queries.queries()) {
            (OpCode::Query, [query]) => query,
            (OpCode::Query, _) => {
                let response = builder.error_msg(&request.metadata, ResponseCode::FormErr);
                return send(&mut response_handle, response, metadata).await;
            }
            _ => {
                let response = builder.error_msg(&request.metadata, ResponseCode::NotImp);
                return send(&mut response_handle, response, metadata).await;
            }
        };
        let name = Name::from(query.name()).to_lowercase();
        let reply = self.reply(&name, query.query_type(), query.query_class());
        metadata.response_code = reply.code;
        metadata.authoritative = reply.authoritative;
        metadata.recursion_available = false;
        let response = builder.build(
            metadata,
            reply.answers.iter(),
            [],
            reply.authorities.iter(),
            [],
        );
        send(&mut response_handle, response, metadata).await
    }
}

fn info(metadata: Metadata) -> ResponseInfo {
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

async fn send<'q, 'a, R: ResponseHandler>(
    handle: &mut R,
    response: MessageResponse<
        'q,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    mut metadata: Metadata,
) -> ResponseInfo {
    match handle.send_response(response).await {
        Ok(info) => info,
        Err(error) => {
            tracing::debug!(%error, "Cannot send a DNS response");
            metadata.response_code = ResponseCode::ServFail;
            info(metadata)
        }
    }
}
