//! Reading one object of a bucket with direct gets only: its info is the
//! last message of its metadata subject, its chunks the messages of its
//! chunk subject, fetched a window at a time (`next_by_subj` from the
//! sequences after the last chunk read: one round trip gives up to
//! [`WINDOW`] chunks when they were stored one after the other, as a put
//! stores them). Every byte goes through sha256, checked against the
//! object's digest before the caller keeps anything.
//!
//! The direct gets are plain requests (`$JS.API.DIRECT.GET.<stream>.<subject>`
//! for the last message of a subject, `$JS.API.DIRECT.GET.<stream>` with
//! `{"seq":N,"next_by_subj":S}` for the first one from a sequence on): the
//! answer is the stored message itself, its sequence in `Nats-Sequence`, or
//! status 404. Sending them directly keeps async-nats's JetStream module
//! out of the agent (about 190 KiB of binary, and as much idle memory,
//! measured).

use super::{self as objects, StoredInfo};
use async_nats::{Client, RequestErrorKind, StatusCode};
use bytes::Bytes;
use futures::future::join_all;
use ring::digest::{Context, SHA256};
use std::time::Duration;

/// Direct gets in flight at once for one object.
pub const WINDOW: u64 = 8;
/// How long one direct get may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an object could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The agent has no control-plane connection.
    #[error("this agent has no control plane (--control), so it cannot fetch obj:{0}")]
    NoControlPlane(String),
    /// No such bucket on the control plane.
    #[error("nothing is stored in {bucket} on the control plane (no such bucket); store it first with `geolb {verb} put`")]
    NoBucket {
        /// The bucket.
        bucket: String,
        /// `binary` or `data`.
        verb: &'static str,
    },
    /// No such object (or only its delete marker).
    #[error(
        "no object {name} in {bucket} on the control plane; `geolb {verb} ls` lists what is there"
    )]
    Missing {
        /// The object.
        name: String,
        /// The bucket.
        bucket: String,
        /// `binary` or `data`.
        verb: &'static str,
    },
    /// Its chunks disappeared while it was read.
    #[error("obj:{0} was removed while it was being fetched; nothing was kept")]
    Removed(String),
    /// Put again under the same name while it was read.
    #[error(
        "obj:{0} was replaced while it was being fetched; nothing was kept, send the command again"
    )]
    Replaced(String),
    /// The bytes do not match the stored digest or size.
    #[error(
        "obj:{name} does not match its stored digest: {detail}; nothing was kept, put it again"
    )]
    Corrupt {
        /// The object.
        name: String,
        /// What differs.
        detail: String,
    },
    /// The object is bigger than the caller takes.
    #[error("obj:{name} is {size} bytes; at most {limit} are taken here")]
    TooLarge {
        /// The object.
        name: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The control plane did not answer in time (down, or these direct gets are not permitted).
    #[error("the control plane did not answer a read of {bucket} in time (is JetStream on, and may this identity read the bucket?)")]
    TimedOut {
        /// The bucket.
        bucket: String,
    },
    /// Any other NATS failure.
    #[error("reading {bucket} failed: {reason}")]
    Nats {
        /// The bucket.
        bucket: String,
        /// Why.
        reason: String,
    },
    /// Writing what was read failed.
    #[error("cannot keep obj:{name}: {reason}")]
    Io {
        /// The object.
        name: String,
        /// Why.
        reason: String,
    },
}

/// One bucket of the control plane, read with direct gets.
#[derive(Clone)]
pub struct Bucket {
    client: Client,
    stream: String,
    name: String,
    verb: &'static str,
}

/// One stored message: its sequence and payload.
struct Stored {
    sequence: u64,
    payload: Bytes,
}

impl Bucket {
    /// The bucket `name` (`verb` names the `geolb` command that writes it, for messages).
    pub fn open(client: Client, name: &str, verb: &'static str) -> Bucket {
        Bucket {
            client,
            stream: objects::stream(name),
            name: name.to_string(),
            verb,
        }
    }

    /// The info of object `name`; `Missing` when absent or deleted.
    pub async fn info(&self, name: &str) -> Result<StoredInfo, FetchError> {
        let subject = objects::meta_subject(&self.name, name);
        let Some(message) = self.last(&subject).await? else {
            return Err(self.missing(name));
        };
        let info: StoredInfo = serde_json::from_slice(&message.payload)
            .map_err(|e| self.nats(format!("the info of {name} is not valid: {e}")))?;
        match info.deleted {
            true => Err(self.missing(name)),
            false => Ok(info),
        }
    }

    /// The object's first chunk (empty for an empty object): enough to see
    /// what kind of file it is without reading it all.
    pub async fn head(&self, info: &StoredInfo) -> Result<Bytes, FetchError> {
        if info.chunks == 0 {
            return Ok(Bytes::new());
        }
        let subject = objects::chunk_subject(&self.name, &info.nuid);
        match self.next(&subject, 1).await? {
            Some(message) => Ok(message.payload),
            None => Err(self.gone(info).await),
        }
    }

