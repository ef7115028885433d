//! What a failed S3 request means: transient (unreachable, timed out, a
//! 5xx: retry later) or fatal (credentials refused, no such bucket, another
//! 4xx: retrying would not help), each naming the bucket and the endpoint.
//! `object_store` reports the status and S3's XML error body in its text;
//! the error code (`SignatureDoesNotMatch`, `NoSuchBucket`, ...) is read
//! from there (pure).

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
    /// The server's certificate was refused: retrying would not help.
    #[error("TLS to the S3 endpoint {endpoint} (bucket {bucket}) failed: {reason}; check the endpoint (its certificate must be trusted by the system's roots)")]
    Tls {
        /// The endpoint.
        endpoint: String,
        /// The bucket.
        bucket: String,
        /// What the TLS library said.
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

/// Sorts an `object_store` error of a request to `bucket` at `endpoint`
/// into what the caller can do about it.
pub fn classify(error: &object_store::Error, endpoint: &str, bucket: &str) -> StoreError {
    let (endpoint, bucket) = (endpoint.to_string(), bucket.to_string());
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
        let reason = innermost(error);
        if reason.contains("certificate") {
            return StoreError::Tls {
                endpoint,
                bucket,
                reason,
            };
        }
        if matches!(kind, K::Connect | K::Request | K::Timeout | K::Interrupted) {
            return StoreError::Unreachable {
                endpoint,
                bucket,
                reason,
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
}
