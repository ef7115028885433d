//! Where the anycast router sends a connection: pure functions of the
//! announcements, the servers' health, the latency matrix and a hash of
//! the connection, table-tested.

use geolb_proto::routing::{nearest_first, RttMatrix};
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;

/// One server as routing sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// Its region.
    pub region: &'a str,
    /// Up by its site's checks.
    pub healthy: bool,
}

/// The site a vantage in `region` reaches: the nearest announcing region.
pub fn site<'a>(
    rtt: &RttMatrix,
    region: &str,
    announced: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    nearest_first(rtt, region, announced).first().copied()
}

/// BGP mode: the server of `site` a connection hashed to `hash` reaches
/// (ECMP inside the site over its healthy servers, over all of them when
/// none is healthy: the site still announces until it withdraws).
pub fn in_site(site: &str, servers: &[Candidate<'_>], hash: u64) -> Option<usize> {
    let local: Vec<usize> = (0..servers.len())
        .filter(|&i| servers[i].region == site)
        .collect();
    let healthy: Vec<usize> = local
        .iter()
        .copied()
        .filter(|&i| servers[i].healthy)
        .collect();
    let pool = if healthy.is_empty() { &local } else { &healthy };
    (!pool.is_empty()).then(|| pool[(hash % pool.len() as u64) as usize])
}

/// Proxy mode (Fly's edge): a healthy server of the vantage's own region,
/// else one of the nearest region that has a healthy server, else (nothing
/// healthy anywhere) any server of its own region.
pub fn proxied(
    rtt: &RttMatrix,
    region: &str,
    servers: &[Candidate<'_>],
    hash: u64,
) -> Option<usize> {
    let with_healthy = servers.iter().filter(|s| s.healthy).map(|s| s.region);
    match nearest_first(rtt, region, with_healthy).first() {
        Some(best) => in_site(best, servers, hash),
        None => in_site(region, servers, hash)
            .or_else(|| in_site(servers.first()?.region, servers, hash)),
    }
}

/// A hash of a connection (its source address and port), as ECMP hashes
/// the flow.
pub fn flow_hash(peer: SocketAddr) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    peer.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix() -> RttMatrix {
        serde_json::from_str(
            r#"{"lon":{"ams":8,"dfw":105},"ams":{"lon":8,"dfw":115},"dfw":{"lon":105,"ams":115}}"#,
        )
        .unwrap()
    }

    fn servers(health: &str) -> Vec<Candidate<'static>> {
        let regions = ["lon", "lon", "ams", "ams", "dfw", "dfw"];
        regions
            .iter()
            .zip(health.chars())
            .map(|(region, h)| Candidate {
                region,
                healthy: h == 'u',
            })
            .collect()
    }

    #[test]
    fn the_nearest_announcing_site() {
        let rtt = matrix();
        let cases = [
            ("lon", vec!["lon", "ams", "dfw"], Some("lon")),
            ("lon", vec!["ams", "dfw"], Some("ams")),
            ("dfw", vec!["lon", "ams"], Some("lon")),
            ("ams", vec!["dfw"], Some("dfw")),
            ("ams", vec![], None),
        ];
        for (from, announced, want) in cases {
            assert_eq!(
                site(&rtt, from, announced.clone()),
                want,
                "{from} {announced:?}"
            );
        }
    }

    #[test]
    fn servers_by_mode_health_and_hash() {
        let rtt = matrix();
        // (health of lon-1 lon-2 ams-1 ams-2 dfw-1 dfw-2, hash, bgp site lon, proxy from lon)
        let cases = [
            ("uuuuuu", 0, Some(0), Some(0)),
            ("uuuuuu", 1, Some(1), Some(1)),
            ("duuuuu", 0, Some(1), Some(1)),
            ("duuuuu", 7, Some(1), Some(1)),
            ("dduuuu", 0, Some(0), Some(2)),
            ("dduuuu", 1, Some(1), Some(3)),
            ("dddduu", 1, Some(1), Some(5)),
            ("dddddd", 1, Some(1), Some(1)),
        ];
        for (health, hash, bgp, proxy) in cases {
            let s = servers(health);
            assert_eq!(in_site("lon", &s, hash), bgp, "bgp {health} {hash}");
            assert_eq!(
                proxied(&rtt, "lon", &s, hash),
                proxy,
                "proxy {health} {hash}"
            );
        }
        assert_eq!(in_site("syd", &servers("uuuuuu"), 0), None);
    }

    #[test]
    fn flows_hash_apart() {
        let a = flow_hash("127.0.0.1:40000".parse().unwrap());
        let b = flow_hash("127.0.0.1:40001".parse().unwrap());
        assert_ne!(a, b);
        assert_eq!(a, flow_hash("127.0.0.1:40000".parse().unwrap()));
    }
}
