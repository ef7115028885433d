//! The `dns` strategy's own resolver (hickory-resolver): the system's
//! configuration, Google's or Cloudflare's public resolvers, or one server
//! at `IP:PORT` (the lab's GeoDNS listener of the client's region). Every
//! lookup is recorded: when, the addresses, their TTL and the answer's
//! version (`"geolb-version=N"` in a TXT record of the same name, which the
//! lab's GeoDNS publishes; absent elsewhere).
//!
//! `--dns-keep-stale D` keeps every answer at least D, whatever its TTL:
//! the tail of real clients and resolvers that hold an answer past its TTL.

use geolb_proto::client::Lookup;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, CLOUDFLARE, GOOGLE};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::Resolver;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Where lookups go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolverSpec {
    /// `/etc/resolv.conf`.
    System,
    /// Google Public DNS.
    Google,
    /// Cloudflare's 1.1.1.1.
    Cloudflare,
    /// One DNS server.
    Server(SocketAddr),
}

impl std::str::FromStr for ResolverSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<ResolverSpec, String> {
        match s {
            "system" => Ok(ResolverSpec::System),
            "google" => Ok(ResolverSpec::Google),
            "cloudflare" => Ok(ResolverSpec::Cloudflare),
            other => other.parse().map(ResolverSpec::Server).map_err(|_| {
                format!("--resolver {other:?}: give system, google, cloudflare or IP:PORT")
            }),
        }
    }
}

/// How long one lookup may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// The client's resolver.
pub struct DnsResolver {
    resolver: Resolver<TokioRuntimeProvider>,
}

/// A lookup's outcome: the addresses to dial, in the order given, and its record.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The addresses, in the answer's order.
    pub addrs: Vec<IpAddr>,
    /// What the report keeps of it.
    pub record: Lookup,
}

impl DnsResolver {
    /// A resolver for `spec`, holding answers at least `keep_stale`.
    pub fn new(spec: &ResolverSpec, keep_stale: Duration) -> anyhow::Result<DnsResolver> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = match spec {
            ResolverSpec::System => Resolver::builder_tokio().map_err(|e| {
                anyhow::anyhow!(
                    "--resolver system: cannot read the system's resolver configuration: {e}"
                )
            })?,
            ResolverSpec::Google => {
                Resolver::builder_with_config(ResolverConfig::udp_and_tcp(&GOOGLE), provider)
            }
            ResolverSpec::Cloudflare => {
                Resolver::builder_with_config(ResolverConfig::udp_and_tcp(&CLOUDFLARE), provider)
            }
            ResolverSpec::Server(addr) => {
                let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                for connection in &mut server.connections {
                    connection.port = addr.port();
                }
                let config = ResolverConfig::from_name_servers(vec![server]);
                Resolver::builder_with_config(config, provider)
            }
        };
        let options = builder.options_mut();
        options.timeout = LOOKUP_TIMEOUT;
        options.attempts = 1;
        if !keep_stale.is_zero() {
            options.positive_min_ttl = Some(keep_stale);
        }
        let resolver = builder
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the DNS resolver: {e}"))?;
        Ok(DnsResolver { resolver })
    }

    /// Looks `name` up (A and AAAA, then its version); a failed lookup is an
    /// answer with no address and the error in its record.
    pub async fn lookup(&self, name: &str) -> Answer {
        let at_ms = geolb_proto::now_ms();
        let began = Instant::now();
        let looked = tokio::time::timeout(LOOKUP_TIMEOUT * 2, self.resolver.lookup_ip(name)).await;
        let (addrs, ttl_s, error) = match looked {
            Ok(Ok(ip)) => {
                let ttl = ip.valid_until().saturating_duration_since(Instant::now());
                (
                    ip.iter().collect::<Vec<_>>(),
                    Some(ttl.as_secs() as u32),
                    None,
                )
            }
            Ok(Err(e)) => (Vec::new(), None, Some(format!("{name}: {e}"))),
            Err(_) => (
                Vec::new(),
                None,
                Some(format!("{name}: no answer in {:?}", LOOKUP_TIMEOUT * 2)),
            ),
        };
        let version = match error {
            None => self.version(name).await,
            Some(_) => None,
        };
        Answer {
            record: Lookup {
                at_ms,
                took_ms: began.elapsed().as_millis() as u64,
                answers: addrs.iter().map(IpAddr::to_string).collect(),
                ttl_s,
                version,
                error,
            },
            addrs,
        }
    }

    /// The answer's version, from a `"geolb-version=N"` TXT record.
    async fn version(&self, name: &str) -> Option<u64> {
        let txt = tokio::time::timeout(LOOKUP_TIMEOUT, self.resolver.lookup(name, RecordType::TXT));
        let lookup = txt.await.ok()?.ok()?;
        lookup
            .answers()
            .iter()
            .find_map(|record| match &record.data {
                RData::TXT(txt) => {
                    let text: String = txt
                        .txt_data
                        .iter()
                        .map(|d| String::from_utf8_lossy(d).to_string())
                        .collect();
                    text.strip_prefix("geolb-version=")?.parse().ok()
                }
                _ => None,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_resolvers() {
        assert_eq!("system".parse(), Ok(ResolverSpec::System));
        assert_eq!("google".parse(), Ok(ResolverSpec::Google));
        assert_eq!("cloudflare".parse(), Ok(ResolverSpec::Cloudflare));
        assert_eq!(
            "127.0.0.1:5300".parse(),
            Ok(ResolverSpec::Server("127.0.0.1:5300".parse().unwrap()))
        );
        assert!(
            "8.8.8.8".parse::<ResolverSpec>().is_err(),
            "a port is needed"
        );
        assert!("nowhere:53".parse::<ResolverSpec>().is_err());
    }
}
