//! The candidate servers (`--server REGION=URL`), checked before anything
//! starts: a malformed URL, a duplicate, a scheme that does not match
//! `--transport`, or a `--region` no server is in is an error that says
//! what to fix.

use super::args::Transport;
use geolb_proto::subject::validate_name;
use std::collections::BTreeSet;
use std::str::FromStr;

/// One server the client may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateServer {
    /// Region it was given for.
    pub region: String,
    /// Normalised URL (`nats://host:port` or `ws://host:port[/path]`).
    pub url: String,
    /// `host:port`, for the probe's TCP connection.
    pub host_port: String,
}

/// Bad `--server` or `--region` input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CandidateError {
    /// No `--server` at all.
    #[error("no servers given; pass --server REGION=URL for every server of every region")]
    Empty,
    /// Not `REGION=URL`.
    #[error("--server {0:?} is not REGION=URL (e.g. lon=nats://10.0.0.1:4222)")]
    NotRegionUrl(String),
    /// The region is not a subject token.
    #[error("--server {0:?}: the region must be 1 to 64 of A-Z a-z 0-9 _ -")]
    BadRegion(String),
    /// The URL does not parse.
    #[error("--server {arg:?}: malformed URL: {reason}")]
    Malformed {
        /// The argument.
        arg: String,
        /// Why.
        reason: String,
    },
    /// A scheme the transport cannot use.
    #[error("--server {arg:?}: scheme {scheme}:// does not match --transport {transport} (use {want}://)")]
    Scheme {
        /// The argument.
        arg: String,
        /// Its scheme.
        scheme: String,
        /// The transport.
        transport: &'static str,
        /// The scheme that would do.
        want: &'static str,
    },
    /// The same server twice.
    #[error("server {url} is given twice (as {first:?} and {second:?}); list each server once")]
    Duplicate {
        /// The normalised URL.
        url: String,
        /// First argument.
        first: String,
        /// Second argument.
        second: String,
    },
    /// `--region` is not among the servers' regions.
    #[error("--region {region:?} has no servers; known regions: {known}")]
    UnknownRegion {
        /// The region asked for.
        region: String,
        /// The regions of `--server`.
        known: String,
    },
    /// No `--region` and several regions to choose from.
    #[error("--region is required when servers span several regions ({known})")]
    NoRegion {
        /// The regions of `--server`.
        known: String,
    },
}

/// Parses every `--server` argument; the order is kept.
pub fn parse_all(
    args: &[String],
    transport: Transport,
) -> Result<Vec<CandidateServer>, CandidateError> {
    if args.is_empty() {
        return Err(CandidateError::Empty);
    }
    let mut out: Vec<(String, CandidateServer)> = Vec::new();
    for arg in args {
        let candidate = parse_one(arg, transport)?;
        if let Some((first, _)) = out.iter().find(|(_, c)| c.url == candidate.url) {
            return Err(CandidateError::Duplicate {
                url: candidate.url,
                first: first.clone(),
                second: arg.clone(),
            });
        }
        out.push((arg.clone(), candidate));
    }
    Ok(out.into_iter().map(|(_, c)| c).collect())
}

/// Parses `REGION=URL`; a URL without a scheme gets the transport's.
pub fn parse_one(arg: &str, transport: Transport) -> Result<CandidateServer, CandidateError> {
    let (region, url) = arg
        .trim()
        .split_once('=')
        .ok_or_else(|| CandidateError::NotRegionUrl(arg.to_string()))?;
    if validate_name("region", region).is_err() {
        return Err(CandidateError::BadRegion(arg.to_string()));
    }
    let want = match transport {
        Transport::Tcp => "nats",
        Transport::Ws => "ws",
    };
    let url = match url.contains("://") {
        true => url.to_string(),
        false => format!("{want}://{url}"),
    };
    let malformed = |reason: String| CandidateError::Malformed {
        arg: arg.to_string(),
        reason,
    };
    let parsed = async_nats::ServerAddr::from_str(&url).map_err(|e| malformed(e.to_string()))?;
    let scheme = parsed.scheme().to_string();
    if scheme != want {
        return Err(CandidateError::Scheme {
            arg: arg.to_string(),
            scheme,
            transport: match transport {
                Transport::Tcp => "tcp",
                Transport::Ws => "ws",
            },
            want,
        });
    }
    let host = parsed.host();
    if host.is_empty() {
        return Err(malformed("no host".to_string()));
    }
    let host = match host.contains(':') && !host.starts_with('[') {
        true => format!("[{host}]"),
        false => host.to_string(),
    };
    let host_port = format!("{host}:{}", parsed.port());
    let path = parsed.as_url_str().split_once("://").map(|(_, rest)| rest);
    let path = path.and_then(|rest| rest.find('/').map(|i| &rest[i..]));
    let path = path.filter(|p| *p != "/").unwrap_or("");
    Ok(CandidateServer {
        region: region.to_string(),
        url: format!("{scheme}://{host_port}{path}"),
        host_port,
    })
}

