//! The roots TLS to the control plane trusts, and the rustls client
//! configuration built from them.
//!
//! - With `--tls-ca FILE` (`GEOLB_TLS_CA`): only the CA certificates in FILE,
//!   so a private control plane is trusted through its own CA and nothing else.
//! - Otherwise: Mozilla's root certificates compiled into the binary
//!   (webpki-roots), so the same set is trusted on every host and in the
//!   images, which are `FROM scratch` and hold no certificate store:
//!   `tls://connect.ngs.global` verifies there like anywhere else. When
//!   `SSL_CERT_FILE` or `SSL_CERT_DIR` is set, the certificates they name
//!   are trusted too (the conventional way to add a CA to the public ones).
//!
//! The host's own store (`/etc/ssl/certs`) is not read unless those
//! variables point at it: it is the same Mozilla set, and parsed it is held
//! for good (about 100 KiB for Debian's 145 roots, measured, against 10 KiB
//! for the compiled-in ones, which stay in the binary's read-only data).
//! [`client_config`] builds the configuration once (the agent shares it
//! between its connections); [`Trust`] says what it holds, for the agent's
//! log line and its `/metrics`.

use super::ConnectArgsError;
use async_nats::rustls::pki_types::pem::PemObject;
use async_nats::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use async_nats::rustls::{ClientConfig, RootCertStore};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What a TLS configuration trusts: where its roots came from, and how many.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    /// `--tls-ca`: the file, and the CA certificates taken from it.
    pub ca_file: Option<(PathBuf, usize)>,
    /// Mozilla's roots compiled in (0 with `--tls-ca`).
    pub compiled: usize,
    /// Roots from `SSL_CERT_FILE` / `SSL_CERT_DIR` (0 with `--tls-ca`, or when neither is set).
    pub cert_env: usize,
    /// Why `SSL_CERT_FILE` / `SSL_CERT_DIR` could not be read (e.g. no such file).
    pub cert_env_errors: Vec<String>,
}

impl Trust {
    /// Every root trusted.
    pub fn total(&self) -> usize {
        self.ca_file.as_ref().map_or(0, |(_, n)| *n) + self.compiled + self.cert_env
    }
}

impl fmt::Display for Trust {
    /// "146 Mozilla roots compiled in", "... and 1 from SSL_CERT_FILE/SSL_CERT_DIR"
    /// or "1 CA from /x/ca.pem (--tls-ca)".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.ca_file {
            Some((path, n)) => write!(f, "{n} CA from {} (--tls-ca)", path.display()),
            None => {
                write!(f, "{} Mozilla roots compiled in", self.compiled)?;
                match cert_env_set() {
                    true => write!(f, " and {} from SSL_CERT_FILE/SSL_CERT_DIR", self.cert_env),
                    false => Ok(()),
                }
            }
        }
    }
}

/// Whether `SSL_CERT_FILE` or `SSL_CERT_DIR` is set.
fn cert_env_set() -> bool {
    ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()))
}

/// The roots to trust: those in `ca` alone, else the compiled-in ones and
/// those `SSL_CERT_FILE` / `SSL_CERT_DIR` name.
pub fn roots(ca: Option<&Path>) -> Result<(RootCertStore, Trust), ConnectArgsError> {
    let mut store = RootCertStore::empty();
    let mut trust = Trust::default();
    match ca {
        Some(path) => {
            let bad = |reason: String| ConnectArgsError::TlsCa {
                path: path.to_path_buf(),
                reason,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(e.to_string()))?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(bad("it holds no usable PEM certificate".into()));
            }
            trust.ca_file = Some((path.to_path_buf(), added));
        }
        None => {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            trust.compiled = store.len();
            if cert_env_set() {
                // With either variable set, this reads only what they name.
                let named = rustls_native_certs::load_native_certs();
                trust.cert_env_errors = named.errors.iter().map(|e| e.to_string()).collect();
                trust.cert_env = store.add_parsable_certificates(named.certs).0;
            }
        }
    }
    Ok((store, trust))
}

/// The client configuration: [`roots`] and, with `client`, a client certificate and key.
pub fn client_config(
    ca: Option<&Path>,
    client: Option<(&Path, &Path)>,
) -> Result<(ClientConfig, Trust), ConnectArgsError> {
    let (store, trust) = roots(ca)?;
    let provider = Arc::new(async_nats::rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectArgsError::TlsClient(e.to_string()))?
        .with_root_certificates(store);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let read = |path: &Path, e: &dyn fmt::Display| {
                ConnectArgsError::TlsClient(format!("cannot read {}: {e}", path.display()))
            };
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|e| read(cert, &e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| read(cert, &e))?;
            if chain.is_empty() {
                return Err(read(cert, &"no PEM certificate in it"));
            }
            let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| read(key, &e))?;
            builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                ConnectArgsError::TlsClient(format!(
                    "{e}; do --tls-cert and --tls-key belong together?"
                ))
            })?
        }
    };
    Ok((config, trust))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_ca_file_the_compiled_in_roots_are_trusted() {
        let (store, trust) = roots(None).unwrap();
        assert!(trust.compiled >= 100, "{trust:?}");
        assert_eq!(trust.compiled, webpki_roots::TLS_SERVER_ROOTS.len());
        assert_eq!(store.len(), trust.total());
        assert!(trust.to_string().contains("Mozilla roots compiled in"));
    }

    #[test]
    fn a_ca_file_that_holds_no_certificate_is_refused() {
        let path = std::env::temp_dir().join(format!("geolb-no-ca-{}.pem", std::process::id()));
        std::fs::write(&path, "not a certificate\n").unwrap();
        let err = roots(Some(&path)).unwrap_err().to_string();
        let _ = std::fs::remove_file(&path);
        assert!(err.contains("no usable PEM certificate"), "{err}");
        assert!(err.contains("GEOLB_TLS_CA"), "{err}");
    }
}
