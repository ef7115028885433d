//! A delay distribution given by a few of its quantiles, interpolated
//! log-linearly between them (a piecewise log-uniform distribution) and
//! extrapolated with the slope of the nearest segment beyond them. Three
//! published points (BGP convergence: median 3 s, 80th percentile 10 s,
//! 99th 120 s) are met exactly, which a log-normal cannot do (fitted on the
//! median and the 80th percentile, its 99th is 83 s).

use crate::WireDuration;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One point of a distribution: `p` of the draws are at most `value`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quantile {
    /// The probability, 0 to 1.
    pub p: f64,
    /// The delay at that probability.
    pub value: WireDuration,
}

/// A distribution of delays by its quantiles, in increasing order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Quantiles(pub Vec<Quantile>);

fn q(p: f64, ms: u64) -> Quantile {
    Quantile {
        p,
        value: WireDuration::from_millis(ms),
    }
}

impl Quantiles {
    /// Withdrawal convergence of BGP anycast: median 3 s, 80th percentile
    /// 10 s, 99th 120 s (ANRW 2024: ~80 % of the Internet within ~10 s;
    /// tails of minutes, Labovitz et al. 2000).
    pub fn bgp_convergence() -> Quantiles {
        Quantiles(vec![q(0.5, 3_000), q(0.8, 10_000), q(0.99, 120_000)])
    }

    /// How long past its TTL a client that ignores TTLs keeps an old answer:
    /// with a 20 s TTL, 90 % of clients moved within 60 s and 2 % still used
    /// the old answer after 15 minutes (Flavel et al., LANMAN 2014), so the
    /// 10 % that keep it do so for at least 40 s past the TTL, and a fifth
    /// of them (2 % of all) for more than 880 s.
    pub fn stale_dns() -> Quantiles {
        Quantiles(vec![q(0.0, 40_000), q(0.8, 880_000)])
    }

    /// Why these points make no distribution, if they do not.
    pub fn validate(&self) -> Result<(), String> {
        if self.0.len() < 2 {
            return Err("give at least two quantiles".into());
        }
        for (i, point) in self.0.iter().enumerate() {
            if !(0.0..=1.0).contains(&point.p) {
                return Err(format!("p = {} is not between 0 and 1", point.p));
            }
            if point.value.0.is_zero() {
                return Err(format!("the delay at p = {} is 0; use more", point.p));
            }
            if let Some(before) = i.checked_sub(1).map(|j| self.0[j]) {
                if point.p <= before.p || point.value.0 <= before.value.0 {
                    return Err(format!(
                        "quantiles must grow: p = {} ({}) after p = {} ({})",
                        point.p, point.value, before.p, before.value
                    ));
                }
            }
        }
        Ok(())
    }

    /// The delay at probability `u` (0 to 1): `u` uniform gives a draw.
    /// The points must be valid.
    pub fn at(&self, u: f64) -> Duration {
        let u = u.clamp(0.0, 1.0);
        let points = &self.0;
        let n = points.len();
        let segment = (1..n).find(|&i| u <= points[i].p).unwrap_or(n - 1);
        let (a, b) = (points[segment - 1], points[segment]);
        let (la, lb) = (secs(a).ln(), secs(b).ln());
        let slope = (lb - la) / (b.p - a.p);
        Duration::from_secs_f64((la + slope * (u - a.p)).exp())
    }
}

fn secs(q: Quantile) -> f64 {
    q.value.0.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The empirical quantile `p` of sorted draws.
    fn empirical(sorted: &[Duration], p: f64) -> f64 {
        sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64()
    }

    #[test]
    fn meets_its_points_exactly() {
        let d = Quantiles::bgp_convergence();
        let cases = [(0.5, 3.0), (0.8, 10.0), (0.99, 120.0)];
        for (p, want) in cases {
            let got = d.at(p).as_secs_f64();
            assert!((got - want).abs() < 1e-6, "p {p}: {got} s, want {want} s");
        }
        // Between and beyond: log-linear.
        let mid = d.at(0.65).as_secs_f64();
        assert!((mid - (3.0f64 * 10.0).sqrt()).abs() < 1e-6, "{mid}");
        assert!(d.at(0.0) < d.at(0.1) && d.at(0.0) > Duration::from_millis(300));
        assert!(d.at(1.0) > Duration::from_secs(120) && d.at(1.0) < Duration::from_secs(140));
    }

    #[test]
    fn seeded_draws_match_the_quantiles() {
        let table = [
            (
                Quantiles::bgp_convergence(),
                vec![(0.5, 3.0), (0.8, 10.0), (0.99, 120.0)],
            ),
            (Quantiles::stale_dns(), vec![(0.01, 41.3), (0.8, 880.0)]),
        ];
        for (dist, points) in table {
            let mut rng = fastrand_like(42);
            let mut draws: Vec<Duration> = (0..100_000).map(|_| dist.at(rng())).collect();
            draws.sort();
            for (p, want) in points {
                let got = empirical(&draws, p);
                assert!(
                    (got / want - 1.0).abs() < 0.05,
                    "p {p}: {got} s, want {want} s"
                );
            }
        }
    }

    /// A small seeded uniform generator (xorshift), so proto needs no RNG crate.
    fn fastrand_like(seed: u64) -> impl FnMut() -> f64 {
        let mut s = seed | 1;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn bad_points_are_refused() {
        let cases = [
            (vec![q(0.5, 3000)], "at least two"),
            (vec![q(0.5, 3000), q(0.4, 4000)], "must grow"),
            (vec![q(0.5, 3000), q(0.8, 2000)], "must grow"),
            (vec![q(0.5, 0), q(0.8, 2000)], "is 0"),
            (vec![q(0.5, 3000), q(1.5, 4000)], "between 0 and 1"),
        ];
        for (points, want) in cases {
            let err = Quantiles(points).validate().unwrap_err();
            assert!(err.contains(want), "{err}");
        }
        assert!(Quantiles::bgp_convergence().validate().is_ok());
        assert!(Quantiles::stale_dns().validate().is_ok());
        let json = serde_json::to_string(&Quantiles::stale_dns()).unwrap();
        assert_eq!(
            json,
            r#"[{"p":0.0,"value":"40000ms"},{"p":0.8,"value":"880000ms"}]"#
        );
    }
}
