//! One vantage point: a listener whose connections the router sends to a
//! server, forwarded like a link's (no delay of its own), and the
//! connections it may have to reset at a flip.

use super::{route, Inner};
use crate::conn::{serve, Counters};
use crate::link::LinkStats;
use crate::Error;
use geolb_proto::routing::anycast::{AnycastMode, Vantage as Spec};
use geolb_proto::wan::{LinkConfig, LinkState};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A bound vantage.
pub(super) struct Vantage {
    pub spec: Spec,
    pub local: SocketAddr,
    name: Arc<str>,
    listener: Mutex<Option<TcpListener>>,
    counters: Arc<Counters>,
    /// Open connections by the region of their server.
    conns: Mutex<Vec<(String, watch::Sender<LinkConfig>)>>,
}

impl Vantage {
    /// Binds the vantage's listener.
    pub(super) async fn bind(spec: Spec) -> Result<Vantage, Error> {
        let addr: SocketAddr = spec.listen.parse().map_err(|e| {
            Error::Config(format!(
                "vantage {}: listen {:?}: {e}",
                spec.id, spec.listen
            ))
        })?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        let counters = Counters {
            stop_on_refusal: false,
            ..Counters::default()
        };
        Ok(Vantage {
            name: format!("anycast:{}", spec.id).into(),
            spec,
            local,
            listener: Mutex::new(Some(listener)),
            counters: Arc::new(counters),
            conns: Mutex::new(Vec::new()),
        })
    }

    /// The listener, once, for its accept loop.
    pub(super) fn take_listener(&self) -> TcpListener {
        self.listener
            .lock()
            .unwrap()
            .take()
            .expect("one accept loop per vantage")
    }

    /// Connections open and accepted.
    pub(super) fn stats(&self) -> LinkStats {
        LinkStats {
            open: self.counters.open.load(Ordering::Relaxed),
            total: self.counters.total.load(Ordering::Relaxed),
            bytes_out: self.counters.bytes_out.load(Ordering::Relaxed),
            bytes_back: self.counters.bytes_back.load(Ordering::Relaxed),
        }
    }

    /// Resets every open connection to a server of `region`; returns how many.
    pub(super) fn reset_site(&self, region: &str) -> u64 {
        let mut conns = self.conns.lock().unwrap();
        conns.retain(|(_, tx)| !tx.is_closed());
        let mut reset = 0;
        conns.retain(|(site, tx)| {
            if site != region {
                return true;
            }
            tx.send_replace(LinkConfig::default().with_state(LinkState::Reset));
            reset += 1;
            false
        });
        reset
    }

    fn reset_all(&self) {
        for (_, tx) in self.conns.lock().unwrap().drain(..) {
            tx.send_replace(LinkConfig::default().with_state(LinkState::Reset));
        }
    }
}

/// Accepts connections on vantage `index` until the router is dropped.
pub(super) async fn accept(
    inner: Arc<Inner>,
    index: usize,
    listener: TcpListener,
    mut stopped: watch::Receiver<()>,
) {
    loop {
        tokio::select! {
            biased;
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => inner.connect(index, client, peer),
                Err(error) => {
                    tracing::warn!(vantage = %inner.vantages[index].spec.id, %error, "Cannot accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
    inner.vantages[index].reset_all();
}

impl Inner {
    /// Sends one accepted connection to the server its route leads to.
    fn connect(&self, index: usize, client: TcpStream, peer: SocketAddr) {
        let hash = route::flow_hash(peer);
        let state = self.lock();
        let vantage = &self.vantages[index];
        let candidates: Vec<route::Candidate<'_>> = self
            .config
            .servers
            .iter()
            .zip(&state.health)
            .map(|(s, h)| route::Candidate {
                region: &s.region,
                healthy: h.healthy,
            })
            .collect();
        let chosen = match state.mode {
            AnycastMode::Bgp => state.routes[index]
                .site
                .as_deref()
                .and_then(|site| route::in_site(site, &candidates, hash)),
            AnycastMode::Proxy => {
                route::proxied(&self.config.rtt_ms, &vantage.spec.region, &candidates, hash)
            }
        };
        let Some(server) = chosen.map(|i| &self.config.servers[i]) else {
            let _ = client.set_zero_linger();
            return;
        };
        let Some(target) = server.dial.get(&vantage.spec.region) else {
            let _ = client.set_zero_linger();
            return;
        };
        let (tx, rx) = watch::channel(LinkConfig::default());
        {
            let mut conns = vantage.conns.lock().unwrap();
            conns.retain(|(_, tx)| !tx.is_closed());
            conns.push((server.region.clone(), tx));
        }
        drop(state);
        let conn = serve(
            vantage.name.clone(),
            client,
            peer,
            target.as_str().into(),
            rx,
            vantage.counters.clone(),
        );
        tokio::spawn(conn);
    }
}
