//! Reports kept in JetStream on the control plane (stream `GEOLB_REPORTS`,
//! file storage, one message per report on `geolb.report.<id>`), so the
//! history survives a lab restart.

use super::Report;
use crate::control::Control;
use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use std::time::Duration;

/// The stream's name.
pub const STREAM: &str = "GEOLB_REPORTS";
/// Most reports kept.
const MAX_REPORTS: i64 = 1000;

async fn reports_stream(control: &Control) -> anyhow::Result<stream::Stream> {
    let js = jetstream::new(control.client().clone());
    js.get_or_create_stream(stream::Config {
        name: STREAM.into(),
        subjects: vec!["geolb.report.*".into()],
        storage: stream::StorageType::File,
        max_messages: MAX_REPORTS,
        max_message_size: 4 << 20,
        ..Default::default()
    })
    .await
    .map_err(|e| anyhow::anyhow!("cannot open the report stream {STREAM} (is JetStream on?): {e}"))
}

/// Stores a report.
pub async fn save(control: &Control, report: &Report) -> anyhow::Result<()> {
    reports_stream(control).await?;
    let js = jetstream::new(control.client().clone());
    let body = serde_json::to_vec(report)?;
    js.publish(format!("geolb.report.{}", report.id), body.into())
        .await?
        .await
        .map_err(|e| anyhow::anyhow!("the control plane did not store the report: {e}"))?;
    Ok(())
}

/// Every stored report, oldest first.
pub async fn list(control: &Control) -> anyhow::Result<Vec<Report>> {
    let stream = reports_stream(control).await?;
    let mut reports = Vec::new();
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig::default())
        .await?;
    let total = stream.clone().info().await?.state.messages as usize;
    if total == 0 {
        return Ok(reports);
    }
    let mut messages = consumer.messages().await?;
    for _ in 0..total {
        match tokio::time::timeout(Duration::from_secs(2), messages.next()).await {
            Ok(Some(Ok(message))) => {
                if let Ok(report) = serde_json::from_slice::<Report>(&message.payload) {
                    reports.push(report);
                }
            }
            _ => break,
        }
    }
    Ok(reports)
}

/// One stored report.
pub async fn get(control: &Control, id: &str) -> anyhow::Result<Report> {
    geolb_proto::subject::validate_name("report id", id)?;
    let stream = reports_stream(control).await?;
    let message = stream
        .get_last_raw_message_by_subject(&format!("geolb.report.{id}"))
        .await
        .map_err(|_| anyhow::anyhow!("no report {id}; `geolb report ls` lists them"))?;
    Ok(serde_json::from_slice(&message.payload)?)
}