    /// Reads every byte of the object `info` describes into `sink`, in
    /// order, and checks size and digest at the end. On any error the caller
    /// must discard what `sink` got.
    pub async fn read(
        &self,
        info: &StoredInfo,
        sink: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
    ) -> Result<(), FetchError> {
        let expected = info.sha256().ok_or_else(|| FetchError::Corrupt {
            name: info.name.clone(),
            detail: format!("it has no valid digest ({:?})", info.digest),
        })?;
        let subject = objects::chunk_subject(&self.name, &info.nuid);
        let (mut hasher, mut size, mut chunks, mut next) =
            (Context::new(&SHA256), 0u64, 0u64, 1u64);
        while chunks < info.chunks {
            // The first chunk's sequence is unknown: ask for it alone.
            let window = match chunks {
                0 => 1,
                _ => WINDOW.min(info.chunks - chunks),
            };
            let gets = (0..window).map(|i| self.next(&subject, next + i));
            let mut got = Vec::new();
            for result in join_all(gets).await {
                match result? {
                    Some(message) => got.push(message),
                    None => break,
                }
            }
            if got.is_empty() {
                return Err(self.gone(info).await);
            }
            // Each answer is the first chunk at or after its sequence: the
            // answers cover every chunk before the last one, some twice.
            got.sort_by_key(|m| m.sequence);
            got.dedup_by_key(|m| m.sequence);
            for message in got.into_iter().take((info.chunks - chunks) as usize) {
                hasher.update(&message.payload);
                size += message.payload.len() as u64;
                chunks += 1;
                next = message.sequence + 1;
                sink(&message.payload).map_err(|e| FetchError::Io {
                    name: info.name.clone(),
                    reason: e.to_string(),
                })?;
            }
        }
        let actual = objects::hex(hasher.finish().as_ref());
        let corrupt = |detail| FetchError::Corrupt {
            name: info.name.clone(),
            detail,
        };
        if size != info.size {
            return Err(corrupt(format!(
                "{size} bytes arrived, {} stored",
                info.size
            )));
        }
        if actual != expected {
            return Err(corrupt(format!("sha256 {actual}, stored {expected}")));
        }
        Ok(())
    }

    /// Why the chunks ran out before the object ended: removed, replaced, or
    /// stored short.
    async fn gone(&self, info: &StoredInfo) -> FetchError {
        match self.info(&info.name).await {
            Err(FetchError::Missing { .. }) => FetchError::Removed(info.name.clone()),
            Ok(now) if now.nuid != info.nuid => FetchError::Replaced(info.name.clone()),
            Ok(_) => FetchError::Corrupt {
                name: info.name.clone(),
                detail: format!("fewer than its {} chunks are stored", info.chunks),
            },
            Err(other) => other,
        }
    }

    fn missing(&self, name: &str) -> FetchError {
        FetchError::Missing {
            name: name.to_string(),
            bucket: self.name.clone(),
            verb: self.verb,
        }
    }

    /// The last message on `subject`, `None` when there is none.
    async fn last(&self, subject: &str) -> Result<Option<Stored>, FetchError> {
        let api = format!("$JS.API.DIRECT.GET.{}.{subject}", self.stream);
        self.get(api, Bytes::new()).await
    }

    /// The first message on `subject` at or after `sequence`, `None` when there is none.
    async fn next(&self, subject: &str, sequence: u64) -> Result<Option<Stored>, FetchError> {
        // Subjects of a bucket hold no character JSON would escape.
        let body = format!(r#"{{"seq":{sequence},"next_by_subj":"{subject}"}}"#);
        let api = format!("$JS.API.DIRECT.GET.{}", self.stream);
        self.get(api, body.into()).await
    }

    /// One direct get: the stored message, or `None` for a 404.
    async fn get(&self, api: String, body: Bytes) -> Result<Option<Stored>, FetchError> {
        let request = self.client.request(api, body);
        let answer = match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
            Err(_) => return Err(self.timed_out()),
            Ok(Err(e)) => {
                return Err(match e.kind() {
                    RequestErrorKind::NoResponders => FetchError::NoBucket {
                        bucket: self.name.clone(),
                        verb: self.verb,
                    },
                    RequestErrorKind::TimedOut => self.timed_out(),
                    _ => self.nats(e.to_string()),
                })
            }
            Ok(Ok(answer)) => answer,
        };
        match answer.status {
            Some(StatusCode::NOT_FOUND) => return Ok(None),
            Some(status) if status != StatusCode::OK => {
                let why = answer.description.unwrap_or_default();
                return Err(self.nats(format!("a direct get was answered {status} {why}")));
            }
            _ => {}
        }
        let sequence = answer
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Sequence"))
            .and_then(|v| v.as_str().parse().ok())
            .ok_or_else(|| self.nats("a direct get answered without Nats-Sequence".into()))?;
        Ok(Some(Stored {
            sequence,
            payload: answer.payload,
        }))
    }

    fn timed_out(&self) -> FetchError {
        FetchError::TimedOut {
            bucket: self.name.clone(),
        }
    }

    fn nats(&self, reason: String) -> FetchError {
        FetchError::Nats {
            bucket: self.name.clone(),
            reason,
        }
    }
}
