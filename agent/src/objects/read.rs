//! Reading one object of a bucket with direct gets only: its info is the
//! last message of its metadata subject, its chunks the messages of its
//! chunk subject, fetched a window at a time (`next_by_subj` from the
//! sequences after the last chunk read: one round trip gives up to
//! [`WINDOW`] chunks when they were stored one after the other, as a put
//! stores them). Every byte goes through sha256, checked against the
//! object's digest before the caller keeps anything.

use async_nats::jetstream::{self, stream::DirectGetErrorKind};
use futures::future::join_all;
use geolb_proto::objects::{self, StoredInfo};
use sha2::{Digest, Sha256};
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
    stream: jetstream::stream::Stream<()>,
    name: String,
    verb: &'static str,
}

impl Bucket {
    /// The bucket `name` (`verb` names the `geolb` command that writes it, for messages).
    pub async fn open(
        client: async_nats::Client,
        name: &str,
        verb: &'static str,
    ) -> Result<Bucket, FetchError> {
        let mut context = jetstream::new(client);
        context.set_timeout(REQUEST_TIMEOUT);
        let stream = context
            .get_stream_no_info(objects::stream(name))
            .await
            .map_err(|e| FetchError::Nats {
                bucket: name.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Bucket {
            stream,
            name: name.to_string(),
            verb,
        })
    }

    /// The info of object `name`; `Missing` when absent or deleted.
    pub async fn info(&self, name: &str) -> Result<StoredInfo, FetchError> {
        let subject = objects::meta_subject(&self.name, name);
        let message = match self.stream.direct_get_last_for_subject(subject).await {
            Ok(message) => message,
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => return Err(self.missing(name)),
            Err(e) => return Err(self.failure(e)),
        };
        let info: StoredInfo =
            serde_json::from_slice(&message.payload).map_err(|e| FetchError::Nats {
                bucket: self.name.clone(),
                reason: format!("the info of {name} is not valid: {e}"),
            })?;
        match info.deleted {
            true => Err(self.missing(name)),
            false => Ok(info),
        }
    }

    /// The object's first chunk (empty for an empty object): enough to see
    /// what kind of file it is without reading it all.
    pub async fn head(&self, info: &StoredInfo) -> Result<bytes::Bytes, FetchError> {
        if info.chunks == 0 {
            return Ok(bytes::Bytes::new());
        }
        let subject = objects::chunk_subject(&self.name, &info.nuid);
        match self
            .stream
            .direct_get_next_for_subject(subject, Some(1))
            .await
        {
            Ok(message) => Ok(message.payload),
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => Err(self.gone(info).await),
            Err(e) => Err(self.failure(e)),
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
        let (mut hasher, mut size, mut chunks, mut next) = (Sha256::new(), 0u64, 0u64, 1u64);
        while chunks < info.chunks {
            // The first chunk's sequence is unknown: ask for it alone.
            let window = match chunks {
                0 => 1,
                _ => WINDOW.min(info.chunks - chunks),
            };
            let gets = (0..window).map(|i| {
                self.stream
                    .direct_get_next_for_subject(subject.clone(), Some(next + i))
            });
            let mut got = Vec::new();
            for result in join_all(gets).await {
                match result {
                    Ok(message) => got.push(message),
                    Err(e) if e.kind() == DirectGetErrorKind::NotFound => break,
                    Err(e) => return Err(self.failure(e)),
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
        let actual = objects::hex(&hasher.finalize());
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

    fn failure(&self, e: jetstream::stream::DirectGetError) -> FetchError {
        let bucket = self.name.clone();
        match e.kind() {
            DirectGetErrorKind::TimedOut => FetchError::TimedOut { bucket },
            DirectGetErrorKind::ErrorResponse(status, _) if status.as_u16() == 503 => {
                FetchError::NoBucket {
                    bucket,
                    verb: self.verb,
                }
            }
            _ => FetchError::Nats {
                bucket,
                reason: e.to_string(),
            },
        }
    }
}
