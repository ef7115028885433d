//! Why a connection attempt to the control plane failed, in a few words
//! ("invalid peer certificate: UnknownIssuer", "connection refused"), sorted
//! into the kinds a user acts on differently. `geolb` turns it into its one
//! error line; the agent logs it when the control plane stays away.

use async_nats::{ConnectError, ConnectErrorKind};
use std::error::Error as _;
use std::fmt;
use std::time::Duration;

/// What went wrong, by what the user should check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The server refused the credentials.
    Auth,
    /// The TLS handshake failed (untrusted or mismatched certificate, no client certificate).
    Tls,
    /// The URL cannot be parsed.
    BadUrl,
    /// The host name does not resolve.
    Dns,
    /// Nothing answered (refused, reset, timed out).
    Unreachable,
}

impl FailureKind {
    /// Its name, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Auth => "auth",
            FailureKind::Tls => "tls",
            FailureKind::BadUrl => "bad_url",
            FailureKind::Dns => "dns",
            FailureKind::Unreachable => "unreachable",
        }
    }

    /// What to check next, in a few words.
    pub fn advice(self) -> &'static str {
        match self {
            FailureKind::Auth => "check --creds, --user/--password, --token, --nkey or --nkey-file",
            FailureKind::Tls => "check --tls-ca (GEOLB_TLS_CA: the CA that signed the server's certificate; without it Mozilla's roots are trusted) and --tls-cert/--tls-key",
            FailureKind::BadUrl => "check --control (GEOLB_CONTROL)",
            FailureKind::Dns => "check the host name in --control (GEOLB_CONTROL) and this machine's DNS",
            FailureKind::Unreachable => "is it running, and does this machine reach it?",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One failed attempt: its kind and its reason on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What to check.
    pub kind: FailureKind,
    /// Why, in a few words, from the innermost error.
    pub reason: String,
}

impl Failure {
    /// Sorts `error`; `timeout` is the attempt's connection timeout (for "no answer within 2s").
    pub fn of(error: &ConnectError, timeout: Duration) -> Failure {
        let (kind, reason) = match error.kind() {
            ConnectErrorKind::Authentication | ConnectErrorKind::AuthorizationViolation => {
                (FailureKind::Auth, error.to_string())
            }
            ConnectErrorKind::ServerParse => (FailureKind::BadUrl, error.to_string()),
            ConnectErrorKind::Tls => (FailureKind::Tls, innermost(error)),
            ConnectErrorKind::TimedOut => (
                FailureKind::Unreachable,
                format!("no answer within {}s", timeout.as_secs()),
            ),
            ConnectErrorKind::Dns => (FailureKind::Dns, "cannot resolve the host name".to_string()),
            _ => {
                let reason = io_reason(error);
                match is_tls(&reason) {
                    true => (FailureKind::Tls, reason),
                    false => (FailureKind::Unreachable, reason),
                }
            }
        };
        Failure { kind, reason }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.reason)
    }
}

/// Whether an I/O failure is the TLS handshake's (rustls reports through I/O errors).
fn is_tls(reason: &str) -> bool {
    let reason = reason.to_lowercase();
    ["certificate", "tls", "handshake"]
        .iter()
        .any(|word| reason.contains(word))
}

/// The innermost error's text, on one line ("invalid peer certificate: UnknownIssuer").
fn innermost(error: &ConnectError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(err) = source {
        text = err.to_string();
        source = err.source();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A few words from the innermost I/O error ("connection refused").
fn io_reason(error: &ConnectError) -> String {
    let mut source = error.source();
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                std::io::ErrorKind::TimedOut => "timed out".to_string(),
                std::io::ErrorKind::ConnectionReset => "connection reset".to_string(),
                _ => strip_os_error(&io.to_string()),
            };
        }
        source = err.source();
    }
    strip_os_error(&error.to_string())
}

/// "No route to host (os error 113)" becomes "no route to host".
fn strip_os_error(text: &str) -> String {
    let text = text.split(" (os error").next().unwrap_or(text);
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_failures_by_what_to_check() {
        let timeout = Duration::from_secs(2);
        let refused = ConnectError::with_source(
            ConnectErrorKind::Io,
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        );
        assert_eq!(
            Failure::of(&refused, timeout),
            Failure {
                kind: FailureKind::Unreachable,
                reason: "connection refused".into()
            }
        );
        let untrusted = ConnectError::with_source(
            ConnectErrorKind::Io,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "invalid peer certificate: UnknownIssuer",
            ),
        );
        let failure = Failure::of(&untrusted, timeout);
        assert_eq!(failure.kind, FailureKind::Tls);
        assert_eq!(failure.reason, "invalid peer certificate: UnknownIssuer");
        assert!(failure.kind.advice().contains("--tls-ca"));
        assert_eq!(
            strip_os_error("Connection refused (os error 111)"),
            "connection refused"
        );
        let slow = ConnectError::new(ConnectErrorKind::TimedOut);
        assert_eq!(Failure::of(&slow, timeout).reason, "no answer within 2s");
    }
}
