//! One batch of telemetry: consecutive stream messages turned into NDJSON
//! lines, gzip'ed as they come into one object per kind (pure: no I/O).
//!
//! Where a batch ends depends only on the messages, never on the clock of
//! the archiver, except for the flush timer and shutdown: a batch never
//! spans two `dt=`/`hour=` partitions of the messages' stream timestamps,
//! nor more than `max_age` of them, nor more than `max_bytes` of NDJSON or
//! `max_messages`. A batch given a `forced_end` (the range of objects a
//! crashed run stored without acknowledging) ends exactly there, so its
//! objects are written again, byte for byte, under the same keys.

use super::layout::{self, Kind, Partition};
use super::url::S3Url;
use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

/// When a batch is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// NDJSON bytes (before gzip) at most.
    pub max_bytes: usize,
    /// Messages at most (it bounds the consumer's pending acknowledgements).
    pub max_messages: usize,
    /// Span of the messages' stream timestamps at most.
    pub max_age: Duration,
}

/// A stream message as the archiver keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Stream sequence.
    pub seq: u64,
    /// Subject it was published on.
    pub subject: String,
    /// When the stream stored it, ms since the epoch.
    pub time_ms: u64,
    /// What was published.
    pub payload: Bytes,
}

/// One encoded NDJSON line and what the batch needs to know of it.
#[derive(Debug, Clone)]
pub struct Line {
    seq: u64,
    kind: Kind,
    time_ms: u64,
    partition: Partition,
    text: Vec<u8>,
}

impl Line {
    /// Encodes `record`: `{"seq","time","subject","kind","region","agent","data"}`,
    /// `data` being the payload's JSON as published (compacted if it spans
    /// lines), or `data_base64` when the payload is not JSON.
    pub fn encode(record: &Record) -> Line {
        let kind = Kind::of(&record.subject);
        let mut tokens = record.subject.split('.').skip(2);
        let (region, agent) = match kind {
            Kind::Other => (None, None),
            _ => (tokens.next(), tokens.next()),
        };
        let mut text = format!(
            "{{\"seq\":{},\"time\":\"{}\",\"subject\":{},\"kind\":\"{}\"",
            record.seq,
            crate::report::rfc3339(record.time_ms),
            json_string(&record.subject),
            kind.as_str()
        );
        if let (Some(region), Some(agent)) = (region, agent) {
            text.push_str(&format!(
                ",\"region\":{},\"agent\":{}",
                json_string(region),
                json_string(agent)
            ));
        }
        match data(&record.payload) {
            Some(json) => text.push_str(&format!(",\"data\":{json}}}\n")),
            None => text.push_str(&format!(
                ",\"data_base64\":\"{}\"}}\n",
                data_encoding::BASE64.encode(&record.payload)
            )),
        }
        Line {
            seq: record.seq,
            kind,
            time_ms: record.time_ms,
            partition: Partition::of_ms(record.time_ms),
            text: text.into_bytes(),
        }
    }

    /// Its stream sequence.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

/// The payload as one line of JSON, or `None` when it is not JSON.
fn data(payload: &[u8]) -> Option<String> {
    let raw: &RawValue = serde_json::from_slice(payload).ok()?;
    let text = raw.get();
    if text.contains(['\n', '\r']) {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        return serde_json::to_string(&value).ok();
    }
    Some(text.to_string())
}

/// One stored object of a finished batch.
#[derive(Debug, Clone)]
pub struct Object {
    /// Its key.
    pub key: String,
    /// Its kind.
    pub kind: Kind,
    /// The gzip'ed NDJSON.
    pub body: Bytes,
    /// Lines in it.
    pub messages: usize,
    /// NDJSON bytes before gzip.
    pub ndjson_bytes: usize,
}

struct Part {
    gz: GzEncoder<Vec<u8>>,
    messages: usize,
    ndjson_bytes: usize,
}

/// Consecutive messages of one partition, gzip'ed per kind as they come.
pub struct Batch {
    first: u64,
    last: u64,
    first_time_ms: u64,
    partition: Partition,
    ndjson_bytes: usize,
    messages: usize,
    forced_end: Option<u64>,
    limits: Limits,
    parts: BTreeMap<Kind, Part>,
}

impl Batch {
    /// A batch starting with `line`; with `forced_end`, one ending at that sequence.
    pub fn start(line: Line, limits: Limits, forced_end: Option<u64>) -> Batch {
        let mut batch = Batch {
            first: line.seq,
            last: line.seq,
            first_time_ms: line.time_ms,
            partition: line.partition.clone(),
            ndjson_bytes: 0,
            messages: 0,
            forced_end,
            limits,
            parts: BTreeMap::new(),
        };
        batch.push(line);
        batch
    }

