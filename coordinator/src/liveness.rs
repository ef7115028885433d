//! Whether an agent is alive, judged from the age of its last heartbeat.
//!
//! The age is the local clock minus the heartbeat's `at_ms` (the agent's
//! clock), so clock skew between hosts shifts it; a heartbeat from the
//! future counts as age 0.

use serde::Serialize;
use std::fmt;

/// Interval assumed when a heartbeat says 0.
pub const DEFAULT_INTERVAL_MS: u64 = 1_000;

/// An agent's liveness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    /// Heard from within 3 intervals.
    Live,
    /// Heard from within 10 intervals.
    Stale,
    /// Not heard from for more than 10 intervals.
    Lost,
}

impl Liveness {
    /// The liveness as a word.
    pub fn as_str(self) -> &'static str {
        match self {
            Liveness::Live => "live",
            Liveness::Stale => "stale",
            Liveness::Lost => "lost",
        }
    }

    /// Whether commands should still be sent to the agent (`live` or `stale`).
    pub fn reachable(self) -> bool {
        self != Liveness::Lost
    }
}

impl fmt::Display for Liveness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Classifies a heartbeat `age_ms` old from an agent beating every `interval_ms`.
pub fn classify(age_ms: u64, interval_ms: u64) -> Liveness {
    let interval = if interval_ms == 0 {
        DEFAULT_INTERVAL_MS
    } else {
        interval_ms
    };
    if age_ms <= interval.saturating_mul(3) {
        Liveness::Live
    } else if age_ms <= interval.saturating_mul(10) {
        Liveness::Stale
    } else {
        Liveness::Lost
    }
}

/// Age of a heartbeat sent at `at_ms`, seen at `now_ms` (0 if from the future).
pub fn age_ms(at_ms: u64, now_ms: u64) -> u64 {
    now_ms.saturating_sub(at_ms)
}

/// A short human age: `0.4s`, `42s`, `7m`, `3h`, `2d`.
pub fn format_age(age_ms: u64) -> String {
    let secs = age_ms / 1000;
    match age_ms {
        ms if ms < 10_000 => format!("{:.1}s", ms as f64 / 1000.0),
        ms if ms < 120_000 => format!("{secs}s"),
        ms if ms < 2 * 3_600_000 => format!("{}m", secs / 60),
        ms if ms < 2 * 86_400_000 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_multiples_of_the_interval() {
        use Liveness::*;
        let cases = [
            (0, 1000, Live),
            (3000, 1000, Live),
            (3001, 1000, Stale),
            (10_000, 1000, Stale),
            (10_001, 1000, Lost),
            (u64::MAX, 1000, Lost),
            (500, 100, Stale),
            (1100, 100, Lost),
            (2999, 0, Live),
            (3001, 0, Stale),
            (u64::MAX, u64::MAX, Live),
        ];
        for (age, interval, want) in cases {
            assert_eq!(
                classify(age, interval),
                want,
                "age {age} interval {interval}"
            );
        }
        assert!(Stale.reachable() && Live.reachable() && !Lost.reachable());
    }

    #[test]
    fn ages_never_go_negative() {
        assert_eq!(age_ms(1000, 1500), 500);
        assert_eq!(age_ms(2000, 1500), 0);
    }

    #[test]
    fn formats_ages_briefly() {
        let cases = [
            (0, "0.0s"),
            (420, "0.4s"),
            (9_999, "10.0s"),
            (42_000, "42s"),
            (420_000, "7m"),
            (3 * 3_600_000, "3h"),
            (3 * 86_400_000, "3d"),
        ];
        for (ms, want) in cases {
            assert_eq!(format_age(ms), want, "{ms}");
        }
    }
}
