//! Which servers an answer lists, in which order: a pure function of the
//! policy, the client's region, the servers' health and the latency
//! matrix, table-tested.
//!
//! With nothing healthy anywhere the GeoDNS fails open as Route 53 does: it
//! "considers all the records in the group to be healthy" and applies the
//! policy to all of them.

use geolb_proto::routing::dns::DnsPolicy;
use geolb_proto::routing::{nearest_first, RttMatrix};

/// One server as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// Its region.
    pub region: &'a str,
    /// Up by the health checker.
    pub healthy: bool,
}

/// The servers (indices into `servers`, in answer order) a client of
/// `region` is given.
pub fn choose(
    policy: DnsPolicy,
    rtt: &RttMatrix,
    region: &str,
    servers: &[Candidate<'_>],
) -> Vec<usize> {
    let healthy: Vec<usize> = (0..servers.len()).filter(|&i| servers[i].healthy).collect();
    let pool: Vec<usize> = match healthy.is_empty() {
        true => (0..servers.len()).collect(),
        false => healthy,
    };
    let regions = nearest_first(rtt, region, pool.iter().map(|&i| servers[i].region));
    let take = match policy {
        DnsPolicy::NearestOnly => regions.len().min(1),
        DnsPolicy::NearestFirst => regions.len(),
    };
    regions[..take]
        .iter()
        .flat_map(|r| {
            pool.iter()
                .copied()
                .filter(move |&i| servers[i].region == *r)
        })
        .collect()
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

    /// Servers lon-1 lon-2 ams-1 ams-2 dfw-1, healthy where `health` says u.
    fn servers(health: &str) -> Vec<Candidate<'static>> {
        ["lon", "lon", "ams", "ams", "dfw"]
            .iter()
            .zip(health.chars())
            .map(|(region, h)| Candidate {
                region,
                healthy: h == 'u',
            })
            .collect()
    }

    #[test]
    fn answers_by_policy_region_and_health() {
        use DnsPolicy::{NearestFirst as First, NearestOnly as Only};
        let rtt = matrix();
        let cases: [(DnsPolicy, &str, &str, &[usize]); 12] = [
            (Only, "lon", "uuuuu", &[0, 1]),
            (Only, "ams", "uuuuu", &[2, 3]),
            (Only, "dfw", "uuuuu", &[4]),
            (Only, "lon", "duuuu", &[1]),
            (Only, "lon", "dduuu", &[2, 3]),
            (Only, "dfw", "uuuud", &[0, 1]),
            (Only, "lon", "ddddd", &[0, 1]),
            (First, "lon", "uuuuu", &[0, 1, 2, 3, 4]),
            (First, "dfw", "uuuuu", &[4, 0, 1, 2, 3]),
            (First, "ams", "dduud", &[2, 3]),
            (First, "lon", "ddddd", &[0, 1, 2, 3, 4]),
            (Only, "syd", "uuuuu", &[2, 3]),
        ];
        for (policy, region, health, want) in cases {
            let got = choose(policy, &rtt, region, &servers(health));
            assert_eq!(got, want, "{policy} {region} {health}");
        }
    }
}
