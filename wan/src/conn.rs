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

/// Counters shared by a link and its connections.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub open: AtomicU64,
    pub total: AtomicU64,
    pub bytes_out: AtomicU64,
    pub bytes_back: AtomicU64,
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
                return reset(client);
            }
        },
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    debug!(%link, %peer, %target, "Connection opened");
    let end = {
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = server.split();
        let out = pipe(
            Direction::Out,
            client_read,
            server_write,
            config.clone(),
            &counters.bytes_out,
        );
        let back = pipe(
            Direction::Back,
            server_read,
            client_write,
            config.clone(),
            &counters.bytes_back,
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
