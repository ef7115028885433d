//! Test helpers: a nats-server on free ports (the testkit's), a raw NATS connection that measures
//! PING/PONG round trips, and small TCP targets.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

pub use geolb_testkit::NatsServer;

/// Any port on 127.0.0.1, for a link to listen on.
pub fn any_addr() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A nats-server of the default version on free ports, ready.
pub fn nats_server() -> NatsServer {
    NatsServer::start(
        geolb_testkit::default_version(),
        geolb_testkit::ServerConfig::default(),
    )
}

/// A raw NATS client connection.
pub struct Nats {
    stream: BufReader<TcpStream>,
}

impl Nats {
    /// Reads INFO, sends CONNECT and a PING, and waits for the PONG.
    pub async fn connect(addr: SocketAddr) -> std::io::Result<Nats> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut nats = Nats {
            stream: BufReader::new(stream),
        };
        let info = nats.line(Duration::from_secs(5)).await?;
        assert!(info.starts_with("INFO "), "unexpected greeting {info:?}");
        nats.send(b"CONNECT {\"verbose\":false,\"protocol\":1}\r\nPING\r\n")
            .await?;
        nats.pong(Duration::from_secs(5)).await?;
        Ok(nats)
    }

    /// Writes raw protocol bytes.
    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.get_mut().write_all(bytes).await
    }

    /// Reads one line within `limit`.
    pub async fn line(&mut self, limit: Duration) -> std::io::Result<String> {
        let mut line = String::new();
        match timeout(limit, self.stream.read_line(&mut line)).await {
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
            Ok(Ok(0)) => Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(Ok(_)) => Ok(line),
            Ok(Err(e)) => Err(e),
        }
    }

    /// Waits for a PONG within `limit`, skipping anything else.
    pub async fn pong(&mut self, limit: Duration) -> std::io::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            let line = self
                .line(deadline.saturating_duration_since(Instant::now()))
                .await?;
            if line == "PONG\r\n" {
                return Ok(());
            }
        }
    }

    /// Reads until the connection fails or `limit` passes; returns the failure.
    pub async fn closed(&mut self, limit: Duration) -> std::io::Error {
        let deadline = Instant::now() + limit;
        loop {
            if let Err(e) = self
                .line(deadline.saturating_duration_since(Instant::now()))
                .await
            {
                return e;
            }
        }
    }

    /// One PING/PONG round trip.
    pub async fn ping(&mut self) -> Duration {
        let start = Instant::now();
        self.send(b"PING\r\n").await.unwrap();
        self.pong(Duration::from_secs(5)).await.unwrap();
        start.elapsed()
    }

    /// The median of `n` round trips, after a few to warm up.
    pub async fn median_rtt(&mut self, n: usize) -> Duration {
        self.median_rtt_spaced(n, Duration::ZERO).await
    }

    /// The median of `n` round trips, each after `idle` without traffic.
    ///
    /// A loopback round trip after some idle time is slower than back to back (CPUs
    /// and threads have to wake up): this is the baseline to compare a link with.
    pub async fn median_rtt_spaced(&mut self, n: usize, idle: Duration) -> Duration {
        for _ in 0..3 {
            self.ping().await;
        }
        let mut rtts = Vec::with_capacity(n);
        for _ in 0..n {
            if !idle.is_zero() {
                geolb_wan::sleep_until(Instant::now() + idle).await;
            }
            rtts.push(self.ping().await);
        }
        rtts.sort();
        rtts[n / 2]
    }
}

/// Polls `done` every 10 ms for up to 2 s; returns its last answer.
pub async fn eventually(done: impl Fn() -> bool) -> bool {
    for _ in 0..200 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}

/// The allowed error on a configured round trip: 5 % or 0.5 ms, whichever is larger.
pub fn tolerance(configured: Duration) -> Duration {
    (configured / 20).max(Duration::from_micros(500))
}

/// Milliseconds, for printing.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The signed difference `a - b` in milliseconds.
pub fn diff_ms(a: Duration, b: Duration) -> f64 {
    ms(a) - ms(b)
}

/// A TCP echo server; returns its address.
pub async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind(any_addr()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// A TCP sink: reads to EOF, then answers the byte count as 8 bytes big-endian.
pub async fn counting_sink() -> SocketAddr {
    let listener = TcpListener::bind(any_addr()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 256 * 1024];
                let mut total = 0u64;
                while let Ok(n @ 1..) = stream.read(&mut buf).await {
                    total += n as u64;
                }
                let _ = stream.write_all(&total.to_be_bytes()).await;
            });
        }
    });
    addr
}
