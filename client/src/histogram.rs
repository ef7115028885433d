//! A log-linear latency histogram in microseconds: exact below 16 µs, then
//! 16 sub-buckets per power of two (at most about 3 % error), fixed size
//! whatever the range. The maximum is kept exactly.

use geolb_proto::client::Percentiles;

const SUB: u32 = 16;
const BUCKETS: usize = (SUB + (64 - 4) * SUB) as usize;

/// Counts of latencies.
#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn index(us: u64) -> usize {
    if us < u64::from(SUB) {
        return us as usize;
    }
    let exp = 63 - us.leading_zeros();
    let mantissa = (us >> (exp - 4)) & u64::from(SUB - 1);
    (SUB + (exp - 4) * SUB) as usize + mantissa as usize
}

/// The middle of bucket `i`, in µs.
fn middle(i: usize) -> u64 {
    let i = i as u32;
    if i < SUB {
        return u64::from(i);
    }
    let exp = (i - SUB) / SUB + 4;
    let mantissa = u64::from((i - SUB) % SUB);
    let width = 1u64 << (exp - 4);
    (u64::from(SUB) + mantissa) * width + width / 2
}

impl Histogram {
    /// Records one latency.
    pub fn record(&mut self, us: u64) {
        self.counts[index(us)] += 1;
        self.total += 1;
        self.max = self.max.max(us);
    }

    /// Number of latencies recorded.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The latency at quantile `q` (0..=1), in µs; 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return middle(i).min(self.max);
            }
        }
        self.max
    }

    /// p50, p90, p99 and max, in ms.
    pub fn percentiles(&self) -> Percentiles {
        let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
        Percentiles {
            p50: ms(self.quantile(0.50)),
            p90: ms(self.quantile(0.90)),
            p99: ms(self.quantile(0.99)),
            max: ms(self.max),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_close() {
        let mut last = 0;
        for us in [
            0u64,
            1,
            15,
            16,
            17,
            31,
            32,
            100,
            999,
            1_000,
            123_456,
            10_000_000,
            u64::MAX / 2,
        ] {
            let i = index(us);
            assert!(i >= last, "{us}");
            last = i;
            let m = middle(i);
            let err = (m as f64 - us as f64).abs() / (us.max(1) as f64);
            assert!(err <= 0.035, "{us} -> {m} ({err})");
        }
        assert!(index(u64::MAX) < BUCKETS);
    }

    #[test]
    fn percentiles_of_known_distributions() {
        let mut h = Histogram::default();
        assert_eq!(h.percentiles(), Percentiles::default());
        for ms in 1..=100u64 {
            h.record(ms * 1000);
        }
        let p = h.percentiles();
        let near = |got: f64, want: f64| (got - want).abs() <= want * 0.035;
        assert!(near(p.p50, 50.0), "{p:?}");
        assert!(near(p.p90, 90.0), "{p:?}");
        assert!(near(p.p99, 99.0), "{p:?}");
        assert_eq!(p.max, 100.0);
        assert_eq!(h.len(), 100);

        let mut one = Histogram::default();
        one.record(7);
        assert_eq!(one.quantile(0.0), 7);
        assert_eq!(one.quantile(1.0), 7);

        let mut skew = Histogram::default();
        for _ in 0..99 {
            skew.record(500);
        }
        skew.record(2_000_000);
        assert!(near(skew.percentiles().p99, 0.5));
        assert_eq!(skew.percentiles().max, 2000.0);
    }
}
