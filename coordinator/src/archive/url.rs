//! `s3://BUCKET/PREFIX`: where archives go, checked before anything is sent
//! (pure).

use std::fmt;
use std::str::FromStr;

/// A bucket and a key prefix inside it (no leading or trailing `/`; may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    /// The bucket.
    pub bucket: String,
    /// The prefix every key starts with, e.g. `lab` or `team/geolb`.
    pub prefix: String,
}

/// A malformed `s3://` URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url:?} is not a valid s3://BUCKET/PREFIX URL: {reason} (e.g. s3://geolb-telemetry/lab)")]
pub struct BadS3Url {
    /// What was given.
    pub url: String,
    /// Why it is refused.
    pub reason: String,
}

impl FromStr for S3Url {
    type Err = BadS3Url;

    fn from_str(text: &str) -> Result<S3Url, BadS3Url> {
        let bad = |reason: &str| BadS3Url {
            url: text.to_string(),
            reason: reason.to_string(),
        };
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| bad("it must start with s3://"))?;
        if rest.contains(['?', '#', '\\']) || rest.chars().any(|c| c.is_whitespace()) {
            return Err(bad("no query, fragment, backslash or spaces"));
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        check_bucket(bucket).map_err(|reason| bad(&reason))?;
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() {
            for segment in prefix.split('/') {
                check_segment(segment).map_err(|reason| bad(&reason))?;
            }
        }
        Ok(S3Url {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

impl S3Url {
    /// `key` under the prefix: `PREFIX/key`, or `key` when the prefix is empty.
    pub fn key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }
}

/// S3's bucket naming rules (3 to 63 of a-z 0-9 . -, a letter or digit at each end).
fn check_bucket(bucket: &str) -> Result<(), String> {
    if bucket.is_empty() {
        return Err("the bucket name is missing".into());
    }
    if !(3..=63).contains(&bucket.len()) {
        return Err(format!("bucket {bucket:?} must have 3 to 63 characters"));
    }
    let ok_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-';
    let ends = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = bucket.as_bytes();
    if !bytes.iter().all(|b| ok_char(*b))
        || !ends(bytes[0])
        || !ends(bytes[bytes.len() - 1])
        || bucket.contains("..")
    {
        return Err(format!(
            "bucket {bucket:?} may hold only a-z, 0-9, '.' and '-', and must start and end with a letter or digit"
        ));
    }
    Ok(())
}

/// One folder of the prefix: not empty, not `.` or `..`, printable ASCII.
fn check_segment(segment: &str) -> Result<(), String> {
    if segment.is_empty() {
        return Err("the prefix has an empty folder (`//`)".into());
    }
    if segment == "." || segment == ".." {
        return Err("the prefix may not hold `.` or `..` folders".into());
    }
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"-_.=+".contains(&b);
    if !segment.bytes().all(ok) {
        return Err(format!(
            "prefix folder {segment:?} may hold only A-Z a-z 0-9 - _ . = +"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bucket_and_prefix() {
        let cases = [
            ("s3://geolb", "geolb", ""),
            ("s3://geolb/", "geolb", ""),
            ("s3://geolb/lab", "geolb", "lab"),
            ("s3://geolb/team/lab/", "geolb", "team/lab"),
            ("s3://my.bucket-1/a=b/c_d", "my.bucket-1", "a=b/c_d"),
        ];
        for (text, bucket, prefix) in cases {
            let url: S3Url = text.parse().unwrap();
            assert_eq!((url.bucket.as_str(), url.prefix.as_str()), (bucket, prefix));
        }
        let url: S3Url = "s3://geolb/lab".parse().unwrap();
        assert_eq!(url.to_string(), "s3://geolb/lab");
        assert_eq!(url.key("v1/x"), "lab/v1/x");
        let bare: S3Url = "s3://geolb".parse().unwrap();
        assert_eq!(bare.key("v1/x"), "v1/x");
    }

    #[test]
    fn refuses_malformed_urls() {
        let cases = [
            ("geolb/lab", "start with s3://"),
            ("https://geolb/lab", "start with s3://"),
            ("s3://", "missing"),
            ("s3:///lab", "missing"),
            ("s3://ab", "3 to 63"),
            ("s3://Geolb", "may hold only"),
            ("s3://-geolb", "may hold only"),
            ("s3://geo_lb", "may hold only"),
            ("s3://geolb//lab", "empty folder"),
            ("s3://geolb/../x", "`.` or `..`"),
            ("s3://geolb/a b", "spaces"),
            ("s3://geolb/lab?x=1", "query"),
            ("s3://geolb/l*b", "may hold only"),
        ];
        for (text, want) in cases {
            let err = text.parse::<S3Url>().expect_err(text).to_string();
            assert!(err.contains(want), "{text}: {err}");
            assert!(err.contains("s3://BUCKET/PREFIX"), "{err}");
        }
    }
}
