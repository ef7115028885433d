//! The coordinator's connection to the control plane and its command path.
//!
//! [`Control::connect`] fails fast: one attempt per URL with a 2 s connection
//! timeout and no retry, so a typo or a stopped server gives one clear line
//! instead of a hang. [`Control::request`] sends one [`Command`] to one
//! agent's endpoint and decodes its [`Reply`]: one publish and one reply on
//! the client's shared request inbox, no extra round trip.

use async_nats::{RequestErrorKind, ServerAddr};
use bytes::Bytes;
use geolb_proto::connect::{ConnectArgsError, ControlArgs, Failure, FailureKind};
use geolb_proto::signing::{Signer, DEFAULT_VALIDITY};
use geolb_proto::{subject, Command, Reply, Request};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long one connection attempt to the control plane may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Name the coordinator's connection carries on the control plane.
pub const CLIENT_NAME: &str = "geolb";

/// How the coordinator signs commands (`geolb --signing-key FILE`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SigningArgs {
    /// File holding the nkey seed that signs every command (agents trust its public key with --trust).
    #[arg(long, env = "GEOLB_SIGNING_KEY")]
    pub signing_key: Option<std::path::PathBuf>,
    /// How long a signed command stays valid (agents accept at most their --command-validity).
    #[arg(long, env = "GEOLB_COMMAND_VALIDITY", default_value = "60s")]
    pub command_validity: geolb_proto::WireDuration,
}

impl SigningArgs {
    /// The signer, read from `--signing-key`.
    pub fn signer(&self) -> Result<Option<Signer>, geolb_proto::signing::KeyError> {
        self.signing_key
            .as_deref()
            .map(Signer::from_file)
            .transpose()
    }
}

/// A connected coordinator: the NATS client, the command id generator and,
/// when given, the key that signs every command.
pub struct Control {
    client: async_nats::Client,
    id_prefix: String,
    next_id: AtomicU64,
    url: String,
    signer: Option<Signer>,
    validity: Duration,
}

/// Why the control plane could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No `--control` URL was given.
    #[error("no control plane: pass --control nats://HOST:PORT or set GEOLB_CONTROL")]
    NoUrl,
    /// A URL could not be parsed.
    #[error("control plane URL {url:?} is invalid: {reason}")]
    BadUrl {
        /// The URL, secrets removed.
        url: String,
        /// Why.
        reason: String,
    },
    /// A credentials or TLS flag is wrong.
    #[error(transparent)]
    Args(#[from] ConnectArgsError),
    /// The server refused our credentials.
    #[error("the control plane at {url} refused the credentials: {reason}; check --creds, --user/--password, --token, --nkey or --nkey-file")]
    Auth {
        /// The URL, secrets removed.
        url: String,
        /// Why.
        reason: String,
    },
    /// The TLS handshake failed (an untrusted or mismatched certificate).
    #[error("TLS to the control plane at {url} failed: {reason}; check --tls-ca (the CA that signed the server's certificate) and --tls-cert/--tls-key")]
    Tls {
        /// The URL, secrets removed.
        url: String,
        /// Why, from the TLS library.
        reason: String,
    },
    /// Nothing answered at the URL.
    #[error("cannot reach the control plane at {url}: {reason}; is it running?")]
    Unreachable {
        /// The URL, secrets removed.
        url: String,
        /// Why, in a few words.
        reason: String,
    },
}

/// Why a command got no usable reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestFailure {
    /// Nobody subscribes to the agent's endpoint.
    #[error("no agent with id {0} answers; check `geolb fleet ls`")]
    NoAgent(String),
    /// The agent is there but did not answer in time.
    #[error("no reply within {}", humantime::format_duration(*.0))]
    TimedOut(Duration),
    /// The reply could not be decoded or does not answer our command.
    #[error("bad reply: {0}")]
    BadReply(String),
    /// The id cannot be a subject token.
    #[error("{0}")]
    InvalidTarget(String),
    /// The NATS client failed (disconnected, closed).
    #[error("NATS error: {0}")]
    Nats(String),
}

impl RequestFailure {
    /// A short machine-readable name of the failure.
    pub fn kind(&self) -> &'static str {
        match self {
            RequestFailure::NoAgent(_) => "no_agent",
            RequestFailure::TimedOut(_) => "timeout",
            RequestFailure::BadReply(_) => "bad_reply",
            RequestFailure::InvalidTarget(_) => "invalid_target",
            RequestFailure::Nats(_) => "nats",
        }
    }
}

