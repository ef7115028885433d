//! The archive's layout: Hive-style partitions of gzip'ed NDJSON that DuckDB,
//! pyarrow or Athena read directly (pure). Documented in `docs/archive.md`.
//!
//! ```text
//! PREFIX/v1/telemetry/kind=<kind>/dt=<YYYY-MM-DD>/hour=<HH>/<first-seq>-<last-seq>.ndjson.gz
//! PREFIX/v1/reports/dt=<YYYY-MM-DD>/scenario=<name>/<id>.json.gz
//! PREFIX/v1/runs/dt=<YYYY-MM-DD>/<id>.ndjson.gz
//! ```
//!
//! Sequences are the telemetry stream's, zero-padded to 20 digits so that
//! keys sort as numbers; `first-seq`-`last-seq` is the range of the whole
//! batch, shared by the objects of every kind it held, so a batch's keys are
//! known from its range alone and a retried upload overwrites itself.

use super::url::S3Url;

/// The layout's version, the first folder under the prefix.
pub const VERSION: &str = "v1";

/// What a telemetry message is, from its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `geolb.hb.<region>.<id>`.
    Heartbeat,
    /// `geolb.evt.<region>.<id>`.
    Event,
    /// `geolb.metrics.<region>.<id>`.
    Metrics,
    /// `geolb.client.<region>.<id>`.
    Client,
    /// Anything else the stream took.
    Other,
}

impl Kind {
    /// Every kind, in key order.
    pub const ALL: [Kind; 5] = [
        Kind::Heartbeat,
        Kind::Event,
        Kind::Metrics,
        Kind::Client,
        Kind::Other,
    ];

    /// The kind of a message on `subject`.
    pub fn of(subject: &str) -> Kind {
        match subject.split('.').nth(1) {
            Some("hb") if subject.starts_with("geolb.") => Kind::Heartbeat,
            Some("evt") if subject.starts_with("geolb.") => Kind::Event,
            Some("metrics") if subject.starts_with("geolb.") => Kind::Metrics,
            Some("client") if subject.starts_with("geolb.") => Kind::Client,
            _ => Kind::Other,
        }
    }

    /// Its name in keys and records: `heartbeat`, `event`, `metrics`, `client`, `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Heartbeat => "heartbeat",
            Kind::Event => "event",
            Kind::Metrics => "metrics",
            Kind::Client => "client",
            Kind::Other => "other",
        }
    }
}

/// The `dt=` and `hour=` of a time (UTC).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Partition {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// 0 to 23.
    pub hour: u8,
}

impl Partition {
    /// The partition of `ms` since the epoch.
    pub fn of_ms(ms: u64) -> Partition {
        let text = crate::report::rfc3339(ms);
        Partition {
            date: text[..10].to_string(),
            hour: text[11..13].parse().unwrap_or(0),
        }
    }
}

/// Key of one telemetry object: the batch `first..=last`, messages of `kind`.
pub fn telemetry_key(url: &S3Url, kind: Kind, at: &Partition, first: u64, last: u64) -> String {
    format!(
        "{}{first:020}-{last:020}.ndjson.gz",
        telemetry_folder(url, kind, at)
    )
}

/// Prefix of every telemetry object of the batch starting at `first` (any end).
pub fn batch_prefix(url: &S3Url, kind: Kind, at: &Partition, first: u64) -> String {
    format!("{}{first:020}-", telemetry_folder(url, kind, at))
}

fn telemetry_folder(url: &S3Url, kind: Kind, at: &Partition) -> String {
    url.key(&format!(
        "{VERSION}/telemetry/kind={}/dt={}/hour={:02}/",
        kind.as_str(),
        at.date,
        at.hour
    ))
}

/// Prefix of every telemetry object.
pub fn telemetry_root(url: &S3Url) -> String {
    url.key(&format!("{VERSION}/telemetry/"))
}

/// The batch range of a telemetry key, from its file name.
pub fn batch_range(key: &str) -> Option<(u64, u64)> {
    let name = key.rsplit('/').next()?.strip_suffix(".ndjson.gz")?;
    let (first, last) = name.split_once('-')?;
    Some((first.parse().ok()?, last.parse().ok()?))
}

/// Key of a report's JSON.
pub fn report_key(url: &S3Url, date: &str, scenario: &str, id: &str) -> String {
    url.key(&format!(
        "{VERSION}/reports/dt={date}/scenario={scenario}/{id}.json.gz"
    ))
}

/// Key of a run's row.
pub fn run_key(url: &S3Url, date: &str, id: &str) -> String {
    url.key(&format!("{VERSION}/runs/dt={date}/{id}.ndjson.gz"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> S3Url {
        "s3://geolb/lab".parse().unwrap()
    }

    #[test]
    fn kinds_come_from_subjects() {
        let cases = [
            ("geolb.hb.lon.lon-1", Kind::Heartbeat),
            ("geolb.evt.lon.lon-1", Kind::Event),
            ("geolb.metrics.ams.a", Kind::Metrics),
            ("geolb.client.dfw.d", Kind::Client),
            ("geolb.report.x", Kind::Other),
            ("other.hb.x", Kind::Other),
            ("", Kind::Other),
        ];
        for (subject, kind) in cases {
            assert_eq!(Kind::of(subject), kind, "{subject}");
        }
    }

    #[test]
    fn partitions_are_utc_days_and_hours() {
        // 2026-12-01T14:59:59.999Z and the next millisecond.
        let ms = 1_796_137_199_999;
        assert_eq!(
            Partition::of_ms(ms),
            Partition {
                date: "2026-12-01".into(),
                hour: 14
            }
        );
        assert_eq!(Partition::of_ms(ms + 1).hour, 15);
    }

    #[test]
    fn keys_are_hive_partitions() {
        let at = Partition {
            date: "2026-12-01".into(),
            hour: 4,
        };
        let key = telemetry_key(&url(), Kind::Event, &at, 7, 1234);
        assert_eq!(
            key,
            "lab/v1/telemetry/kind=event/dt=2026-12-01/hour=04/00000000000000000007-00000000000000001234.ndjson.gz"
        );
        assert!(key.starts_with(&batch_prefix(&url(), Kind::Event, &at, 7)));
        assert!(key.starts_with(&telemetry_root(&url())));
        assert_eq!(batch_range(&key), Some((7, 1234)));
        assert_eq!(batch_range("lab/v1/telemetry/x.json"), None);
        assert_eq!(
            report_key(&url(), "2026-12-01", "dc-outage", "r1"),
            "lab/v1/reports/dt=2026-12-01/scenario=dc-outage/r1.json.gz"
        );
        assert_eq!(
            run_key(&url(), "2026-12-01", "r1"),
            "lab/v1/runs/dt=2026-12-01/r1.ndjson.gz"
        );
        let bare: S3Url = "s3://geolb".parse().unwrap();
        assert_eq!(run_key(&bare, "d", "r"), "v1/runs/dt=d/r.ndjson.gz");
    }
}
