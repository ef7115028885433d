//! A raw NATS protocol connection for probes, over TCP or WebSocket: just
//! enough to read INFO, send CONNECT and PING, and read the server's lines.

use super::args::Transport;
use super::candidates::CandidateServer;
use bytes::{Buf, BytesMut};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_websockets::{MaybeTlsStream, Message, WebSocketStream};

/// The CONNECT a probe sends: no echo of anything, verbose off.
pub const CONNECT: &[u8] =
    b"CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1,\"name\":\"geolb-probe\"}\r\nPING\r\n";

/// Longest line accepted from a server (INFO can be long with many URLs).
const MAX_LINE: usize = 256 * 1024;

/// The fields of a server's INFO the client uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Info {
    /// Server id.
    #[serde(default)]
    pub server_id: String,
    /// Server name.
    #[serde(default)]
    pub server_name: String,
    /// Cluster name.
    #[serde(default)]
    pub cluster: String,
    /// Lame-duck mode.
    #[serde(default)]
    pub ldm: bool,
}

/// One line from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `INFO {...}`.
    Info(Info),
    /// `PING`.
    Ping,
    /// `PONG`.
    Pong,
    /// `-ERR '...'`.
    Err(String),
    /// `+OK` or anything a probe ignores.
    Other,
}

/// Parses one protocol line (without CRLF).
pub fn parse_line(line: &[u8]) -> Op {
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    let (verb, rest) = text.split_once(' ').unwrap_or((text, ""));
    match verb.to_ascii_uppercase().as_str() {
        "INFO" => serde_json::from_str(rest.trim())
            .map(Op::Info)
            .unwrap_or(Op::Other),
        "PING" => Op::Ping,
        "PONG" => Op::Pong,
        "-ERR" => Op::Err(rest.trim().trim_matches('\'').to_string()),
        _ => Op::Other,
    }
}

/// A probe's connection to one server.
pub struct Wire {
    io: Io,
    buf: BytesMut,
}

enum Io {
    Tcp(TcpStream),
    Ws(Box<WebSocketStream<MaybeTlsStream<TcpStream>>>),
}

impl Wire {
    /// Opens a TCP or WebSocket connection (no NATS handshake yet).
    pub async fn open(server: &CandidateServer, transport: Transport) -> io::Result<Wire> {
        let io = match transport {
            Transport::Tcp => {
                let stream = TcpStream::connect(&server.host_port).await?;
                stream.set_nodelay(true)?;
                Io::Tcp(stream)
            }
            Transport::Ws => {
                let builder = tokio_websockets::ClientBuilder::new()
                    .uri(&server.url)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let (ws, _) = builder.connect().await.map_err(io::Error::other)?;
                Io::Ws(Box::new(ws))
            }
        };
        Ok(Wire {
            io,
            buf: BytesMut::with_capacity(4096),
        })
    }

    /// Sends raw protocol bytes.
    pub async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.io {
            Io::Tcp(stream) => stream.write_all(data).await,
            Io::Ws(ws) => ws
                .send(Message::binary(data.to_vec()))
                .await
                .map_err(io::Error::other),
        }
    }

    /// The next protocol line; cancel-safe (partial data stays buffered).
    pub async fn next_op(&mut self) -> io::Result<Op> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf.split_to(end);
                self.buf.advance(2);
                return Ok(parse_line(&line));
            }
            if self.buf.len() > MAX_LINE {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
            self.fill().await?;
        }
    }

    /// Reads more bytes into the buffer.
    async fn fill(&mut self) -> io::Result<()> {
        match &mut self.io {
            Io::Tcp(stream) => match stream.read_buf(&mut self.buf).await? {
                0 => Err(io::ErrorKind::UnexpectedEof.into()),
                _ => Ok(()),
            },
            Io::Ws(ws) => match ws.next().await {
                Some(Ok(message)) if message.is_close() => Err(io::ErrorKind::UnexpectedEof.into()),
                Some(Ok(message)) => {
                    self.buf.extend_from_slice(message.as_payload());
                    Ok(())
                }
                Some(Err(e)) => Err(io::Error::other(e)),
                None => Err(io::ErrorKind::UnexpectedEof.into()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_lines() {
        let info = br#"INFO {"server_id":"NA","server_name":"lon-1","cluster":"lon","ldm":true,"port":4222}"#;
        let Op::Info(info) = parse_line(info) else {
            panic!("an INFO")
        };
        assert_eq!(
            (info.server_name.as_str(), info.cluster.as_str()),
            ("lon-1", "lon")
        );
        assert!(info.ldm);
        let plain = parse_line(br#"INFO {"server_id":"NB"}"#);
        assert_eq!(
            plain,
            Op::Info(Info {
                server_id: "NB".into(),
                ..Info::default()
            })
        );
        assert_eq!(parse_line(b"PING"), Op::Ping);
        assert_eq!(parse_line(b"pong"), Op::Pong);
        assert_eq!(parse_line(b"+OK"), Op::Other);
        assert_eq!(
            parse_line(b"-ERR 'Authorization Violation'"),
            Op::Err("Authorization Violation".into())
        );
        assert_eq!(parse_line(b"INFO {broken"), Op::Other);
    }
}
