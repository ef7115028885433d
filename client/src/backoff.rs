//! Jittered exponential backoff for dialling servers that do not answer:
//! the delay doubles from `min` to `max`, and each wait is drawn uniformly
//! from its upper half, so a thousand clients cut off together do not come
//! back in lockstep.

use std::time::Duration;

/// Delays before the next attempt.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// A backoff from `min` to `max` (`max` is raised to `min` if smaller).
    pub fn new(min: Duration, max: Duration) -> Backoff {
        let min = min.max(Duration::from_millis(1));
        Backoff {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    /// The ceiling of the next delay, without jitter.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32 << self.attempt.min(20);
        self.min.saturating_mul(factor).min(self.max)
    }

    /// The next delay: uniform in [ceiling / 2, ceiling]; the ceiling doubles.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        half + half.mul_f64(fastrand::f64())
    }

    /// Starts again from `min` (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn doubles_up_to_the_cap() {
        let mut b = Backoff::new(MS(250), MS(5000));
        let ceilings: Vec<u64> = (0..8)
            .map(|_| {
                let c = b.ceiling().as_millis() as u64;
                b.next_delay();
                c
            })
            .collect();
        assert_eq!(ceilings, [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
        b.reset();
        assert_eq!(b.ceiling(), MS(250));
    }

    #[test]
    fn delays_are_jittered_within_the_upper_half() {
        let cases = [(MS(250), MS(5000)), (MS(1), MS(1)), (MS(100), MS(10))];
        for (min, max) in cases {
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..50 {
                let mut b = Backoff::new(min, max);
                let ceiling = b.ceiling();
                let d = b.next_delay();
                assert!(d >= ceiling / 2 && d <= ceiling, "{d:?} of {ceiling:?}");
                seen.insert(d);
            }
            assert!(min < MS(10) || seen.len() > 1, "no jitter for {min:?}");
        }
    }
}