    /// Whether `line` belongs in this batch; `false` means: flush first.
    pub fn accepts(&self, line: &Line) -> bool {
        if let Some(end) = self.forced_end {
            return line.seq <= end;
        }
        line.partition == self.partition
            && line.time_ms < self.first_time_ms + self.limits.max_age.as_millis() as u64
            && self.ndjson_bytes + line.text.len() <= self.limits.max_bytes
            && self.messages < self.limits.max_messages
    }

    /// Adds `line` (after [`Batch::accepts`]).
    pub fn push(&mut self, line: Line) {
        let part = self.parts.entry(line.kind).or_insert_with(|| Part {
            gz: GzEncoder::new(Vec::new(), Compression::default()),
            messages: 0,
            ndjson_bytes: 0,
        });
        part.gz
            .write_all(&line.text)
            .expect("writing to memory cannot fail");
        part.messages += 1;
        part.ndjson_bytes += line.text.len();
        self.ndjson_bytes += line.text.len();
        self.messages += 1;
        self.last = line.seq;
    }

    /// Whether it must be flushed now, without waiting for the next message.
    pub fn is_full(&self) -> bool {
        match self.forced_end {
            Some(end) => self.last >= end,
            None => {
                self.ndjson_bytes >= self.limits.max_bytes
                    || self.messages >= self.limits.max_messages
            }
        }
    }

    /// First and last stream sequence.
    pub fn range(&self) -> (u64, u64) {
        (self.first, self.last)
    }

    /// Messages held.
    pub fn messages(&self) -> usize {
        self.messages
    }

