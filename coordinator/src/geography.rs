//! Where regions are, as the clients measure it: the round trip from the
//! clients living in one region to the servers of another, from the
//! candidates' RTTs the clients report. Nobody configures latencies on a
//! real fleet, so a client's expected region after a fault is the nearest
//! one by these measurements (pure).

use geolb_proto::client::ClientStatus;
use std::collections::BTreeMap;

/// Each region's best measured round trip, in ms, by one client.
pub fn best_by_region(status: &ClientStatus) -> BTreeMap<String, f64> {
    let mut best: BTreeMap<String, f64> = BTreeMap::new();
    for candidate in &status.candidates {
        let Some(rtt) = candidate.rtt_ms.filter(|r| r.is_finite() && *r >= 0.0) else {
            continue;
        };
        best.entry(candidate.region.clone())
            .and_modify(|b| *b = b.min(rtt))
            .or_insert(rtt);
    }
    best
}

/// Region-to-region round trips: for clients living in `from`, the median
/// over those clients of their best candidate in `to`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Geography {
    rtt_ms: BTreeMap<(String, String), f64>,
}

impl Geography {
    /// The geography the clients of `statuses` measured.
    pub fn measure<'a>(statuses: impl IntoIterator<Item = &'a ClientStatus>) -> Geography {
        let mut samples: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
        for status in statuses {
            for (to, rtt) in best_by_region(status) {
                samples
                    .entry((status.region.clone(), to))
                    .or_default()
                    .push(rtt);
            }
        }
        let rtt_ms = samples
            .into_iter()
            .map(|(pair, mut values)| {
                values.sort_by(f64::total_cmp);
                (pair, values[values.len() / 2])
            })
            .collect();
        Geography { rtt_ms }
    }

    /// The round trip from clients in `from` to servers in `to`, if measured.
    pub fn rtt_ms(&self, from: &str, to: &str) -> Option<f64> {
        self.rtt_ms
            .get(&(from.to_string(), to.to_string()))
            .copied()
    }

    /// Every measured pair.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str, f64)> {
        self.rtt_ms
            .iter()
            .map(|((a, b), rtt)| (a.as_str(), b.as_str(), *rtt))
    }

    /// The measured regions seen from `from`, nearest first.
    pub fn from_region(&self, from: &str) -> Vec<(String, f64)> {
        let mut row: Vec<(String, f64)> = self
            .rtt_ms
            .iter()
            .filter(|((a, _), _)| a == from)
            .map(|((_, b), rtt)| (b.clone(), *rtt))
            .collect();
        row.sort_by(|x, y| x.1.total_cmp(&y.1).then_with(|| x.0.cmp(&y.0)));
        row
    }
}

/// The region nearest to the client of `status` among those `allowed`, and
/// its round trip: by the client's own measurements, else (a client that
/// does not probe) by what the clients of its region measured.
pub fn nearest(
    status: &ClientStatus,
    allowed: impl Fn(&str) -> bool,
    geography: &Geography,
) -> Option<(String, f64)> {
    let own: Vec<(String, f64)> = best_by_region(status).into_iter().collect();
    let row = match own.iter().any(|(r, _)| allowed(r)) {
        true => own,
        false => geography.from_region(&status.region),
    };
    row.into_iter()
        .filter(|(region, _)| allowed(region))
        .min_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use geolb_proto::client::{Candidate, Traffic};

    fn status(client: &str, region: &str, rtts: &[(&str, Option<f64>)]) -> ClientStatus {
        ClientStatus {
            v: 1,
            at_ms: 0,
            client: client.into(),
            region: region.into(),
            strategy: "rtt".into(),
            server: None,
            candidates: rtts
                .iter()
                .map(|(r, rtt)| Candidate {
                    url: format!("nats://{r}"),
                    region: r.to_string(),
                    rtt_ms: *rtt,
                    samples: 3,
                    healthy: true,
                })
                .collect(),
            traffic: Traffic::default(),
            switches: 0,
            by_sender: Default::default(),
            connected_after_ms: None,
            routed: None,
            probe_rate: None,
            process_clients: None,
        }
    }

    #[test]
    fn a_client_takes_its_best_candidate_per_region() {
        let s = status(
            "c",
            "lon",
            &[
                ("lon", Some(0.7)),
                ("lon", Some(0.5)),
                ("ams", Some(8.4)),
                ("dfw", None),
                ("dfw", Some(f64::NAN)),
            ],
        );
        let best = best_by_region(&s);
        assert_eq!(best.get("lon"), Some(&0.5));
        assert_eq!(best.get("ams"), Some(&8.4));
        assert_eq!(best.get("dfw"), None);
    }

    #[test]
    fn the_geography_is_the_median_of_the_clients() {
        let clients = [
            status("a", "lon", &[("lon", Some(0.5)), ("ams", Some(8.0))]),
            status("b", "lon", &[("lon", Some(0.6)), ("ams", Some(9.0))]),
            status("c", "lon", &[("lon", Some(5.0)), ("ams", Some(30.0))]),
            status("d", "dfw", &[("lon", Some(105.0))]),
        ];
        let geo = Geography::measure(&clients);
        assert_eq!(geo.rtt_ms("lon", "ams"), Some(9.0));
        assert_eq!(geo.rtt_ms("lon", "lon"), Some(0.6));
        assert_eq!(geo.rtt_ms("dfw", "lon"), Some(105.0));
        assert_eq!(geo.rtt_ms("ams", "lon"), None);
        assert_eq!(
            geo.from_region("lon"),
            vec![("lon".to_string(), 0.6), ("ams".to_string(), 9.0)]
        );
    }

    #[test]
    fn nearest_excludes_the_failed_region_and_falls_back_to_the_region() {
        let geo = Geography::measure(&[status(
            "a",
            "lon",
            &[("lon", Some(0.5)), ("ams", Some(8.0)), ("dfw", Some(105.0))],
        )]);
        let own = status("b", "lon", &[("lon", Some(0.4)), ("dfw", Some(100.0))]);
        assert_eq!(
            nearest(&own, |r| r != "lon", &geo),
            Some(("dfw".to_string(), 100.0)),
            "its own measurements first, even if the region's say otherwise"
        );
        let stock = status("s", "lon", &[]);
        assert_eq!(
            nearest(&stock, |r| r != "lon", &geo),
            Some(("ams".to_string(), 8.0))
        );
        assert_eq!(nearest(&stock, |_| false, &geo), None);
    }
}
