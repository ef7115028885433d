//! The heartbeat stream: `GEOLB_TELEMETRY` when the archiver or the lab
//! made it, else `GEOLB_HEARTBEATS`, created when missing; read
//! last-per-subject; and the fallback of listening to live heartbeats.

use super::{FleetError, LISTEN_WINDOW, READ_TIMEOUT};
use crate::control::Control;
use async_nats::jetstream::consumer::{pull::OrderedConfig, DeliverPolicy};
use async_nats::jetstream::context::{GetStreamErrorKind, RequestError, RequestErrorKind};
use async_nats::jetstream::stream::{Config, StorageType, Stream};
use futures::StreamExt;
use geolb_proto::{subject, Heartbeat};
use std::time::Duration;

/// How long the stream keeps a heartbeat.
pub const HEARTBEAT_MAX_AGE: Duration = Duration::from_secs(3600);

/// What [`ensure_heartbeat_stream`] found.
#[derive(Debug)]
pub enum Ensured {
    /// The stream was there.
    Existing(Box<Stream>),
    /// The stream was created just now and is still empty.
    Created(Box<Stream>),
    /// The control plane has no JetStream.
    Unavailable,
}

fn stream_config() -> Config {
    Config {
        name: subject::HEARTBEAT_STREAM.to_string(),
        subjects: vec![subject::HEARTBEATS_ALL.to_string()],
        max_messages_per_subject: 1,
        storage: StorageType::Memory,
        max_age: HEARTBEAT_MAX_AGE,
        ..Default::default()
    }
}

/// The stream holding heartbeats: the telemetry stream when it exists (it
/// takes `geolb.hb.>` too), else `GEOLB_HEARTBEATS`, created when missing.
pub async fn ensure_heartbeat_stream(control: &Control) -> Result<Ensured, FleetError> {
    let js = async_nats::jetstream::new(control.client().clone());
    if let Ok(stream) = js.get_stream(subject::TELEMETRY_STREAM).await {
        return Ok(Ensured::Existing(Box::new(stream)));
    }
    let err = match js.get_stream(subject::HEARTBEAT_STREAM).await {
        Ok(stream) => return Ok(Ensured::Existing(Box::new(stream))),
        Err(err) => err,
    };
    match err.kind() {
        GetStreamErrorKind::JetStream(e) if e.code() == 404 => {}
        GetStreamErrorKind::JetStream(e) if e.code() == 503 => return Ok(Ensured::Unavailable),
        GetStreamErrorKind::Request if no_responders(&err) => return Ok(Ensured::Unavailable),
        _ => return Err(FleetError::JetStream(err.to_string())),
    }
    match js.create_stream(stream_config()).await {
        Ok(stream) => Ok(Ensured::Created(Box::new(stream))),
        // Another coordinator may have created it meanwhile.
        Err(create) => match js.get_stream(subject::HEARTBEAT_STREAM).await {
            Ok(stream) => Ok(Ensured::Existing(Box::new(stream))),
            Err(_) => Err(FleetError::JetStream(format!("cannot create it: {create}"))),
        },
    }
}

fn no_responders(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = err.source();
    while let Some(e) = source {
        if let Some(request) = e.downcast_ref::<RequestError>() {
            return request.kind() == RequestErrorKind::NoResponders;
        }
        source = e.source();
    }
    false
}

pub(super) async fn read_stream(stream: &Stream) -> Result<Vec<Heartbeat>, FleetError> {
    tokio::time::timeout(READ_TIMEOUT, read_last_per_subject(stream))
        .await
        .map_err(|_| FleetError::TimedOut)?
}

async fn read_last_per_subject(stream: &Stream) -> Result<Vec<Heartbeat>, FleetError> {
    let js_err = |e: &dyn std::fmt::Display| FleetError::JetStream(e.to_string());
    let consumer = stream
        .create_consumer(OrderedConfig {
            deliver_policy: DeliverPolicy::LastPerSubject,
            filter_subject: subject::HEARTBEATS_ALL.to_string(),
            ..Default::default()
        })
        .await
        .map_err(|e| js_err(&e))?;
    let pending = consumer.cached_info().num_pending;
    let mut heartbeats = Vec::with_capacity(pending as usize);
    if pending == 0 {
        return Ok(heartbeats);
    }
    let mut messages = consumer.messages().await.map_err(|e| js_err(&e))?;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| js_err(&e))?;
        heartbeats.extend(decode(&message.subject, &message.payload));
        if message.info().map_err(|e| js_err(&e))?.pending == 0 {
            break;
        }
    }
    Ok(heartbeats)
}

pub(super) async fn listen(control: &Control) -> Result<Vec<Heartbeat>, FleetError> {
    let nats = |e: &dyn std::fmt::Display| FleetError::Nats(e.to_string());
    let mut subscriber = control
        .client()
        .subscribe(subject::HEARTBEATS_ALL)
        .await
        .map_err(|e| nats(&e))?;
    let deadline = tokio::time::Instant::now() + LISTEN_WINDOW;
    let mut heartbeats = Vec::new();
    while let Ok(Some(message)) = tokio::time::timeout_at(deadline, subscriber.next()).await {
        heartbeats.extend(decode(&message.subject, &message.payload));
    }
    Ok(heartbeats)
}

fn decode(subject: &str, payload: &[u8]) -> Option<Heartbeat> {
    serde_json::from_slice(payload)
        .map_err(|e| tracing::warn!(subject, error = %e, "Skipped an undecodable heartbeat."))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_keeps_one_heartbeat_per_agent_in_memory() {
        let config = stream_config();
        assert_eq!(config.name, "GEOLB_HEARTBEATS");
        assert_eq!(config.subjects, vec!["geolb.hb.>".to_string()]);
        assert_eq!(config.max_messages_per_subject, 1);
        assert_eq!(config.storage, StorageType::Memory);
        assert_eq!(config.max_age, HEARTBEAT_MAX_AGE);
    }
}
