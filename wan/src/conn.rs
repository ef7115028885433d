//! One proxied connection: wait while cut, dial the target, pipe both directions, and
//! reset both sides when the link is reset, dropped, or one side fails.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::debug;

use crate::pipe::{pipe, Broken, Direction};
use geolb_proto::wan::{LinkConfig, LinkState};

/// Counters shared by a link and its connections, and the signal that its
/// target refuses connections (the link then stops listening, so diallers
/// are refused too, as by a real network).
#[derive(Debug)]
pub(crate) struct Counters {
    pub open: AtomicU64,
    pub total: AtomicU64,
    pub bytes_out: AtomicU64,
    pub bytes_back: AtomicU64,
    pub target_refused: tokio::sync::Notify,
    /// Whether the link listens now (false while its target refuses).
    pub listening: watch::Sender<bool>,
    /// Whether a refusing target stops the listener (links); the anycast
    /// router's vantages keep listening, as an anycast address stays routed.
    pub stop_on_refusal: bool,
}

impl Default for Counters {
    fn default() -> Counters {
        Counters {
            open: AtomicU64::default(),
            total: AtomicU64::default(),
            bytes_out: AtomicU64::default(),
            bytes_back: AtomicU64::default(),
            target_refused: tokio::sync::Notify::new(),
            listening: watch::Sender::new(true),
            stop_on_refusal: true,
        }
    }
}

impl Counters {
    /// Tells the link its target refuses, and waits (briefly) until it stopped listening.
    async fn stop_listening(&self) {
        let mut listening = self.listening.subscribe();
        self.target_refused.notify_one();
        let stopped = listening.wait_for(|l| !*l);
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), stopped).await;
    }
}

/// Whether `target` refuses a connection now (nothing listens there).
pub(crate) async fn refuses(target: &str) -> bool {
    let dial = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        TcpStream::connect(target),
    );
    matches!(dial.await, Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused)
}

/// Counts a connection as open while alive.
struct OpenGuard<'a>(&'a Counters);

impl<'a> OpenGuard<'a> {
    fn new(c: &'a Counters) -> Self {
        c.open.fetch_add(1, Ordering::Relaxed);
        c.total.fetch_add(1, Ordering::Relaxed);
        OpenGuard(c)
    }
}

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How a connection ended.
#[derive(Debug)]
enum End {
    /// Both sides closed their half.
    Closed,
    /// The link was reset or dropped.
    Reset,
    /// One side failed; the other one is reset too.
    Broken(std::io::Error),
}

/// Serves one accepted connection until it ends.
pub(crate) async fn serve(
    link: Arc<str>,
    mut client: TcpStream,
    peer: SocketAddr,
    target: Arc<str>,
    mut config: watch::Receiver<LinkConfig>,
    counters: Arc<Counters>,
) {
    let _open = OpenGuard::new(&counters);
    // A connection accepted during a cut is not dialled until the link is up again.
    let up = matches!(config.wait_for(|c| c.state != LinkState::Cut).await, Ok(c) if c.state == LinkState::Up);
    if !up {
        debug!(%link, %peer, "Connection refused: the link is reset");
        return reset(client);
    }
    let mut server = tokio::select! {
        biased;
        () = until_reset(&mut config) => return reset(client),
        dialled = TcpStream::connect(&*target) => match dialled {
            Ok(server) => server,
            Err(error) => {
                debug!(%link, %peer, %target, %error, "Connection refused: cannot dial the target");
                // The dialler hears at once; the link then stops listening,
                // so that the next one is refused by the kernel.
                reset(client);
                if error.kind() == std::io::ErrorKind::ConnectionRefused && counters.stop_on_refusal {
                    counters.stop_listening().await;
                }
                return;
            }
        },
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    debug!(%link, %peer, %target, "Connection opened");
    let client_closed = std::sync::atomic::AtomicBool::new(false);
    let end = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        let out = pipe(
            Direction::Out,
            client_read,
            server_write,
            config.clone(),
            &counters.bytes_out,
            || async { client_closed.store(true, Ordering::Relaxed) },
        );
        // The target closing first may mean it is gone: find out before the
        // dialler hears of it, so its next attempt is refused, not accepted.
        // A killed process may close this connection a moment before its
        // listener: look again, briefly, before believing it alive.
        let gone = || async {
            // The dialler closed first: the target is only answering that.
            if client_closed.load(Ordering::Relaxed) || !counters.stop_on_refusal {
                return;
            }
            for _ in 0..3 {
                if refuses(&target).await {
                    return counters.stop_listening().await;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        };
        let back = pipe(
            Direction::Back,
            server_read,
            client_write,
            config.clone(),
            &counters.bytes_back,
            gone,
        );
        // A read failure resets at once; a write failure waits for the other direction.
        let out = async { outcome(out.await) };
        let back = async { outcome(back.await) };
        tokio::select! {
            biased;
            () = until_reset(&mut config) => End::Reset,
            both = async { tokio::try_join!(out, back) } => match both {
                Ok((None, None)) => End::Closed,
                Ok((Some(error), _) | (None, Some(error))) | Err(error) => End::Broken(error),
            },
        }
    };
    match end {
        End::Closed => return debug!(%link, %peer, "Connection closed"),
        End::Reset => debug!(%link, %peer, "Connection reset: the link is reset or stopped"),
        End::Broken(error) => debug!(%link, %peer, %error, "Connection reset: one side failed"),
    }
    reset(client);
    reset(server);
}

/// Splits a direction's end into "stop everything now" (`Err`) and "done" (`Ok`, with
/// the write error if any).
fn outcome(end: Result<(), Broken>) -> Result<Option<std::io::Error>, std::io::Error> {
    match end {
        Ok(()) => Ok(None),
        Err(Broken::Write(error)) => Ok(Some(error)),
        Err(Broken::Read(error)) => Err(error),
    }
}

/// Completes when the link is reset or dropped.
async fn until_reset(config: &mut watch::Receiver<LinkConfig>) {
    let _ = config.wait_for(|c| c.state == LinkState::Reset).await;
}

/// Closes with an RST (SO_LINGER 0) instead of a FIN.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
}
