//! The S3 bucket archives go to, through `object_store` (S3 on reqwest and
//! rustls, signing and TLS on ring): path-style requests, no checksum
//! headers (Backblaze B2 refuses `x-amz-checksum-*` and
//! `x-amz-sdk-checksum-algorithm` with a 400), one PUT under
//! [`MULTIPART_THRESHOLD`] and a multipart upload above.
//!
//! The store is built from explicit settings only (never `from_env`, which
//! would also read `AWS_CHECKSUM_ALGORITHM`), and `object_store` retries
//! nothing itself: every failure comes back here, is classified as
//! transient (unreachable, timed out, 5xx) or fatal (credentials refused, no
//! such bucket, a 4xx), and the callers retry the transient ones with a
//! capped backoff they count.

use super::credentials::Credentials;
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

/// Why a request to the bucket failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Nothing answered, or too late.
    #[error("cannot reach the S3 endpoint {endpoint} (bucket {bucket}): {reason}; check --endpoint and that the server runs")]
    Unreachable {
        /// The endpoint.
        endpoint: String,
        /// The bucket.
        bucket: String,
        /// What failed.
        reason: String,
    },
    /// The server answered 5xx.
    #[error("the S3 endpoint {endpoint} (bucket {bucket}) failed: {reason}")]
    ServerError {
        /// The endpoint.
        endpoint: String,
        /// The bucket.
        bucket: String,
        /// Its status and error code.
        reason: String,
    },
    /// The credentials were refused.
    #[error("the S3 endpoint {endpoint} refused the credentials for bucket {bucket}: {code}; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or --s3-credentials), and --region")]
    Credentials {
        /// The endpoint.
        endpoint: String,
        /// The bucket.
        bucket: String,
        /// S3's error code (`SignatureDoesNotMatch`, `InvalidAccessKeyId`, `AccessDenied`, ...).
        code: String,
    },
    /// The bucket does not exist.
    #[error("bucket {bucket} does not exist at the S3 endpoint {endpoint}; create it, or fix the bucket in --to")]
    NoBucket {
        /// The endpoint.
        endpoint: String,
        /// The bucket.
        bucket: String,
    },
    /// Any other refusal (a 4xx): retrying would not help.
    #[error("the S3 endpoint {endpoint} refused a request to bucket {bucket}: {reason}")]
    Refused {
        /// The endpoint.
        endpoint: String,
        /// The bucket.
        bucket: String,
        /// Status, error code and message.
        reason: String,
    },
    /// The settings cannot make a store.
    #[error("S3 settings: {0}")]
    Config(String),
}

impl StoreError {
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Unreachable { .. } | StoreError::ServerError { .. }
        )
    }
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
            .map_err(|e| self.classify(&e))
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
                .map_err(|e| self.classify(&e))
        } else {
            let options = PutMultipartOptions {
                attributes,
                ..PutMultipartOptions::default()
            };
            let upload = self
                .store
                .put_multipart_opts(&path, options)
                .await
                .map_err(|e| self.classify(&e))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            writer.put(body);
            // A failed upload is aborted (its parts discarded) by `finish` itself.
            writer
                .finish()
                .await
                .map(|_| ())
                .map_err(|e| self.classify(&e))
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
            .map_err(|e| self.classify(&e))?;
        Ok(objects
            .into_iter()
            .map(|o| (o.location.to_string(), o.size))
            .collect())
    }

    /// The object at `key`.
    pub async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let path = self.path(key)?;
        let result = self.store.get(&path).await.map_err(|e| self.classify(&e))?;
        result.bytes().await.map_err(|e| self.classify(&e))
    }

    fn path(&self, key: &str) -> Result<Path, StoreError> {
        Path::parse(key).map_err(|e| StoreError::Config(format!("bad key {key:?}: {e}")))
    }

    /// Sorts an `object_store` error into what the caller can do about it.
    fn classify(&self, error: &object_store::Error) -> StoreError {
        let (endpoint, bucket) = (self.endpoint.clone(), self.url.bucket.clone());
        let text = error.to_string();
        let code = xml_tag(&text, "Code");
        match error {
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => {
                if code.as_deref() == Some("NoSuchBucket") {
                    return StoreError::NoBucket { endpoint, bucket };
                }
                return StoreError::Credentials {
                    endpoint,
                    bucket,
                    code: code.unwrap_or_else(|| "access denied".into()),
                };
            }
            object_store::Error::NotFound { .. } if code.as_deref() == Some("NoSuchBucket") => {
                return StoreError::NoBucket { endpoint, bucket };
            }
            _ => {}
        }
        if let Some(kind) = http_error_kind(error) {
            use object_store::client::HttpErrorKind as K;
            if matches!(kind, K::Connect | K::Request | K::Timeout | K::Interrupted) {
                return StoreError::Unreachable {
                    endpoint,
                    bucket,
                    reason: innermost(error),
                };
            }
        }
        let status = status_of(&text);
        let reason = match (&status, &code) {
            (Some(s), Some(c)) => format!("{s} {c}"),
            (Some(s), None) => s.clone(),
            _ => innermost(error),
        };
        match status.as_deref().and_then(|s| s.get(..1)) {
            Some("5") => StoreError::ServerError {
                endpoint,
                bucket,
                reason,
            },
            Some("4") if code.as_deref() == Some("NoSuchBucket") => {
                StoreError::NoBucket { endpoint, bucket }
            }
            Some("4")
                if status
                    .as_deref()
                    .is_some_and(|s| s.starts_with("401") || s.starts_with("403")) =>
            {
                StoreError::Credentials {
                    endpoint,
                    bucket,
                    code: code.unwrap_or(reason),
                }
            }
            Some("4") => StoreError::Refused {
                endpoint,
                bucket,
                reason,
            },
            _ => StoreError::Unreachable {
                endpoint,
                bucket,
                reason,
            },
        }
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

/// The `HttpErrorKind` somewhere in `error`'s sources.
fn http_error_kind(error: &object_store::Error) -> Option<object_store::client::HttpErrorKind> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(e) = source {
        if let Some(http) = e.downcast_ref::<object_store::client::HttpError>() {
            return Some(http.kind());
        }
        source = e.source();
    }
    None
}

/// The last error of the chain, in a few words (`Connection refused`).
fn innermost(error: &object_store::Error) -> String {
    let mut last = error.to_string();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(e) = source {
        last = e.to_string();
        source = e.source();
    }
    last.lines().next().unwrap_or_default().to_string()
}

/// `403 Forbidden` from object_store's "status code: 403 Forbidden" text.
fn status_of(text: &str) -> Option<String> {
    let rest = text.split("status code: ").nth(1)?;
    let end = rest.find(':').unwrap_or(rest.len());
    Some(rest[..end].trim().to_string())
}

/// The text of `<tag>` in an S3 XML error body.
fn xml_tag(text: &str, tag: &str) -> Option<String> {
    let start = text.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = text[start..].find(&format!("</{tag}>"))? + start;
    Some(text[start..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_s3_error_bodies() {
        let text = "Generic S3 error: Error performing PUT http://127.0.0.1:1/b/k in 2ms - Server returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>no</Message></Error>";
        assert_eq!(
            xml_tag(text, "Code").as_deref(),
            Some("SignatureDoesNotMatch")
        );
        assert_eq!(status_of(text).as_deref(), Some("403 Forbidden"));
        assert_eq!(xml_tag("nothing", "Code"), None);
        assert_eq!(status_of("nothing"), None);
    }

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