impl Control {
    /// Connects to the control plane named by `args`, failing fast.
    pub async fn connect(args: &ControlArgs) -> Result<Control, ControlError> {
        let server_url = args.server_url();
        let raw = server_url.trim();
        if raw.is_empty() {
            return Err(ControlError::NoUrl);
        }
        let url = args.display_url();
        let servers = parse_servers(raw).map_err(|reason| ControlError::BadUrl {
            url: url.clone(),
            reason,
        })?;
        let options = args
            .options(CLIENT_NAME)
            .await?
            .connection_timeout(CONNECT_TIMEOUT);
        let client = options
            .connect(servers)
            .await
            .map_err(|e| connect_error(&url, &e))?;
        Ok(Control::from_client(client, url))
    }

    /// Wraps an already connected client (tests, benchmarks).
    pub fn from_client(client: async_nats::Client, url: impl Into<String>) -> Control {
        Control {
            client,
            id_prefix: random_base62(16),
            next_id: AtomicU64::new(1),
            url: url.into(),
            signer: None,
            validity: DEFAULT_VALIDITY,
        }
    }

    /// Signs every command with `signer`, valid for `validity` from its issue time.
    pub fn with_signer(mut self, signer: Option<Signer>, validity: Duration) -> Control {
        self.signer = signer;
        self.validity = validity;
        self
    }

    /// The public key commands are signed with, if any.
    pub fn signing_key(&self) -> Option<&str> {
        self.signer.as_ref().map(Signer::public_key)
    }

    /// The underlying NATS client.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The control-plane URL, with no secret in it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A command id unique across coordinators: a random prefix and a counter.
    pub fn next_command_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.id_prefix)
    }

    /// Sends `request` to agent `agent_id` and waits up to `timeout` for its reply.
    pub async fn request(
        &self,
        agent_id: &str,
        request: &Request,
        timeout: Duration,
    ) -> Result<Reply, RequestFailure> {
        subject::validate_name("agent id", agent_id)
            .map_err(|e| RequestFailure::InvalidTarget(e.to_string()))?;
        let command = Command::new(self.next_command_id(), request);
        let id = command.id.clone();
        let body = match &self.signer {
            Some(signer) => signer.sign(command, agent_id, request.verb(), self.validity),
            None => command.encode(),
        };
        let nats_request = async_nats::Request::new()
            .payload(Bytes::from(body))
            .timeout(Some(timeout));
        let message = self
            .client
            .send_request(subject::command(agent_id, request.verb()), nats_request)
            .await
            .map_err(|e| match e.kind() {
                RequestErrorKind::NoResponders => RequestFailure::NoAgent(agent_id.to_string()),
                RequestErrorKind::TimedOut => RequestFailure::TimedOut(timeout),
                _ => RequestFailure::Nats(e.to_string()),
            })?;
        let reply = Reply::decode(&message.payload).map_err(|e| {
            RequestFailure::BadReply(format!("agent {agent_id} sent undecodable JSON: {e}"))
        })?;
        // A refusal before the agent could read the id (rate limited, not
        // decodable) comes back without it; the request inbox is ours alone.
        let refused_early = reply.id.is_empty() && !reply.ok;
        if reply.id != id && !refused_early {
            return Err(RequestFailure::BadReply(format!(
                "agent {agent_id} answered command {:?}, not {id:?}",
                reply.id
            )));
        }
        Ok(reply)
    }
}

fn parse_servers(raw: &str) -> Result<Vec<ServerAddr>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<ServerAddr>().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()
        .and_then(|v| {
            if v.is_empty() {
                Err("no server in the list".to_string())
            } else {
                Ok(v)
            }
        })
}

fn connect_error(url: &str, error: &async_nats::ConnectError) -> ControlError {
    let url = url.to_string();
    let Failure { kind, reason } = Failure::of(error, CONNECT_TIMEOUT);
    match kind {
        FailureKind::Auth => ControlError::Auth { url, reason },
        FailureKind::BadUrl => ControlError::BadUrl { url, reason },
        FailureKind::Tls => ControlError::Tls { url, reason },
        FailureKind::Dns | FailureKind::Unreachable => ControlError::Unreachable { url, reason },
    }
}

fn random_base62(len: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (0..len)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lists_are_split_and_checked() {
        assert_eq!(
            parse_servers("nats://127.0.0.1:1, 127.0.0.1:2")
                .unwrap()
                .len(),
            2
        );
        assert!(parse_servers(" , ").is_err());
        assert!(parse_servers("nats://[::1").is_err());
    }

    #[test]
    fn ids_are_base62_and_distinct() {
        let a = random_base62(16);
        assert_eq!(a.len(), 16);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, random_base62(16));
    }

    #[test]
    fn failures_say_what_to_do() {
        let no = RequestFailure::NoAgent("lon-1".into());
        assert_eq!(
            no.to_string(),
            "no agent with id lon-1 answers; check `geolb fleet ls`"
        );
        assert_eq!(no.kind(), "no_agent");
        let late = RequestFailure::TimedOut(Duration::from_millis(1500));
        assert_eq!(late.to_string(), "no reply within 1s 500ms");
    }
}
