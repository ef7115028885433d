//! A link: a listener whose every connection is forwarded to one target through the
//! emulated WAN.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::conn::{serve, Counters};
use crate::Error;
use geolb_proto::wan::LinkConfig;

/// Traffic counters of a link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStats {
    /// Connections open now.
    pub open: u64,
    /// Connections accepted since the start.
    pub total: u64,
    /// Bytes delivered from the diallers to the target.
    pub bytes_out: u64,
    /// Bytes delivered from the target back to the diallers.
    pub bytes_back: u64,
}

/// A running link; dropping it closes the listener and resets all its connections.
#[derive(Debug)]
pub struct Link {
    name: Arc<str>,
    local: SocketAddr,
    target: Arc<str>,
    config: watch::Sender<LinkConfig>,
    counters: Arc<Counters>,
}

impl Link {
    /// Listens on `listen` (port 0 for any) and forwards every connection to
    /// `target` (`ip:port`, or `host:port` resolved at each connection, as a
    /// client dialling a name would).
    pub async fn start(
        name: impl Into<String>,
        listen: SocketAddr,
        target: impl std::fmt::Display,
        config: LinkConfig,
    ) -> Result<Link, Error> {
        let name: Arc<str> = name.into().into();
        let target: Arc<str> = target.to_string().into();
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| Error::Bind {
                addr: listen,
                source,
            })?;
        let local = listener.local_addr().map_err(|source| Error::Bind {
            addr: listen,
            source,
        })?;
        let (tx, rx) = watch::channel(config);
        let counters = Arc::new(Counters::default());
        tokio::spawn(accept(
            name.clone(),
            listener,
            target.clone(),
            rx,
            counters.clone(),
        ));
        info!(link = %name, %local, %target, ?config, "Link started");
        Ok(Link {
            name,
            local,
            target,
            config: tx,
            counters,
        })
    }

    /// The link's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address clients dial instead of the target.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Where every connection is forwarded to.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The current configuration.
    pub fn config(&self) -> LinkConfig {
        *self.config.borrow()
    }

    /// Applies `config` at once to existing and new connections.
    pub fn set(&self, config: LinkConfig) {
        let old = self.config.send_replace(config);
        if old != config {
            info!(link = %self.name, ?old, new = ?config, "Link changed");
        }
    }

    /// The traffic counters.
    pub fn stats(&self) -> LinkStats {
        let c = &self.counters;
        LinkStats {
            open: c.open.load(Ordering::Relaxed),
            total: c.total.load(Ordering::Relaxed),
            bytes_out: c.bytes_out.load(Ordering::Relaxed),
            bytes_back: c.bytes_back.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        // Dropping the sender closes every receiver: the accept loop and all
        // connections see it and stop.
        info!(link = %self.name, "Link stopped");
    }
}

/// How often a link whose target refused looks whether it listens again.
const TARGET_PROBE: std::time::Duration = std::time::Duration::from_millis(50);

/// Accepts connections until the link is dropped. While the target refuses
/// connections the link does not listen, so diallers are refused at once,
/// as a real network refuses a host with nothing on that port (rather than
/// accepting and resetting, which nats-server and clients answer with a
/// reconnect delay).
async fn accept(
    name: Arc<str>,
    listener: TcpListener,
    target: Arc<str>,
    mut config: watch::Receiver<LinkConfig>,
    counters: Arc<Counters>,
) {
    let local = listener.local_addr().ok();
    let mut listener = Some(listener);
    loop {
        let Some(open) = &listener else {
            tokio::select! {
                biased;
                closed = config.changed() => if closed.is_err() { break },
                () = tokio::time::sleep(TARGET_PROBE) => {
                    if crate::conn::refuses(&target).await { continue }
                    match local.map(TcpListener::bind) {
                        Some(bind) => match bind.await {
                            Ok(again) => {
                                info!(link = %name, %target, "Target listens again: the link listens again");
                                listener = Some(again);
                                counters.listening.send_replace(true);
                            }
                            Err(error) => warn!(link = %name, %error, "Cannot listen again yet"),
                        },
                        None => break,
                    }
                }
            }
            continue;
        };
        tokio::select! {
            biased;
            closed = config.changed() => if closed.is_err() { break },
            () = counters.target_refused.notified() => {
                info!(link = %name, %target, "Target refuses connections: the link stops listening until it is back");
                listener = None;
                counters.listening.send_replace(false);
            }
            accepted = open.accept() => match accepted {
                Ok((client, peer)) => {
                    let conn = serve(name.clone(), client, peer, target.clone(), config.clone(), counters.clone());
                    tokio::spawn(conn);
                }
                Err(error) => {
                    // Out of file descriptors, most likely: wait instead of spinning.
                    warn!(link = %name, %error, "Cannot accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
    debug!(link = %name, "Listener closed");
}
