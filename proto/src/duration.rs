//! Durations on the wire: a string such as `"1500ms"` or `"2s"`, or a whole
//! number of milliseconds. Negative values are refused.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::time::Duration;

/// A non-negative duration, written as a human string and read from either form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct WireDuration(pub Duration);

impl WireDuration {
    /// A duration of `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        WireDuration(Duration::from_millis(ms))
    }
}

impl From<Duration> for WireDuration {
    fn from(d: Duration) -> Self {
        WireDuration(d)
    }
}

impl std::fmt::Display for WireDuration {
    /// Whole milliseconds as `"250ms"`; finer durations exactly, in `us` or `ns`,
    /// so that every duration reads back as itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nanos = self.0.as_nanos();
        match (nanos % 1_000_000, nanos % 1_000) {
            (0, _) => write!(f, "{}ms", nanos / 1_000_000),
            (_, 0) => write!(f, "{}us", nanos / 1_000),
            _ => write!(f, "{nanos}ns"),
        }
    }
}

impl std::str::FromStr for WireDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s).map(WireDuration)
    }
}

/// Parses `"250ms"`, `"2s"`, `"1m"` or a bare number of milliseconds.
pub fn parse(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.starts_with('-') {
        return Err(format!(
            "duration {s:?} is negative; use a value of 0 or more"
        ));
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("duration {s:?} is not a number with a unit like 500ms, 2s or 1m"))?;
    let scale = match unit.trim() {
        "" | "ms" => 0.001,
        "us" | "µs" => 0.000_001,
        "ns" => 0.000_000_001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "duration {s:?} has unknown unit {other:?}; use ms, s, m or h (or us, ns)"
            ))
        }
    };
    // Whole numbers are converted exactly; only fractions go through floats.
    if let (Ok(whole), Some(nanos)) = (num.parse::<u64>(), unit_nanos(unit.trim())) {
        return whole
            .checked_mul(nanos)
            .filter(|n| *n <= 1_000_000_000 * 1_000_000_000)
            .map(Duration::from_nanos)
            .ok_or_else(|| format!("duration {s:?} is too large"));
    }
    let secs = value * scale;
    if !secs.is_finite() || secs > 1e9 {
        return Err(format!("duration {s:?} is too large"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Nanoseconds in one `unit`.
fn unit_nanos(unit: &str) -> Option<u64> {
    Some(match unit {
        "" | "ms" => 1_000_000,
        "us" | "µs" => 1_000,
        "ns" => 1,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

impl Serialize for WireDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for WireDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Millis(i64),
            Float(f64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Millis(ms) if ms < 0 => Err(de::Error::custom(format!(
                "duration {ms} is negative; use a value of 0 or more"
            ))),
            Raw::Millis(ms) => parse(&format!("{ms}ms"))
                .map(WireDuration)
                .map_err(de::Error::custom),
            Raw::Float(ms) => parse(&format!("{ms}ms"))
                .map(WireDuration)
                .map_err(de::Error::custom),
            Raw::Text(s) => parse(&s).map(WireDuration).map_err(de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        let cases = [
            ("250ms", 250),
            ("2s", 2000),
            ("1.5s", 1500),
            ("1m", 60_000),
            ("40", 40),
            (" 3s ", 3000),
        ];
        for (text, ms) in cases {
            assert_eq!(parse(text).unwrap(), Duration::from_millis(ms), "{text}");
        }
    }

    #[test]
    fn refuses_negative_and_garbage() {
        for bad in ["-1s", "-5", "abc", "5 parsecs", "", "1e400s"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<WireDuration>("-5").is_err());
        assert!(serde_json::from_str::<WireDuration>("\"-5s\"").is_err());
    }

    #[test]
    fn round_trips_as_milliseconds_text() {
        let d = WireDuration::from_millis(1500);
        let text = serde_json::to_string(&d).unwrap();
        assert_eq!(text, "\"1500ms\"");
        assert_eq!(serde_json::from_str::<WireDuration>(&text).unwrap(), d);
        assert_eq!(serde_json::from_str::<WireDuration>("1500").unwrap(), d);
    }

    #[test]
    fn finer_durations_round_trip_exactly() {
        // Found by the fuzz test: 1 us was written "0ms" and read back as 0.
        for (d, text) in [
            (Duration::from_micros(1), "\"1us\""),
            (Duration::from_nanos(1_500), "\"1500ns\""),
            (Duration::from_micros(1_500), "\"1500us\""),
            (Duration::from_millis(2), "\"2ms\""),
            (Duration::ZERO, "\"0ms\""),
        ] {
            let json = serde_json::to_string(&WireDuration(d)).unwrap();
            assert_eq!(json, text);
            assert_eq!(serde_json::from_str::<WireDuration>(&json).unwrap().0, d);
        }
    }

    #[test]
    fn whole_numbers_are_exact_and_bounded() {
        // Found by `make fuzz`: 15921499151 ms came back as 15921499.150999999 s.
        let d = WireDuration::from_millis(15_921_499_151);
        let text = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<WireDuration>(&text).unwrap(), d);
        assert_eq!(
            serde_json::from_str::<WireDuration>("15921499151").unwrap(),
            d
        );
        assert!(parse("99999999999999999999h").is_err());
        assert!(serde_json::from_str::<WireDuration>(&i64::MAX.to_string()).is_err());
    }
}
