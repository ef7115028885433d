//! How both binaries reach the control plane: one set of flags (each with a
//! `GEOLB_*` environment variable) turned into async-nats options.
//!
//! # Layout
//! - this file: [`ControlArgs`] and the options, with credentials taken out of URLs.
//! - [`tls`]: the roots TLS trusts (Mozilla's compiled in, plus what
//!   `SSL_CERT_FILE`/`SSL_CERT_DIR` name; or `--tls-ca` alone) and the rustls configuration.
//! - [`failure`]: why a connection attempt failed, in a few words, with what to check.

pub mod failure;
pub mod tls;

pub use failure::{Failure, FailureKind};
pub use tls::Trust;

use std::path::PathBuf;
use std::time::Duration;

/// Control-plane URL and credentials.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ControlArgs {
    /// Control-plane NATS URL(s), comma separated.
    #[arg(long = "control", env = "GEOLB_CONTROL")]
    pub url: Option<String>,
    /// NATS credentials file (JWT and nkey seed).
    #[arg(long, env = "GEOLB_CREDS", conflicts_with_all = ["user", "token", "nkey"])]
    pub creds: Option<PathBuf>,
    /// User name (with --password).
    #[arg(long, env = "GEOLB_USER", requires = "password", conflicts_with_all = ["token", "nkey"])]
    pub user: Option<String>,
    /// Password (with --user).
    #[arg(long, env = "GEOLB_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Auth token.
    #[arg(
        long,
        env = "GEOLB_TOKEN",
        hide_env_values = true,
        conflicts_with = "nkey"
    )]
    pub token: Option<String>,
    /// Nkey seed (SU...); prefer --nkey-file, a command line is visible to every local user.
    #[arg(
        long,
        env = "GEOLB_NKEY",
        hide_env_values = true,
        conflicts_with = "nkey_file"
    )]
    pub nkey: Option<String>,
    /// File holding an nkey seed (SU...), e.g. one written by `geolb control-plane init`.
    #[arg(long, env = "GEOLB_NKEY_FILE", conflicts_with_all = ["creds", "user", "token"])]
    pub nkey_file: Option<PathBuf>,
    /// CA certificate(s) to trust for TLS to the control plane, instead of the
    /// Mozilla roots compiled in (and those SSL_CERT_FILE/SSL_CERT_DIR add).
    #[arg(long, env = "GEOLB_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate for TLS to the control plane (with --tls-key).
    #[arg(long, env = "GEOLB_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Client key for TLS to the control plane (with --tls-cert).
    #[arg(long, env = "GEOLB_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// A problem with the control-plane flags.
#[derive(Debug, thiserror::Error)]
pub enum ConnectArgsError {
    /// The credentials file could not be read.
    #[error("cannot read credentials file {path}: {source}; check --creds / GEOLB_CREDS")]
    Creds {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The nkey file could not be read or holds no seed.
    #[error("cannot use nkey file {path}: {reason}; check --nkey-file / GEOLB_NKEY_FILE")]
    NkeyFile {
        /// The file.
        path: PathBuf,
        /// Why (never the file's content).
        reason: String,
    },
    /// A TLS file does not exist.
    #[error("TLS file {0} does not exist; check --tls-ca / --tls-cert / --tls-key")]
    TlsFile(PathBuf),
    /// The CA file holds no usable certificate.
    #[error(
        "cannot use CA file {path}: {reason}; --tls-ca / GEOLB_TLS_CA must name PEM certificates"
    )]
    TlsCa {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The client certificate or key cannot be used.
    #[error("cannot use the TLS client certificate: {0}; check --tls-cert / --tls-key")]
    TlsClient(String),
}

/// The TLS configuration of the control-plane connections, built once and
/// shared by them (a clone shares its roots and session cache).
#[derive(Debug, Clone)]
pub struct Tls {
    /// The rustls configuration.
    pub config: async_nats::rustls::ClientConfig,
    /// What it trusts.
    pub trust: Trust,
}

impl ControlArgs {
    /// Async-nats options with the credentials and TLS settings applied.
    pub async fn options(
        &self,
        name: &str,
    ) -> Result<async_nats::ConnectOptions, ConnectArgsError> {
        self.options_with(name, &self.tls()?).await
    }

    /// The TLS configuration: the roots [`tls::roots`] picks and the client certificate, if any.
    pub fn tls(&self) -> Result<Tls, ConnectArgsError> {
        for path in [&self.tls_ca, &self.tls_cert, &self.tls_key]
            .into_iter()
            .flatten()
        {
            exists(path)?;
        }
        let client = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
            _ => None,
        };
        let (config, trust) = tls::client_config(self.tls_ca.as_deref(), client)?;
        Ok(Tls { config, trust })
    }

    /// [`Self::options`] with a TLS configuration built before (by [`Self::tls`]).
    pub async fn options_with(
        &self,
        name: &str,
        tls: &Tls,
    ) -> Result<async_nats::ConnectOptions, ConnectArgsError> {
        let mut options = async_nats::ConnectOptions::new().name(name);
        if let Some(path) = &self.creds {
            options =
                options
                    .credentials_file(path)
                    .await
                    .map_err(|source| ConnectArgsError::Creds {
                        path: path.clone(),
                        source,
                    })?;
        }
        // Credentials inside the URL are applied as options and the URL is
        // passed on without them (`server_url`), so the client library never
        // holds, and can never log, a URL with a secret in it.
        let explicit = self.creds.is_some()
            || self.user.is_some()
            || self.token.is_some()
            || self.nkey.is_some()
            || self.nkey_file.is_some();
        match self.url.as_deref().and_then(url_credentials) {
            Some(UrlAuth::UserPassword(user, password)) if !explicit => {
                options = options.user_and_password(user, password);
            }
            Some(UrlAuth::Token(token)) if !explicit => options = options.token(token),
            _ => {}
        }
        if let (Some(user), Some(password)) = (&self.user, &self.password) {
            options = options.user_and_password(user.clone(), password.clone());
        }
        if let Some(token) = &self.token {
            options = options.token(token.clone());
        }
        if let Some(seed) = &self.nkey {
            options = options.nkey(seed.clone());
        }
        if let Some(path) = &self.nkey_file {
            options = options.nkey(read_seed(path)?);
        }
        // Our configuration replaces async-nats's (the host's store alone).
        options = options
            .tls_client_config(tls.config.clone())
            .require_tls(self.tls_ca.is_some());
        Ok(options.reconnect_delay_callback(reconnect_delay))
    }

    /// The URL(s) to connect to, without any credentials (those go through [`Self::options`]).
    pub fn server_url(&self) -> String {
        self.url
            .as_deref()
            .map(strip_credentials)
            .unwrap_or_default()
    }

    /// The URL for messages, with no secret in it.
    pub fn display_url(&self) -> String {
        self.url.as_deref().map(redact_url).unwrap_or_default()
    }
}

