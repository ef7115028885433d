//! Restart backoff: exponential, with jitter, capped.

use std::time::Duration;

/// How long to wait before restarting a child that exited on its own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the first restart.
    pub min: Duration,
    /// Cap on any delay, jitter included.
    pub max: Duration,
    /// Growth per attempt (values under 1 count as 1).
    pub factor: f64,
    /// Relative jitter: 0.2 spreads a delay over ±20 %.
    pub jitter: f64,
    /// A child that ran at least this long starts again from attempt 1.
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            min: Duration::from_millis(200),
            max: Duration::from_secs(30),
            factor: 2.0,
            jitter: 0.2,
            reset_after: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The delay before restart `attempt` (from 1; 0 counts as 1), given a
    /// random number in `[0, 1]` (0.5 means no jitter). Never above `max`.
    pub fn delay(&self, attempt: u32, rand01: f64) -> Duration {
        let factor = if self.factor.is_finite() {
            self.factor.max(1.0)
        } else {
            1.0
        };
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let rand01 = if rand01.is_finite() {
            rand01.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let exponent = i32::try_from(attempt.max(1) - 1).unwrap_or(i32::MAX);
        let base = self.min.as_secs_f64() * factor.powi(exponent);
        let jittered = base * (1.0 + jitter * (2.0 * rand01 - 1.0));
        Duration::try_from_secs_f64(jittered)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn delays_grow_jitter_and_cap() {
        let b = Backoff::default();
        let cases = [
            (0, 0.5, ms(200)),
            (1, 0.5, ms(200)),
            (2, 0.5, ms(400)),
            (3, 0.5, ms(800)),
            (4, 0.5, ms(1600)),
            (1, 0.0, ms(160)),
            (1, 1.0, ms(240)),
            (3, 0.0, ms(640)),
            (3, 1.0, ms(960)),
            (8, 0.5, ms(25_600)),
            (8, 1.0, ms(30_000)),
            (9, 0.5, ms(30_000)),
            (40, 0.0, ms(30_000)),
            (u32::MAX, 0.5, ms(30_000)),
            (1, -3.0, ms(160)),
            (1, 7.0, ms(240)),
            (1, f64::NAN, ms(200)),
        ];
        for (attempt, rand, want) in cases {
            let got = b.delay(attempt, rand);
            let diff = got.abs_diff(want);
            assert!(
                diff < ms(1),
                "attempt {attempt} rand {rand}: {got:?} != {want:?}"
            );
        }
    }

    #[test]
    fn odd_settings_do_not_panic() {
        let odd = [
            Backoff {
                factor: f64::NAN,
                ..Backoff::default()
            },
            Backoff {
                factor: 0.1,
                ..Backoff::default()
            },
            Backoff {
                factor: f64::INFINITY,
                ..Backoff::default()
            },
            Backoff {
                jitter: 5.0,
                ..Backoff::default()
            },
            Backoff {
                jitter: f64::NAN,
                ..Backoff::default()
            },
            Backoff {
                min: Duration::ZERO,
                ..Backoff::default()
            },
            Backoff {
                max: Duration::ZERO,
                ..Backoff::default()
            },
        ];
        for b in odd {
            for attempt in [0, 1, 2, 50, u32::MAX] {
                for rand in [0.0, 0.5, 1.0] {
                    assert!(b.delay(attempt, rand) <= b.max, "{b:?} {attempt} {rand}");
                }
            }
        }
        let flat = Backoff {
            factor: 0.1,
            jitter: 0.0,
            ..Backoff::default()
        };
        assert_eq!(flat.delay(5, 0.5), ms(200));
    }
}
