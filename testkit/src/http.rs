//! A tiny HTTP/1.0 GET over `std::net::TcpStream`, enough for nats-server's monitoring port.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Connect, read and write timeout of one request.
const TIMEOUT: Duration = Duration::from_secs(5);

/// GETs an `http://host:port/path` URL; returns the status code and the body.
pub fn http_get(url: &str) -> io::Result<(u16, String)> {
    http_get_within(url, TIMEOUT)
}

/// GETs `url`, giving up (an error) when nothing answers within `timeout`.
pub fn http_get_within(url: &str, timeout: std::time::Duration) -> io::Result<(u16, String)> {
    let (host, path) = split_url(url)?;
    let addr = host
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| invalid(format!("{host} resolves to nothing")))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&String::from_utf8_lossy(&raw))
}

/// GETs a URL and parses a 200 response as JSON.
pub fn get_json(url: &str) -> io::Result<serde_json::Value> {
    match http_get(url)? {
        (200, body) => serde_json::from_str(&body).map_err(|e| invalid(format!("{url}: {e}"))),
        (status, body) => Err(io::Error::other(format!("{url}: HTTP {status}: {body}"))),
    }
}

/// Splits `http://host:port/path?query` into `host:port` and `/path?query`.
fn split_url(url: &str) -> io::Result<(&str, &str)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| invalid(format!("not an http:// URL: {url}")))?;
    Ok(match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    })
}

/// Parses a whole HTTP response into status and body.
fn parse_response(raw: &str) -> io::Result<(u16, String)> {
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| invalid("truncated HTTP response".into()))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line: {head:.60}")))?;
    Ok((status, body.to_string()))
}

/// An `InvalidData` error with a message.
fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        let s = split_url("http://127.0.0.1:8222/varz?x=1").unwrap();
        assert_eq!(s, ("127.0.0.1:8222", "/varz?x=1"));
        assert_eq!(split_url("http://h:1").unwrap(), ("h:1", "/"));
        assert!(split_url("https://h:1/").is_err());
    }

    #[test]
    fn parses_responses() {
        let raw = "HTTP/1.0 503 Service Unavailable\r\nA: b\r\n\r\n{\"status\":\"x\"}";
        assert_eq!(
            parse_response(raw).unwrap(),
            (503, "{\"status\":\"x\"}".into())
        );
        assert!(parse_response("HTTP/1.0 200 OK\r\n").is_err());
    }
}