/// The nkey seed in `path`: the first word of 58 characters starting with `S`.
pub fn read_seed(path: &std::path::Path) -> Result<String, ConnectArgsError> {
    let fail = |reason: String| ConnectArgsError::NkeyFile {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    text.split_whitespace()
        .find(|w| w.len() == 58 && w.starts_with('S'))
        .map(str::to_string)
        .ok_or_else(|| fail("it holds no nkey seed (58 characters starting with S)".into()))
}

fn exists(path: &std::path::Path) -> Result<(), ConnectArgsError> {
    if path.exists() {
        Ok(())
    } else {
        Err(ConnectArgsError::TlsFile(path.to_path_buf()))
    }
}

/// Exponential reconnect backoff (100 ms doubling to 5 s) with ±25 % jitter,
/// so a fleet does not reconnect in lockstep. async-nats counts the attempt
/// before it waits, so attempt 1 (the first try) goes at once.
pub fn reconnect_delay(attempts: usize) -> Duration {
    let attempts = attempts.saturating_sub(1);
    let base = 100u64.saturating_mul(1 << attempts.min(6)).min(5_000);
    let jitter = 0.75 + fastrand::f64() * 0.5;
    if attempts == 0 {
        Duration::ZERO
    } else {
        Duration::from_millis((base as f64 * jitter) as u64)
    }
}

/// Credentials written into a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlAuth {
    /// `nats://user:password@host`.
    UserPassword(String, String),
    /// `nats://token@host`.
    Token(String),
}

/// The credentials in the first URL of the list that has any.
pub fn url_credentials(url: &str) -> Option<UrlAuth> {
    url.split(',').find_map(|one| {
        let (_, userinfo, _) = split_userinfo(one.trim())?;
        Some(match userinfo.split_once(':') {
            Some((user, password)) => UrlAuth::UserPassword(user.into(), password.into()),
            None => UrlAuth::Token(userinfo.into()),
        })
    })
}

/// The URL list with every `user:secret@` removed.
pub fn strip_credentials(url: &str) -> String {
    url.split(',')
        .map(|one| match split_userinfo(one) {
            Some((scheme, _, rest)) => format!("{scheme}{rest}"),
            None => one.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `(scheme://, userinfo, @host...)` when the URL carries user info.
fn split_userinfo(one: &str) -> Option<(&str, &str, &str)> {
    let scheme = one.find("://")? + 3;
    let at = one.rfind('@')?;
    (at > scheme).then(|| (&one[..scheme], &one[scheme..at], &one[at + 1..]))
}

/// Replaces the password or token in `nats://user:secret@host` URLs.
pub fn redact_url(url: &str) -> String {
    url.split(',')
        .map(|one| match (one.find("://"), one.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let userinfo = &one[scheme + 3..at];
                let shown = match userinfo.split_once(':') {
                    Some((user, _)) => format!("{user}:***"),
                    None => "***".to_string(),
                };
                format!("{}{}{}", &one[..scheme + 3], shown, &one[at..])
            }
            _ => one.to_string(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_delay_grows_and_caps() {
        assert_eq!(reconnect_delay(0), Duration::ZERO);
        assert_eq!(reconnect_delay(1), Duration::ZERO);
        for attempts in 2..40 {
            let d = reconnect_delay(attempts).as_millis();
            assert!((150..=6_250).contains(&d), "{attempts}: {d}");
        }
    }

    #[test]
    fn urls_lose_their_secrets() {
        assert_eq!(redact_url("nats://a:s3cret@h:4222"), "nats://a:***@h:4222");
        assert_eq!(
            redact_url("nats://tok@h:1,nats://h2:2"),
            "nats://***@h:1,nats://h2:2"
        );
        assert_eq!(redact_url("nats://h:4222"), "nats://h:4222");
    }

    #[test]
    fn urls_hand_their_credentials_to_options() {
        assert_eq!(
            strip_credentials("nats://a:s3cret@h:1, tls://tok@h2:2,nats://h3:3"),
            "nats://h:1, tls://h2:2,nats://h3:3"
        );
        assert_eq!(
            url_credentials("nats://h:1,nats://a:s3cret@h:4222"),
            Some(UrlAuth::UserPassword("a".into(), "s3cret".into()))
        );
        assert_eq!(
            url_credentials("nats://tok@h:1"),
            Some(UrlAuth::Token("tok".into()))
        );
        assert_eq!(url_credentials("nats://h:1"), None);
    }
}