    /// The gzip'ed objects, one per kind, keyed under `url`.
    pub fn finish(self, url: &S3Url) -> Vec<Object> {
        let (first, last, partition) = (self.first, self.last, self.partition);
        self.parts
            .into_iter()
            .map(|(kind, part)| Object {
                key: layout::telemetry_key(url, kind, &partition, first, last),
                kind,
                body: Bytes::from(part.gz.finish().expect("gzip to memory cannot fail")),
                messages: part.messages,
                ndjson_bytes: part.ndjson_bytes,
            })
            .collect()
    }
}

/// The JSON lines of a gzip'ed NDJSON object (for readers and tests).
pub fn decode(body: &[u8]) -> std::io::Result<Vec<serde_json::Value>> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(body), &mut text)?;
    text.lines()
        .map(|line| serde_json::from_str(line).map_err(std::io::Error::other))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_796_137_000_000; // 2026-12-01T14:56:40Z

    fn record(seq: u64, subject: &str, time_ms: u64, payload: &str) -> Line {
        Line::encode(&Record {
            seq,
            subject: subject.into(),
            time_ms,
            payload: Bytes::from(payload.to_string()),
        })
    }

    fn limits() -> Limits {
        Limits {
            max_bytes: 10 << 20,
            max_messages: 1000,
            max_age: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_line_keeps_the_payload_as_published() {
        let line = record(7, "geolb.evt.lon.lon-1", T0, r#"{"v":1,"kind":"started"}"#);
        let text = String::from_utf8(line.text.clone()).unwrap();
        assert_eq!(
            text,
            "{\"seq\":7,\"time\":\"2026-12-01T14:56:40.000Z\",\"subject\":\"geolb.evt.lon.lon-1\",\"kind\":\"event\",\"region\":\"lon\",\"agent\":\"lon-1\",\"data\":{\"v\":1,\"kind\":\"started\"}}\n"
        );
        let pretty = record(8, "geolb.hb.lon.a", T0, "{\n  \"v\": 1\n}");
        let value: serde_json::Value = serde_json::from_slice(&pretty.text).unwrap();
        assert_eq!(value["data"], serde_json::json!({"v": 1}));
        assert_eq!(pretty.text.iter().filter(|b| **b == b'\n').count(), 1);
        let binary = record(9, "odd", T0, "not json");
        let value: serde_json::Value = serde_json::from_slice(&binary.text).unwrap();
        assert_eq!(value["data_base64"], "bm90IGpzb24=");
        assert_eq!(value["kind"], "other");
        assert!(value.get("region").is_none());
    }

    #[test]
    fn a_batch_never_spans_two_hours_or_its_limits() {
        let batch = Batch::start(record(1, "geolb.hb.a.b", T0, "{}"), limits(), None);
        // 14:56:40 + 3 min is past 15:00.
        assert!(!batch.accepts(&record(2, "geolb.hb.a.b", T0 + 180_000, "{}")));
        assert!(!batch.accepts(&record(2, "geolb.hb.a.b", T0 + 60_000, "{}")));
        assert!(batch.accepts(&record(2, "geolb.hb.a.b", T0 + 59_999, "{}")));
        let small = Limits {
            max_messages: 2,
            ..limits()
        };
        let mut batch = Batch::start(record(1, "geolb.hb.a.b", T0, "{}"), small, None);
        assert!(!batch.is_full());
        batch.push(record(2, "geolb.evt.a.b", T0, "{}"));
        assert!(batch.is_full());
        assert!(!batch.accepts(&record(3, "geolb.hb.a.b", T0, "{}")));
    }

    #[test]
    fn a_forced_end_overrides_the_other_limits() {
        let tiny = Limits {
            max_messages: 1,
            ..limits()
        };
        let mut batch = Batch::start(record(5, "geolb.hb.a.b", T0, "{}"), tiny, Some(7));
        let next = record(6, "geolb.hb.a.b", T0 + 3_600_000, "{}");
        assert!(batch.accepts(&next));
        batch.push(next);
        assert!(!batch.is_full());
        batch.push(record(7, "geolb.hb.a.b", T0, "{}"));
        assert!(batch.is_full());
        assert!(!batch.accepts(&record(8, "geolb.hb.a.b", T0, "{}")));
    }

    #[test]
    fn finishing_writes_one_object_per_kind_under_the_batch_range() {
        let url: S3Url = "s3://geolb/lab".parse().unwrap();
        let build = || {
            let mut batch =
                Batch::start(record(3, "geolb.hb.a.b", T0, r#"{"n":3}"#), limits(), None);
            batch.push(record(4, "geolb.evt.a.b", T0, r#"{"n":4}"#));
            batch.push(record(6, "geolb.hb.a.b", T0, r#"{"n":6}"#));
            batch.finish(&url)
        };
        let objects = build();
        let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "lab/v1/telemetry/kind=heartbeat/dt=2026-12-01/hour=14/00000000000000000003-00000000000000000006.ndjson.gz",
                "lab/v1/telemetry/kind=event/dt=2026-12-01/hour=14/00000000000000000003-00000000000000000006.ndjson.gz",
            ]
        );
        let lines = decode(&objects[0].body).unwrap();
        let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, [3, 6]);
        assert_eq!(lines[1]["data"]["n"], 6);
        let again = build();
        assert_eq!(
            objects[0].body, again[0].body,
            "the same batch gzips to the same bytes"
        );
    }
}
