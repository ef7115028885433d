//! Reports to the archive: the report's JSON under
//! `v1/reports/dt=/scenario=/<id>.json.gz`, and one row of headline figures
//! per run under `v1/runs/dt=/<id>.ndjson.gz`, so that many runs load into
//! one table. Keys come from the report alone: exporting again overwrites.

use super::layout;
use super::metrics::Metrics;
use super::retry::{retry, RetryPolicy};
use super::store::{Archive, StoreError};
use crate::report::Report;
use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};
use std::io::Write;
use std::time::Duration;

/// How long transient failures are retried for one report.
pub const EXPORT_RETRY: Duration = Duration::from_secs(30);

/// Where one report went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// The report's JSON.
    pub report_key: String,
    /// Its row.
    pub run_key: String,
}

/// Stores `report` and its row.
pub async fn export(archive: &Archive, report: &Report) -> Result<Exported, StoreError> {
    geolb_proto::subject::validate_name("report id", &report.id)
        .map_err(|e| StoreError::Config(e.to_string()))?;
    geolb_proto::subject::validate_name("scenario", &report.scenario)
        .map_err(|e| StoreError::Config(e.to_string()))?;
    let date = date_of(&report.started_at)?;
    let url = archive.url();
    let exported = Exported {
        report_key: layout::report_key(url, &date, &report.scenario, &report.id),
        run_key: layout::run_key(url, &date, &report.id),
    };
    let body = serde_json::to_vec(report).map_err(|e| StoreError::Config(e.to_string()))?;
    let mut row =
        serde_json::to_vec(&run_row(report)).map_err(|e| StoreError::Config(e.to_string()))?;
    row.push(b'\n');
    let (metrics, stop) = (Metrics::default(), RetryPolicy::for_at_most(EXPORT_RETRY));
    for (key, bytes, kind) in [
        (&exported.report_key, gzip(&body), "application/gzip"),
        (&exported.run_key, gzip(&row), "application/gzip"),
    ] {
        retry(key, &metrics, &stop, || {
            archive.put(key, bytes.clone(), kind)
        })
        .await?;
    }
    Ok(exported)
}

/// `YYYY-MM-DD` of an RFC 3339 time.
fn date_of(started_at: &str) -> Result<String, StoreError> {
    let date = started_at.get(..10).unwrap_or_default();
    let ok = date.len() == 10
        && date.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if ok {
        Ok(date.to_string())
    } else {
        Err(StoreError::Config(format!(
            "the report's started_at {started_at:?} is not an RFC 3339 time"
        )))
    }
}

/// The run's row: the verdict and, per strategy, its headline figures.
pub fn run_row(report: &Report) -> Value {
    let strategies: Vec<Value> = report
        .summary
        .by_strategy
        .iter()
        .map(|(name, s)| {
            let m = &s.messages;
            json!({
                "strategy": name,
                "clients": s.clients,
                "clients_with_gaps": s.clients_with_gaps,
                "gap_p50_ms": s.failover_gap_ms.p50,
                "gap_p90_ms": s.failover_gap_ms.p90,
                "gap_p99_ms": s.failover_gap_ms.p99,
                "gap_max_ms": s.failover_gap_ms.max,
                "landed_expected_pct": s.landed_expected_pct,
                "switches_per_client": s.switches_per_client,
                "sent": m.sent,
                "received": m.received,
                "lost": m.lost,
                "lost_same_strategy": m.lost_same_strategy,
                "lost_same_strategy_cross_region": m.lost_same_strategy_cross_region,
                "duplicated": m.duplicated,
            })
        })
        .collect();
    json!({
        "id": report.id,
        "scenario": report.scenario,
        "started_at": report.started_at,
        "finished_at": report.finished_at,
        "passed": report.passed,
        "reasons": report.reasons,
        "params": report.params,
        "duration_ms": report.duration_ms,
        "return_home_ms": report.return_home_ms,
        "clients": report.clients.len(),
        "strategies": strategies,
    })
}

fn gzip(data: &[u8]) -> Bytes {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(data).expect("writing to memory cannot fail");
    Bytes::from(gz.finish().expect("gzip to memory cannot fail"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{StrategySummary, Summary};

    fn report() -> Report {
        let mut summary = Summary::default();
        summary.by_strategy.insert(
            "rtt".into(),
            StrategySummary {
                clients: 4,
                landed_expected_pct: 100.0,
                ..Default::default()
            },
        );
        Report {
            id: "20261201-140000-dc-outage".into(),
            scenario: "dc-outage".into(),
            params: json!({"region": "lon"}),
            started_at: "2026-12-01T14:00:00.000Z".into(),
            finished_at: "2026-12-01T14:00:09.000Z".into(),
            passed: true,
            reasons: vec![],
            timeline: vec![],
            clients: vec![],
            summary,
            servers: None,
            duration_ms: None,
            return_home_ms: None,
            fleet: None,
            routing: None,
        }
    }

    #[test]
    fn a_row_has_the_verdict_and_each_strategy() {
        let row = run_row(&report());
        assert_eq!(row["scenario"], "dc-outage");
        assert_eq!(row["passed"], true);
        assert_eq!(row["strategies"][0]["strategy"], "rtt");
        assert_eq!(row["strategies"][0]["landed_expected_pct"], 100.0);
        assert_eq!(row["strategies"][0]["clients"], 4);
    }

    #[test]
    fn dates_come_from_started_at() {
        assert_eq!(date_of("2026-12-01T14:00:00.000Z").unwrap(), "2026-12-01");
        assert!(date_of("yesterday").is_err());
        assert!(date_of("2026/12/01T").is_err());
    }
}
