//! How both binaries reach the control plane: one set of flags (each with a
//! `GEOLB_*` environment variable) turned into async-nats options.

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
    /// Nkey seed (SU...).
    #[arg(long, env = "GEOLB_NKEY", hide_env_values = true)]
    pub nkey: Option<String>,
    /// CA certificate to trust for TLS to the control plane.
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
    /// A TLS file does not exist.
    #[error("TLS file {0} does not exist; check --tls-ca / --tls-cert / --tls-key")]
    TlsFile(PathBuf),
}

impl ControlArgs {
    /// Async-nats options with the credentials and TLS settings applied.
    pub async fn options(
        &self,
        name: &str,
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
        if let (Some(user), Some(password)) = (&self.user, &self.password) {
            options = options.user_and_password(user.clone(), password.clone());
        }
        if let Some(token) = &self.token {
            options = options.token(token.clone());
        }
        if let Some(seed) = &self.nkey {
            options = options.nkey(seed.clone());
        }
        if let Some(ca) = &self.tls_ca {
            exists(ca)?;
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            exists(cert)?;
            exists(key)?;
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        Ok(options.reconnect_delay_callback(reconnect_delay))
    }

    /// The URL for messages, with no secret in it.
    pub fn display_url(&self) -> String {
        self.url.as_deref().map(redact_url).unwrap_or_default()
    }
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
}
