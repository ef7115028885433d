//! The runs kept in JetStream (stream `GEOLB_REPORTS`), read as the
//! dashboard needs them: a summary row per report, read once and then only
//! the reports stored since ([`RunCache::refresh`] remembers the last
//! stream sequence), and one whole report on demand. Reading needs only
//! the stream's info, an ordered consumer and message gets: the observer
//! identity of the least-privilege layout may do it.

use crate::control::Control;
use crate::report::store::STREAM;
use crate::report::Report;
use async_nats::jetstream::{self, consumer, context::GetStreamErrorKind, stream};
use futures::StreamExt;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Rows kept (the stream keeps at most 1000 reports).
const MAX_ROWS: usize = 1000;

/// The headline figures of one run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunRow {
    /// Report id.
    pub id: String,
    /// Scenario name.
    pub scenario: String,
    /// Start, RFC 3339.
    pub started_at: String,
    /// Whether it passed.
    pub passed: bool,
    /// Why not.
    pub reasons: Vec<String>,
    /// The `rtt` strategy's failover gap p99, ms.
    pub rtt_gap_p99: Option<f64>,
    /// The `random` strategy's failover gap p99, ms.
    pub random_gap_p99: Option<f64>,
    /// Percent of `rtt` clients that landed where expected.
    pub rtt_landed_pct: Option<f64>,
    /// Messages lost by every client.
    pub lost: u64,
    /// Main phase or return-home time, ms.
    pub duration_ms: Option<u64>,
    /// Clients in the report.
    pub clients: usize,
    /// Timeline entries in the report.
    pub entries: usize,
}

impl RunRow {
    /// The row of `report`.
    pub fn of(report: &Report) -> RunRow {
        let by = &report.summary.by_strategy;
        RunRow {
            id: report.id.clone(),
            scenario: report.scenario.clone(),
            started_at: report.started_at.clone(),
            passed: report.passed,
            reasons: report.reasons.clone(),
            rtt_gap_p99: by.get("rtt").map(|s| s.failover_gap_ms.p99),
            random_gap_p99: by.get("random").map(|s| s.failover_gap_ms.p99),
            rtt_landed_pct: by.get("rtt").map(|s| s.landed_expected_pct),
            lost: by.values().map(|s| s.messages.lost).sum(),
            duration_ms: report.duration_ms.or(report.return_home_ms),
            clients: report.clients.len(),
            entries: report.timeline.len(),
        }
    }
}

/// Why the runs could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the runs from {STREAM}: {0}")]
pub struct RunsError(String);

/// The summary rows read so far, and the stream sequence they reach.
#[derive(Default)]
pub struct RunCache {
    inner: Mutex<(u64, Vec<RunRow>, Option<Instant>)>,
}

/// How often an event stream looks for new reports.
const POLL: Duration = Duration::from_secs(2);

async fn open(control: &Control) -> Result<Option<stream::Stream>, RunsError> {
    let js = jetstream::new(control.client().clone());
    match js.get_stream(STREAM).await {
        Ok(stream) => Ok(Some(stream)),
        Err(e) => match e.kind() {
            GetStreamErrorKind::JetStream(j)
                if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
            {
                Ok(None)
            }
            _ => Err(RunsError(e.to_string())),
        },
    }
}

impl RunCache {
    /// Reads the reports stored since the last call (unless `lazy` and
    /// that call was less than 2 s ago); returns every row, oldest first.
    pub async fn refresh(&self, control: &Control, lazy: bool) -> Result<Vec<RunRow>, RunsError> {
        let mut inner = self.inner.lock().await;
        if lazy && inner.2.is_some_and(|at| at.elapsed() < POLL) {
            return Ok(inner.1.clone());
        }
        inner.2 = Some(Instant::now());
        let Some(mut stream) = open(control).await? else {
            return Ok(inner.1.clone());
        };
        let last = stream
            .info()
            .await
            .map_err(|e| RunsError(e.to_string()))?
            .state
            .last_sequence;
        if last > inner.0 {
            let config = consumer::pull::OrderedConfig {
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: inner.0 + 1,
                },
                ..Default::default()
            };
            let consumer = stream
                .create_consumer(config)
                .await
                .map_err(|e| RunsError(e.to_string()))?;
            let mut messages = consumer
                .messages()
                .await
                .map_err(|e| RunsError(e.to_string()))?;
            while let Ok(Some(Ok(message))) =
                tokio::time::timeout(Duration::from_secs(2), messages.next()).await
            {
                let Ok(info) = message.info() else { break };
                let (seq, pending) = (info.stream_sequence, info.pending);
                if let Ok(report) = serde_json::from_slice::<Report>(&message.payload) {
                    let row = RunRow::of(&report);
                    inner.1.retain(|r| r.id != row.id);
                    inner.1.push(row);
                }
                inner.0 = inner.0.max(seq);
                if pending == 0 || seq >= last {
                    break;
                }
            }
            let excess = inner.1.len().saturating_sub(MAX_ROWS);
            inner.1.drain(..excess);
        }
        Ok(inner.1.clone())
    }
}

/// Report `id`, `Ok(None)` when there is no such report (or the id cannot be one).
pub async fn report(control: &Control, id: &str) -> Result<Option<Report>, RunsError> {
    if geolb_proto::subject::validate_name("report id", id).is_err() {
        return Ok(None);
    }
    let Some(stream) = open(control).await? else {
        return Ok(None);
    };
    match stream
        .get_last_raw_message_by_subject(&format!("geolb.report.{id}"))
        .await
    {
        Ok(message) => serde_json::from_slice(&message.payload)
            .map(Some)
            .map_err(|e| RunsError(format!("report {id} is not a report: {e}"))),
        Err(e)
            if e.kind()
                == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
        {
            Ok(None)
        }
        Err(e) => Err(RunsError(e.to_string())),
    }
}
