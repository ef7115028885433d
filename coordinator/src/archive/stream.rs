//! The telemetry stream `GEOLB_TELEMETRY`: every heartbeat, event, metric
//! and client record the agents publish, kept on the control plane within
//! limits (file storage, 24 h and 1 GiB by default, oldest dropped first)
//! until the archiver has stored it; and the archiver's durable consumer.
//!
//! JetStream forbids two streams on overlapping subjects, and the older
//! `GEOLB_HEARTBEATS` (the last heartbeat of each agent, for `fleet ls`)
//! takes `geolb.hb.>`. So one stream holds all telemetry, and `fleet ls`
//! reads the last heartbeat per subject from it when it exists. Creating it
//! replaces a `GEOLB_HEARTBEATS` found in the way: that stream only holds
//! each agent's latest heartbeat, which the next heartbeat (1 s later)
//! restores.

use super::connect::{unless_refused, Violations};
use crate::control::Control;
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::context::{CreateStreamErrorKind, GetStreamErrorKind};
use async_nats::jetstream::stream::{Config, DiscardPolicy, StorageType, Stream};
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::{self, consumer::PullConsumer};
use geolb_proto::subject;
use std::time::Duration;

/// The stream's name.
pub const STREAM: &str = subject::TELEMETRY_STREAM;
/// The lab's (and the default) durable consumer.
pub const DURABLE: &str = "geolb-archiver";

/// How much the stream keeps when the archiver falls behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Oldest message kept.
    pub max_age: Duration,
    /// Bytes kept at most.
    pub max_bytes: i64,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            max_age: Duration::from_secs(24 * 3600),
            max_bytes: 1 << 30,
        }
    }
}

/// Why the stream or its consumer cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The control plane has no JetStream.
    #[error(
        "the control plane at {url} has no JetStream; enable it (jetstream {{}} in its config)"
    )]
    NoJetStream {
        /// The control plane.
        url: String,
    },
    /// The identity may not do it (a permission violation or no answer).
    #[error("this identity may not {what} on the control plane at {url} ({detail}); connect as the coordinator or the `archiver` identity of `geolb control-plane init --archiver`")]
    NoAccess {
        /// What was refused.
        what: String,
        /// The control plane.
        url: String,
        /// The server's words, or the timeout.
        detail: String,
    },
    /// Anything else JetStream said.
    #[error("stream {STREAM} on {url}: {detail}")]
    JetStream {
        /// The control plane.
        url: String,
        /// What it said.
        detail: String,
    },
}

/// The stream's configuration.
pub fn config(limits: StreamLimits) -> Config {
    Config {
        name: STREAM.to_string(),
        description: Some("nats-geolb telemetry, kept until `geolb archive` has stored it".into()),
        subjects: [
            subject::HEARTBEATS_ALL,
            subject::EVENTS_ALL,
            subject::METRICS_ALL,
            subject::CLIENTS_ALL,
        ]
        .map(String::from)
        .to_vec(),
        storage: StorageType::File,
        discard: DiscardPolicy::Old,
        max_age: limits.max_age,
        max_bytes: limits.max_bytes,
        max_message_size: 1 << 20,
        ..Default::default()
    }
}

/// The stream if it exists, else creates it (replacing `GEOLB_HEARTBEATS`).
pub async fn ensure(
    control: &Control,
    limits: StreamLimits,
    violations: Option<&Violations>,
) -> Result<Stream, StreamError> {
    if let Some(stream) = get(control, violations).await? {
        return Ok(stream);
    }
    let js = jetstream::new(control.client().clone());
    let mut replaced = false;
    loop {
        let created = unless_refused(violations, js.create_stream(config(limits)))
            .await
            .map_err(|text| no_access(control, None, &format!("create stream {STREAM}"), &text))?;
        match created {
            Ok(stream) => return Ok(stream),
            Err(e) => match e.kind() {
                CreateStreamErrorKind::JetStream(j)
                    if j.error_code() == ErrorCode::STREAM_SUBJECT_OVERLAP && !replaced =>
                {
                    replaced = true;
                    replace_heartbeat_stream(&js, control, violations).await?;
                }
                CreateStreamErrorKind::TimedOut => {
                    return Err(no_access(
                        control,
                        violations,
                        &format!("create stream {STREAM}"),
                        "no answer",
                    ))
                }
                _ => {
                    // Another archiver or coordinator may have created it meanwhile.
                    if let Some(stream) = get(control, violations).await? {
                        return Ok(stream);
                    }
                    return Err(StreamError::JetStream {
                        url: control.url().to_string(),
                        detail: format!("cannot create it: {e}"),
                    });
                }
            },
        }
    }
}

