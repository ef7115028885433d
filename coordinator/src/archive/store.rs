//! The S3 bucket archives go to, through `object_store` (S3 on reqwest and
//! rustls, signing and TLS on ring): path-style requests, no checksum
//! headers (Backblaze B2 refuses `x-amz-checksum-*` and
//! `x-amz-sdk-checksum-algorithm` with a 400), one PUT under
//! [`MULTIPART_THRESHOLD`] and a multipart upload above.
//!
//! The store is built from explicit settings only (never `from_env`, which
//! would also read `AWS_CHECKSUM_ALGORITHM`), and `object_store` retries
//! nothing itself: every failure comes back, classified transient or fatal
//! ([`super::failure`]), and the callers retry the transient ones with a
//! capped backoff they count ([`super::retry`]).

use super::credentials::Credentials;
use super::failure::classify;
pub use super::failure::StoreError;
use super::url::S3Url;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, ClientOptions, ObjectStore, ObjectStoreExt, PutMultipartOptions,
    PutOptions, PutPayload, RetryConfig, WriteMultipart,
};
use std::sync::Arc;
use std::time::Duration;

/// Objects at least this big go up in parts (S3's smallest part size).
pub const MULTIPART_THRESHOLD: usize = 5 << 20;
/// Size of each part but the last.
pub const PART_SIZE: usize = 5 << 20;
/// The region when none is given.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Where and as whom to write.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// Bucket and prefix.
    pub url: S3Url,
    /// Endpoint URL; `None` is AWS (`https://s3.<region>.amazonaws.com`).
    pub endpoint: Option<String>,
    /// Region (B2: the part of the endpoint after `s3.`, e.g. `us-west-004`).
    pub region: String,
    /// Credentials.
    pub credentials: Credentials,
}

/// The bucket and prefix archives are written to.
#[derive(Debug, Clone)]
pub struct Archive {
    store: Arc<AmazonS3>,
    url: S3Url,
    endpoint: String,
}

impl Archive {
    /// A store for `config`; sends nothing yet.
    pub fn open(config: &S3Config) -> Result<Archive, StoreError> {
        // reqwest's rustls needs a process-wide provider; ring, as async-nats uses.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let endpoint = config
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", config.region));
        let endpoint = endpoint.trim_end_matches('/').to_string();
        let http = match endpoint.split_once("://") {
            Some(("http", _)) => true,
            Some(("https", _)) => false,
            _ => {
                return Err(StoreError::Config(format!(
                    "endpoint {endpoint:?} must start with https:// (or http:// for a local server)"
                )))
            }
        };
        if http && !is_loopback(&endpoint) {
            tracing::warn!(
                endpoint,
                "The S3 endpoint is plain HTTP: objects travel unencrypted."
            );
        }
        let c = &config.credentials;
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.url.bucket)
            .with_region(&config.region)
            .with_endpoint(&endpoint)
            .with_access_key_id(&c.key_id)
            .with_secret_access_key(&c.secret)
            .with_virtual_hosted_style_request(false)
            .with_retry(RetryConfig {
                max_retries: 0,
                retry_timeout: Duration::from_secs(60),
                ..RetryConfig::default()
            })
            .with_client_options(
                ClientOptions::new()
                    .with_allow_http(http)
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(60)),
            );
        if let Some(token) = &c.token {
            builder = builder.with_token(token);
        }
        let store = builder
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        Ok(Archive {
            store: Arc::new(store),
            url: config.url.clone(),
            endpoint,
        })
    }

    /// Bucket and prefix.
    pub fn url(&self) -> &S3Url {
        &self.url
    }

    /// The endpoint requests go to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Checks that the bucket answers to these credentials (one listing of the prefix).
    pub async fn check(&self) -> Result<(), StoreError> {
        let prefix = self.path(&self.url.key(super::layout::VERSION))?;
        self.store
            .list_with_delimiter(Some(&prefix))
            .await
            .map(|_| ())
            .map_err(|e| classify(&e, &self.endpoint, &self.url.bucket))
    }

    /// Stores `body` at `key`: one PUT, or a multipart upload from [`MULTIPART_THRESHOLD`].
    pub async fn put(&self, key: &str, body: Bytes, content_type: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, content_type.to_string().into());
        if body.len() < MULTIPART_THRESHOLD {
            let options = PutOptions {
                attributes,
                ..PutOptions::default()
            };
            self.store
                .put_opts(&path, PutPayload::from_bytes(body), options)
                .await
                .map(|_| ())
                .map_err(|e| classify(&e, &self.endpoint, &self.url.bucket))
        } else {
            let options = PutMultipartOptions {
                attributes,
                ..PutMultipartOptions::default()
            };
            let upload = self
                .store
                .put_multipart_opts(&path, options)
                .await
                .map_err(|e| classify(&e, &self.endpoint, &self.url.bucket))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            writer.put(body);
            // A failed upload is aborted (its parts discarded) by `finish` itself.
            writer
                .finish()
                .await
                .map(|_| ())
                .map_err(|e| classify(&e, &self.endpoint, &self.url.bucket))
        }
    }

    /// Every key under `folder` (a `/`-ended key prefix), with its size.
    pub async fn list(&self, folder: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let path = self.path(folder.trim_end_matches('/'))?;
        let objects: Vec<_> = self
            .store
            .list(Some(&path))
            .try_collect()
            .await
            .map_err(|e| classify(&e, &self.endpoint, &self.url.bucket))?;
        Ok(objects
            .into_iter()
            .map(|o| (o.location.to_string(), o.size))
            .collect())
    }

    /// The object at `key`.
    pub async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let path = self.path(key)?;
        let result = self
            .store
            .get(&path)
            .await
            .map_err(|e| classify(&e, &self.endpoint, &self.url.bucket))?;
        result
            .bytes()
            .await
            .map_err(|e| classify(&e, &self.endpoint, &self.url.bucket))
    }

    fn path(&self, key: &str) -> Result<Path, StoreError> {
        Path::parse(key).map_err(|e| StoreError::Config(format!("bad key {key:?}: {e}")))
    }
}

/// Whether `endpoint`'s host is a loopback address or `localhost`.
fn is_loopback(endpoint: &str) -> bool {
    let host = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    host == "localhost" || host.starts_with("127.") || host == "[::1]"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_loopback_endpoints() {
        assert!(is_loopback("http://127.0.0.1:8333"));
        assert!(is_loopback("http://localhost:8333/"));
        assert!(!is_loopback("https://s3.us-west-004.backblazeb2.com"));
    }

    #[test]
    fn refuses_endpoints_without_a_scheme() {
        let config = S3Config {
            url: "s3://geolb/lab".parse().unwrap(),
            endpoint: Some("s3.example.com".into()),
            region: DEFAULT_REGION.into(),
            credentials: Credentials {
                key_id: "k".into(),
                secret: "s".into(),
                token: None,
            },
        };
        let err = Archive::open(&config).unwrap_err().to_string();
        assert!(err.contains("must start with https://"), "{err}");
    }
}
