//! Data-plane connections: async-nats clients that ignore discovered
//! servers (so nothing bypasses the WAN emulator), subscribed to the
//! client's traffic subjects.
//!
//! For `rtt` a [`Link`] is one client on one server, chosen by us: it
//! makes a single reconnect attempt of its own and then gives up, because
//! the driver moves instead. Its events reach the driver tagged with the
//! link's generation, so events of a retired link are ignored.

use super::traffic::{self, Traffic};
use async_nats::{Client, ConnectOptions, Event};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// An event of the data-plane connection of generation `.0`.
pub type LinkEvent = (u64, Event);

/// The generation a connection's events are tagged with: the link's, or
/// [`UNTAGGED`] while it is a standby (whose events the driver ignores).
pub type Tag = Arc<AtomicU64>;

/// The tag of a connection that is no link (yet).
pub const UNTAGGED: u64 = u64::MAX;

/// How links are opened.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    /// Connection name (the client id).
    pub name: String,
    /// Time allowed to connect, subscribe and flush.
    pub connect_timeout: Duration,
    /// Subjects to subscribe to.
    pub subjects: Vec<String>,
}

/// Why a link could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Connecting failed.
    #[error("connect: {0}")]
    Connect(#[from] async_nats::ConnectError),
    /// Subscribing failed.
    #[error("subscribe: {0}")]
    Subscribe(#[from] async_nats::SubscribeError),
    /// The flush after subscribing failed.
    #[error("flush: {0}")]
    Flush(#[from] async_nats::client::FlushError),
    /// Subscribing and flushing took too long.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// One data-plane connection of the `rtt` strategy.
#[derive(Debug)]
pub struct Link {
    /// Generation (distinguishes its events from older links').
    pub generation: u64,
    /// Candidate index.
    pub index: usize,
    /// The client.
    pub client: Client,
    receiving: JoinHandle<()>,
}

/// Connects to `url` (unsubscribed); its events are tagged with `tag`'s value.
pub async fn connect(
    url: &str,
    options: &LinkOptions,
    tag: Tag,
    events: mpsc::UnboundedSender<LinkEvent>,
) -> Result<Client, LinkError> {
    let connect = ConnectOptions::new()
        .name(&options.name)
        .ignore_discovered_servers()
        .connection_timeout(options.connect_timeout)
        .max_reconnects(1)
        .event_callback(move |event| {
            let _ = events.send((tag.load(Ordering::Relaxed), event));
            async {}
        })
        .connect(url);
    match tokio::time::timeout(options.connect_timeout, connect).await {
        Ok(client) => Ok(client?),
        Err(_) => Err(LinkError::Timeout(options.connect_timeout)),
    }
}

impl Link {
    /// Connects to `url`, subscribes and flushes, so the link receives as
    /// soon as it is returned.
    pub async fn open(
        url: &str,
        index: usize,
        generation: u64,
        options: &LinkOptions,
        events: mpsc::UnboundedSender<LinkEvent>,
        traffic: Arc<Traffic>,
    ) -> Result<Link, LinkError> {
        let tag = Arc::new(AtomicU64::new(generation));
        let client = connect(url, options, tag, events).await?;
        Link::on(client, index, generation, options, traffic).await
    }

    /// Makes a link of a connection already open (a standby): subscribes and flushes.
    pub async fn on(
        client: Client,
        index: usize,
        generation: u64,
        options: &LinkOptions,
        traffic: Arc<Traffic>,
    ) -> Result<Link, LinkError> {
        let within = Some(options.connect_timeout);
        let receiving = subscribe(&client, &options.subjects, within, traffic).await?;
        Ok(Link {
            generation,
            index,
            client,
            receiving,
        })
    }

    /// Drains the link in the background (unsubscribe, deliver what is
    /// buffered, close) once `settle` has passed, giving up after `grace`.
    pub fn retire(self, settle: Duration, grace: Duration) {
        let Link {
            client,
            mut receiving,
            ..
        } = self;
        tokio::spawn(async move {
            tokio::time::sleep(settle).await;
            let drained = tokio::time::timeout(grace, async {
                let _ = client.drain().await;
                let _ = (&mut receiving).await;
            })
            .await;
            if drained.is_err() {
                // Dropping the subscribers and the client closes the connection.
                receiving.abort();
            }
        });
    }
}

/// Subscribes `client` to every subject, flushes (when `flush_within` is
/// given), and spawns the receive loop; returns its handle (it ends when the
/// client is drained or closed).
pub async fn subscribe(
    client: &Client,
    subjects: &[String],
    flush_within: Option<Duration>,
    traffic: Arc<Traffic>,
) -> Result<JoinHandle<()>, LinkError> {
    let work = async {
        let mut subscribers = Vec::with_capacity(subjects.len());
        for subject in subjects {
            subscribers.push(client.subscribe(subject.clone()).await?);
        }
        if flush_within.is_some() {
            client.flush().await?;
        }
        Ok::<_, LinkError>(subscribers)
    };
    let within = flush_within.unwrap_or(Duration::from_secs(3600));
    let subscribers = match tokio::time::timeout(within, work).await {
        Ok(result) => result?,
        Err(_) => return Err(LinkError::Timeout(within)),
    };
    let merged = futures::stream::select_all(subscribers);
    Ok(tokio::spawn(traffic::receive(merged, traffic)))
}