async fn replace_heartbeat_stream(
    js: &jetstream::Context,
    control: &Control,
    violations: Option<&Violations>,
) -> Result<(), StreamError> {
    let old = subject::HEARTBEAT_STREAM;
    js.delete_stream(old).await.map_err(|e| {
        no_access(
            control,
            violations,
            &format!("replace stream {old}"),
            &e.to_string(),
        )
    })?;
    tracing::warn!(
        stream = old,
        "Replaced the stream GEOLB_HEARTBEATS by GEOLB_TELEMETRY, which holds every heartbeat too (`fleet ls` reads it)."
    );
    Ok(())
}

/// The stream, `None` when it does not exist.
pub async fn get(
    control: &Control,
    violations: Option<&Violations>,
) -> Result<Option<Stream>, StreamError> {
    let js = jetstream::new(control.client().clone());
    let got = unless_refused(violations, js.get_stream(STREAM))
        .await
        .map_err(|text| no_access(control, None, &format!("read stream {STREAM}"), &text))?;
    match got {
        Ok(stream) => Ok(Some(stream)),
        Err(e) => match e.kind() {
            GetStreamErrorKind::JetStream(j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND => {
                Ok(None)
            }
            GetStreamErrorKind::JetStream(j) if j.code() == 503 => Err(StreamError::NoJetStream {
                url: control.url().to_string(),
            }),
            GetStreamErrorKind::Request => Err(no_access(
                control,
                violations,
                &format!("read stream {STREAM}"),
                &e.to_string(),
            )),
            _ => Err(StreamError::JetStream {
                url: control.url().to_string(),
                detail: e.to_string(),
            }),
        },
    }
}

/// The durable consumer `durable` of the stream, created (or updated) with
/// acknowledgements of everything up to a sequence (`AckPolicy::All`).
pub async fn consumer(
    control: &Control,
    stream: &Stream,
    durable: &str,
    ack_wait: Duration,
    max_ack_pending: i64,
    violations: Option<&Violations>,
) -> Result<PullConsumer, StreamError> {
    let config = pull::Config {
        durable_name: Some(durable.to_string()),
        description: Some("geolb archive: acknowledged once stored in S3".into()),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::All,
        ack_wait,
        max_ack_pending,
        ..Default::default()
    };
    let what = format!("read stream {STREAM} through consumer {durable}");
    create_consumer(control, stream, config, &what, violations).await
}

/// A temporary consumer that replays `from..` without acknowledgements
/// (messages delivered to a run that died, still pending on the durable);
/// the server removes it 30 s after its last use.
pub async fn replay_consumer(
    control: &Control,
    stream: &Stream,
    durable: &str,
    from: u64,
    violations: Option<&Violations>,
) -> Result<PullConsumer, StreamError> {
    let name = format!("{durable}-replay-{:08x}", fastrand::u32(..));
    let config = pull::Config {
        name: Some(name.clone()),
        description: Some("geolb archive: replays what a stopped run held".into()),
        deliver_policy: DeliverPolicy::ByStartSequence {
            start_sequence: from,
        },
        ack_policy: AckPolicy::None,
        inactive_threshold: Duration::from_secs(30),
        ..Default::default()
    };
    let what = format!("replay stream {STREAM} through consumer {name}");
    create_consumer(control, stream, config, &what, violations).await
}

async fn create_consumer(
    control: &Control,
    stream: &Stream,
    config: pull::Config,
    what: &str,
    violations: Option<&Violations>,
) -> Result<PullConsumer, StreamError> {
    let name = config
        .name
        .clone()
        .or(config.durable_name.clone())
        .unwrap_or_default();
    let created = unless_refused(violations, stream.create_consumer(config))
        .await
        .map_err(|text| no_access(control, None, what, &text))?;
    created.map_err(|e| {
        let text = e.to_string();
        if text.contains("timed out") || text.contains("no responders") {
            no_access(control, violations, what, &text)
        } else {
            StreamError::JetStream {
                url: control.url().to_string(),
                detail: format!("consumer {name}: {text}"),
            }
        }
    })
}

fn no_access(
    control: &Control,
    violations: Option<&Violations>,
    what: &str,
    fallback: &str,
) -> StreamError {
    StreamError::NoAccess {
        what: what.to_string(),
        url: control.url().to_string(),
        detail: violations
            .and_then(Violations::last)
            .unwrap_or_else(|| fallback.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_takes_all_telemetry_on_disk_within_limits() {
        let c = config(StreamLimits::default());
        assert_eq!(c.name, "GEOLB_TELEMETRY");
        assert_eq!(
            c.subjects,
            [
                "geolb.hb.>",
                "geolb.evt.>",
                "geolb.metrics.>",
                "geolb.client.>"
            ]
        );
        assert_eq!(c.storage, StorageType::File);
        assert_eq!(c.discard, DiscardPolicy::Old);
        assert_eq!(c.max_age, Duration::from_secs(86_400));
        assert_eq!(c.max_bytes, 1 << 30);
        assert_eq!(
            c.max_messages_per_subject, 0,
            "every heartbeat, not the last one"
        );
    }
}