/// The client's region: `--region` if given (must have servers), else the
/// only region of the servers.
pub fn choose_region(
    asked: Option<&str>,
    servers: &[CandidateServer],
) -> Result<String, CandidateError> {
    let known: BTreeSet<&str> = servers.iter().map(|s| s.region.as_str()).collect();
    let list = known.iter().copied().collect::<Vec<_>>().join(", ");
    match asked {
        Some(region) if known.contains(region) => Ok(region.to_string()),
        Some(region) => Err(CandidateError::UnknownRegion {
            region: region.to_string(),
            known: list,
        }),
        None if known.len() == 1 => Ok(list),
        None => Err(CandidateError::NoRegion { known: list }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_and_normalises() {
        let cases = [
            (
                "lon=nats://127.0.0.1:4222",
                Transport::Tcp,
                "nats://127.0.0.1:4222",
            ),
            (
                "lon=127.0.0.1:4222",
                Transport::Tcp,
                "nats://127.0.0.1:4222",
            ),
            ("lon=localhost", Transport::Tcp, "nats://localhost:4222"),
            (
                "ams=ws://10.0.0.1:8080",
                Transport::Ws,
                "ws://10.0.0.1:8080",
            ),
            ("ams=10.0.0.1:8080", Transport::Ws, "ws://10.0.0.1:8080"),
        ];
        for (arg, transport, want) in cases {
            let c = parse_one(arg, transport).unwrap_or_else(|e| panic!("{arg}: {e}"));
            assert_eq!(c.url, want, "{arg}");
        }
        let c = parse_one("dfw=nats://h:4333", Transport::Tcp).unwrap();
        assert_eq!((c.region.as_str(), c.host_port.as_str()), ("dfw", "h:4333"));
    }

    #[test]
    fn refuses_bad_servers() {
        let cases: [(&str, Transport, &str); 7] = [
            ("nats://127.0.0.1:4222", Transport::Tcp, "REGION=URL"),
            ("=nats://127.0.0.1:4222", Transport::Tcp, "region must be"),
            (
                "l.on=nats://127.0.0.1:4222",
                Transport::Tcp,
                "region must be",
            ),
            ("lon=nats://127.0.0.1:notaport", Transport::Tcp, "malformed"),
            ("lon=ws://127.0.0.1:8080", Transport::Tcp, "use nats://"),
            ("lon=nats://127.0.0.1:4222", Transport::Ws, "use ws://"),
            ("lon=tls://127.0.0.1:4222", Transport::Tcp, "use nats://"),
        ];
        for (arg, transport, want) in cases {
            let err = parse_one(arg, transport).unwrap_err().to_string();
            assert!(err.contains(want), "{arg}: {err}");
        }
    }

    #[test]
    fn refuses_duplicates_and_empty_lists() {
        let dup = strings(&["a=nats://h:1", "b=h:2", "c=nats://h:1"]);
        let err = parse_all(&dup, Transport::Tcp).unwrap_err();
        assert!(
            err.to_string().contains("nats://h:1 is given twice"),
            "{err}"
        );
        let same = strings(&["a=h:4222", "a=nats://h"]);
        assert!(parse_all(&same, Transport::Tcp).is_err());
        assert_eq!(parse_all(&[], Transport::Tcp), Err(CandidateError::Empty));
        let ok = parse_all(&strings(&["a=h:1", "b=h:2"]), Transport::Tcp).unwrap();
        assert_eq!(ok.len(), 2);
    }

    #[test]
    fn chooses_the_region() {
        let servers = parse_all(&strings(&["lon=h:1", "ams=h:2"]), Transport::Tcp).unwrap();
        assert_eq!(choose_region(Some("lon"), &servers).unwrap(), "lon");
        let err = choose_region(Some("dfw"), &servers)
            .unwrap_err()
            .to_string();
        assert!(err.contains("known regions: ams, lon"), "{err}");
        assert!(choose_region(None, &servers).is_err());
        assert_eq!(choose_region(None, &servers[..1]).unwrap(), "lon");
    }
}
