//! S3 credentials: `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and
//! `AWS_SESSION_TOKEN`), or an AWS shared-credentials file
//! (`--s3-credentials FILE`, one `[profile]` of `aws_access_key_id`,
//! `aws_secret_access_key`, `aws_session_token`). The secret is never
//! printed: `Debug` shows the key id only, errors never quote the file.

use std::fmt;
use std::path::{Path, PathBuf};

/// A key id and its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id (Backblaze B2: the application key's keyID).
    pub key_id: String,
    /// The secret (B2: the application key).
    pub secret: String,
    /// A session token, for temporary credentials.
    pub token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("key_id", &self.key_id)
            .field("secret", &"<redacted>")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Why no credentials could be had.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Neither the variables nor a file.
    #[error("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass --s3-credentials FILE (an AWS credentials file)")]
    Missing,
    /// The file cannot be read.
    #[error("cannot read S3 credentials file {path}: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file lacks the profile or one of its keys.
    #[error("S3 credentials file {path}: {reason}")]
    Incomplete {
        /// The file.
        path: PathBuf,
        /// What is missing (never a value from the file).
        reason: String,
    },
}

impl Credentials {
    /// From `file` (profile `profile`) when given, else from the environment.
    pub fn load(file: Option<&Path>, profile: &str) -> Result<Credentials, CredentialsError> {
        match file {
            Some(path) => Self::from_file(path, profile),
            None => Self::from_env(),
        }
    }

    /// From `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
    pub fn from_env() -> Result<Credentials, CredentialsError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(key_id), Some(secret)) => Ok(Credentials {
                key_id,
                secret,
                token: var("AWS_SESSION_TOKEN"),
            }),
            _ => Err(CredentialsError::Missing),
        }
    }

    /// From an AWS shared-credentials file.
    pub fn from_file(path: &Path, profile: &str) -> Result<Credentials, CredentialsError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| CredentialsError::Unreadable {
                path: path.to_path_buf(),
                source,
            })?;
        warn_if_shared(path);
        let incomplete = |reason: String| CredentialsError::Incomplete {
            path: path.to_path_buf(),
            reason,
        };
        let section = profile_section(&text, profile)
            .ok_or_else(|| incomplete(format!("no [{profile}] profile (--s3-profile)")))?;
        let get = |key: &str| {
            section
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let key_id = get("aws_access_key_id")
            .ok_or_else(|| incomplete(format!("[{profile}] has no aws_access_key_id")))?;
        let secret = get("aws_secret_access_key")
            .ok_or_else(|| incomplete(format!("[{profile}] has no aws_secret_access_key")))?;
        Ok(Credentials {
            key_id,
            secret,
            token: get("aws_session_token"),
        })
    }
}

/// The `key = value` lines of `[profile]` (or `[profile NAME]`, the config-file form).
fn profile_section(text: &str, profile: &str) -> Option<Vec<(String, String)>> {
    let mut inside = false;
    let mut entries: Option<Vec<(String, String)>> = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            inside = name.strip_prefix("profile ").unwrap_or(name).trim() == profile;
            if inside {
                entries.get_or_insert_with(Vec::new);
            }
        } else if let (true, Some(found), Some((k, v))) =
            (inside, entries.as_mut(), line.split_once('='))
        {
            found.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    entries
}

/// A secret readable by others deserves a warning (not a refusal: CI mounts vary).
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "The S3 credentials file is readable by other users; chmod 600 it.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "geolb-creds-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn reads_a_profile_of_a_credentials_file() {
        let path = file(
            "# comment\n[default]\naws_access_key_id = AKID\naws_secret_access_key=SECRET\n\n[profile b2]\naws_access_key_id = K2\naws_secret_access_key = S2\naws_session_token = T2\n",
        );
        let c = Credentials::from_file(&path, "default").unwrap();
        assert_eq!(
            (c.key_id.as_str(), c.secret.as_str(), c.token),
            ("AKID", "SECRET", None)
        );
        let b2 = Credentials::from_file(&path, "b2").unwrap();
        assert_eq!(b2.token.as_deref(), Some("T2"));
        let missing = Credentials::from_file(&path, "nope")
            .unwrap_err()
            .to_string();
        assert!(missing.contains("no [nope] profile"), "{missing}");
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn errors_and_debug_never_show_the_secret() {
        let path = file("[default]\naws_access_key_id = AKID\nsecret-typo = TOPSECRET\n");
        let err = Credentials::from_file(&path, "default")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no aws_secret_access_key"), "{err}");
        assert!(!err.contains("TOPSECRET"), "{err}");
        let c = Credentials {
            key_id: "AKID".into(),
            secret: "TOPSECRET".into(),
            token: Some("TOKEN".into()),
        };
        let debug = format!("{c:?}");
        assert!(debug.contains("AKID") && !debug.contains("TOPSECRET") && !debug.contains("TOKEN"));
        let gone = Credentials::from_file(Path::new("/nonexistent/creds"), "default").unwrap_err();
        assert!(gone
            .to_string()
            .contains("cannot read S3 credentials file /nonexistent/creds"));
        let _ = std::fs::remove_file(path);
    }
}
