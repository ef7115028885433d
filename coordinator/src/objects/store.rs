//! The buckets on the control plane, through async-nats's Object Store: the
//! coordinator puts, lists and removes; agents read them with direct gets
//! only (`geolb-agent`'s `objects::read`).

use crate::control::Control;
use async_nats::jetstream::{self, object_store, stream::StorageType};
use futures::StreamExt;
use geolb_proto::objects::{self, StoredInfo};
use std::collections::HashMap;
use std::path::Path;

/// Why a bucket operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No object of that name.
    #[error("no {kind} named {name} on the control plane; `geolb {kind} ls` lists them")]
    Missing {
        /// `binary` or `data`.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// The file cannot be read.
    #[error("cannot read {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// JetStream refused or failed.
    #[error("the control plane's JetStream failed on bucket {bucket} (is JetStream on, and is this the coordinator's identity?): {reason}")]
    JetStream {
        /// The bucket.
        bucket: String,
        /// Why.
        reason: String,
    },
}

/// One bucket: [`objects::BINARIES_BUCKET`] (`binary`) or [`objects::DATA_BUCKET`] (`data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// The bucket's name.
    pub name: &'static str,
    /// The `geolb` subcommand that manages it.
    pub kind: &'static str,
}

/// The bucket of binaries.
pub const BINARIES: Bucket = Bucket {
    name: objects::BINARIES_BUCKET,
    kind: "binary",
};
/// The bucket of payload files.
pub const DATA: Bucket = Bucket {
    name: objects::DATA_BUCKET,
    kind: "data",
};

impl Bucket {
    fn fail(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::JetStream {
            bucket: self.name.to_string(),
            reason: e.to_string(),
        }
    }

    /// The bucket, created when `create` and missing; `None` when missing.
    async fn open(
        &self,
        control: &Control,
        create: bool,
    ) -> Result<Option<object_store::ObjectStore>, StoreError> {
        let js = jetstream::new(control.client().clone());
        match js.get_stream(objects::stream(self.name)).await {
            Ok(_) => {}
            Err(e) if !is_not_found(&e) => return Err(self.fail(e)),
            Err(_) if !create => return Ok(None),
            Err(_) => {
                let config = object_store::Config {
                    bucket: self.name.to_string(),
                    description: Some(format!("nats-geolb: `geolb {} put`", self.kind)),
                    storage: StorageType::File,
                    ..Default::default()
                };
                return js
                    .create_object_store(config)
                    .await
                    .map(Some)
                    .map_err(|e| self.fail(e));
            }
        }
        js.get_object_store(self.name)
            .await
            .map(Some)
            .map_err(|e| self.fail(e))
    }

    /// Stores the file at `path` as `name` with `metadata`; replaces an object of that name.
    pub async fn put(
        &self,
        control: &Control,
        name: &str,
        path: &Path,
        metadata: HashMap<String, String>,
    ) -> Result<StoredInfo, StoreError> {
        let store = self.open(control, true).await?.expect("created");
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| StoreError::File {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        let meta = object_store::ObjectMetadata {
            name: name.to_string(),
            metadata,
            ..Default::default()
        };
        let info = store.put(meta, &mut file).await.map_err(|e| self.fail(e))?;
        Ok(stored(info))
    }

    /// Every object, by name (removed ones left out).
    pub async fn list(&self, control: &Control) -> Result<Vec<StoredInfo>, StoreError> {
        let Some(store) = self.open(control, false).await? else {
            return Ok(Vec::new());
        };
        let mut list = store.list().await.map_err(|e| self.fail(e))?;
        let mut all = Vec::new();
        while let Some(info) = list.next().await {
            let info = info.map_err(|e| self.fail(e))?;
            if !info.deleted {
                all.push(stored(info));
            }
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    /// The info of one object.
    pub async fn info(&self, control: &Control, name: &str) -> Result<StoredInfo, StoreError> {
        let missing = || StoreError::Missing {
            kind: self.kind,
            name: name.to_string(),
        };
        let store = self.open(control, false).await?.ok_or_else(missing)?;
        match store.info(name).await {
            Ok(info) if !info.deleted => Ok(stored(info)),
            Ok(_) => Err(missing()),
            Err(e) if e.kind() == object_store::InfoErrorKind::NotFound => Err(missing()),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Removes one object (its chunks are purged; agents keep their local copies).
    pub async fn remove(&self, control: &Control, name: &str) -> Result<(), StoreError> {
        self.info(control, name).await?;
        let store = self.open(control, false).await?.expect("it has the object");
        store.delete(name).await.map_err(|e| self.fail(e))
    }
}

fn is_not_found(e: &jetstream::context::GetStreamError) -> bool {
    matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(js)
        if js.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
}

/// The fields geolb reads of an object's info.
fn stored(info: object_store::ObjectInfo) -> StoredInfo {
    StoredInfo {
        name: info.name,
        bucket: info.bucket,
        nuid: info.nuid,
        size: info.size as u64,
        chunks: info.chunks as u64,
        digest: info.digest,
        deleted: info.deleted,
        metadata: info.metadata.into_iter().collect(),
    }
}
