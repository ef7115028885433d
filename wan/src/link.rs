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

/// Accepts connections until the link is dropped.
async fn accept(
    name: Arc<str>,
    listener: TcpListener,
    target: Arc<str>,
    mut config: watch::Receiver<LinkConfig>,
    counters: Arc<Counters>,
) {
    loop {
        tokio::select! {
            biased;
            closed = config.changed() => if closed.is_err() { break },
            accepted = listener.accept() => match accepted {
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
