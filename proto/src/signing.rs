//! Signed commands: the coordinator signs each command with an ed25519 NATS
//! nkey; an agent started with `--trust PUBKEY` obeys only commands signed by
//! one of its trusted keys, bound to it and to the verb, not expired and not
//! seen before.
//!
//! # On the wire
//! The request body is an [`Envelope`]:
//!
//! ```json
//! {"v":1,"key":"ADZ...","sig":"<base64url>","signed":"<base64url of the command JSON>"}
//! ```
//!
//! `signed` is the exact bytes of a [`Command`] that names its target
//! (`"agent"`, `"verb"`) and its validity (`"issued_at_ms"`,
//! `"expires_at_ms"`). `sig` is the ed25519 signature, by the key whose
//! public nkey is `key`, of [`DOMAIN`] followed by those bytes. Base64 is
//! URL-safe without padding. Because the agent id and verb are inside the
//! signed bytes, a signed command cannot be sent to another agent or verb.
//!
//! # Checks ([`Window::check`])
//! - the key is trusted and the signature verifies ([`open`]);
//! - `agent` and `verb` are this agent and the endpoint the request came to;
//! - `issued_at_ms` is not more than the skew in the future, `expires_at_ms`
//!   not more than the skew in the past, and `expires_at_ms - issued_at_ms`
//!   at most the validity window;
//! - the agent remembers `(key, id)` until `expires_at_ms + skew`, after which
//!   the command is refused as expired anyway: the replay memory never has to
//!   hold more than the ids accepted in one window.

use crate::command::{Command, Verb};
use crate::reply::{ErrorKind, ReplyError};
use data_encoding::BASE64URL_NOPAD;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Prefix of every signed message, so a signature made for something else
/// (a NATS connection nonce, another protocol) is never a valid command.
pub const DOMAIN: &[u8] = b"geolb-command-v1\n";
/// Longest validity of a signed command (`expires_at_ms - issued_at_ms`).
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(60);
/// Clock difference tolerated between the coordinator and an agent.
pub const DEFAULT_SKEW: Duration = Duration::from_secs(30);

/// A signed request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Protocol version.
    #[serde(default = "crate::default_version")]
    pub v: u32,
    /// The signer's public nkey.
    pub key: String,
    /// Base64url ed25519 signature of [`DOMAIN`] + the signed bytes.
    pub sig: String,
    /// Base64url of the command JSON.
    pub signed: String,
}

/// The fields of any request body that tell an envelope from a plain command.
#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    signed: Option<serde_json::Value>,
}

impl Envelope {
    /// Decodes `payload` as an envelope: `Ok(None)` when it is not one (a
    /// plain command, or not JSON at all: the command decoder says why).
    pub fn detect(payload: &[u8]) -> Result<Option<Envelope>, ReplyError> {
        match serde_json::from_slice::<Probe>(payload) {
            Ok(Probe { signed: Some(_) }) => {}
            _ => return Ok(None),
        }
        let envelope: Envelope = serde_json::from_slice(payload).map_err(|e| {
            ReplyError::new(
                ErrorKind::BadRequest,
                format!("signed command is malformed ({e}); send {{\"v\":1,\"key\":...,\"sig\":...,\"signed\":...}}"),
            )
        })?;
        if envelope.v != crate::PROTOCOL_VERSION {
            return Err(ReplyError::new(
                ErrorKind::BadRequest,
                format!(
                    "protocol version {} is not supported; this agent speaks version {}",
                    envelope.v,
                    crate::PROTOCOL_VERSION
                ),
            ));
        }
        Ok(Some(envelope))
    }

    /// Encodes the envelope as JSON bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serializes")
    }

    /// The signed bytes, decoded from base64url.
    pub fn signed_bytes(&self) -> Result<Vec<u8>, ReplyError> {
        BASE64URL_NOPAD
            .decode(self.signed.as_bytes())
            .map_err(|e| bad(format!("`signed` is not base64url without padding ({e})")))
    }
}

/// A key or key file that cannot be used. Never carries the seed itself.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The signing key file could not be read.
    #[error("cannot read signing key file {path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not an nkey seed.
    #[error("{0} holds no valid nkey seed (a line of 58 characters starting with S); generate one with `geolb control-plane init`")]
    BadSeed(String),
    /// A trusted key is not a public nkey.
    #[error("{0:?} is not a public nkey (56 characters starting with U, A, O or N); pass the signer's public key to --trust")]
    BadPublicKey(String),
}

/// Signs commands with one nkey seed (the coordinator's `--signing-key`).
#[derive(Clone)]
pub struct Signer {
    pair: nkeys::KeyPair,
    public: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("public", &self.public)
            .finish()
    }
}

impl Signer {
    /// A signer from seed text (`SU...`, `SA...`, ...); `what` names it in errors.
    pub fn from_seed(seed: &str, what: &str) -> Result<Signer, KeyError> {
        let seed = find_seed(seed).ok_or_else(|| KeyError::BadSeed(what.to_string()))?;
        let pair =
            nkeys::KeyPair::from_seed(seed).map_err(|_| KeyError::BadSeed(what.to_string()))?;
        let public = pair.public_key();
        Ok(Signer { pair, public })
    }

    /// A signer from a file holding a seed (a `.nk` file, or a `.creds` file).
    pub fn from_file(path: &Path) -> Result<Signer, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::File {
            path: path.to_path_buf(),
            source,
        })?;
        Signer::from_seed(&text, &path.display().to_string())
    }

    /// A new random signer (user key), for tests and `control-plane init`.
    pub fn generate() -> Signer {
        let pair = nkeys::KeyPair::new_account();
        let public = pair.public_key();
        Signer { pair, public }
    }

    /// The seed, to be written to a private file; never log it.
    pub fn seed(&self) -> String {
        self.pair.seed().expect("a signer always has its seed")
    }

    /// The public key agents trust (`--trust`).
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// Signs `command` (already [`Command::bound`]) as an envelope.
    pub fn seal(&self, command: &Command) -> Envelope {
        let bytes = command.encode();
        let mut message = Vec::with_capacity(DOMAIN.len() + bytes.len());
        message.extend_from_slice(DOMAIN);
        message.extend_from_slice(&bytes);
        let sig = self
            .pair
            .sign(&message)
            .expect("a signer always has its seed");
        Envelope {
            v: crate::PROTOCOL_VERSION,
            key: self.public.clone(),
            sig: BASE64URL_NOPAD.encode(&sig),
            signed: BASE64URL_NOPAD.encode(&bytes),
        }
    }

    /// Binds `command` to `agent` and `verb` with `validity`, and signs it.
    pub fn sign(&self, command: Command, agent: &str, verb: Verb, validity: Duration) -> Vec<u8> {
        self.seal(&command.bound(agent, verb, validity)).encode()
    }
}

/// The first whitespace-separated word that looks like an nkey seed.
fn find_seed(text: &str) -> Option<&str> {
    text.split_whitespace()
        .find(|w| w.len() == 58 && w.starts_with('S'))
}

/// The public keys an agent obeys (`--trust`).
#[derive(Clone, Default)]
pub struct Trust {
    keys: Vec<(String, nkeys::KeyPair)>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.keys()).finish()
    }
}

impl Trust {
    /// Trusts each public nkey of `keys`; an empty list trusts nobody (dev mode).
    pub fn new<S: AsRef<str>>(keys: impl IntoIterator<Item = S>) -> Result<Trust, KeyError> {
        let mut trust = Trust::default();
        for key in keys {
            let key = key.as_ref().trim();
            if key.is_empty() || trust.keys.iter().any(|(k, _)| k == key) {
                continue;
            }
            let pair = nkeys::KeyPair::from_public_key(key)
                .map_err(|_| KeyError::BadPublicKey(key.chars().take(64).collect()))?;
            trust.keys.push((key.to_string(), pair));
        }
        Ok(trust)
    }

    /// True when no key is trusted: commands are not checked.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The trusted public keys.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(k, _)| k.as_str())
    }

    fn find(&self, key: &str) -> Option<&nkeys::KeyPair> {
        self.keys.iter().find(|(k, _)| k == key).map(|(_, p)| p)
    }
}

/// A command whose signature verified.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    /// The command.
    pub command: Command,
    /// The public key that signed it.
    pub key: String,
}

/// Verifies `envelope` against `trust` and decodes the command inside.
pub fn open(envelope: &Envelope, trust: &Trust) -> Result<Opened, ReplyError> {
    let pair = trust.find(&envelope.key).ok_or_else(|| {
        unauthorized(format!(
            "key {} is not trusted by this agent; sign with a key given to its --trust",
            short(&envelope.key)
        ))
    })?;
    let sig = BASE64URL_NOPAD
        .decode(envelope.sig.as_bytes())
        .map_err(|_| unauthorized("the signature is not base64url without padding".into()))?;
    let bytes = envelope.signed_bytes()?;
    let mut message = Vec::with_capacity(DOMAIN.len() + bytes.len());
    message.extend_from_slice(DOMAIN);
    message.extend_from_slice(&bytes);
    pair.verify(&message, &sig).map_err(|_| {
        unauthorized(format!(
            "the signature does not verify with key {}",
            short(&envelope.key)
        ))
    })?;
    Ok(Opened {
        command: Command::decode(&bytes)?,
        key: envelope.key.clone(),
    })
}

/// Decodes the command inside `envelope` without checking the signature
/// (an agent that trusts no key).
pub fn open_unverified(envelope: &Envelope) -> Result<Command, ReplyError> {
    Command::decode(&envelope.signed_bytes()?)
}

/// The validity rules of signed commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Longest `expires_at_ms - issued_at_ms`.
    pub validity: Duration,
    /// Clock difference tolerated either way.
    pub skew: Duration,
}

impl Default for Window {
    fn default() -> Window {
        Window {
            validity: DEFAULT_VALIDITY,
            skew: DEFAULT_SKEW,
        }
    }
}

impl Window {
    /// Checks that `command` is for `agent` and `verb` and valid at `now_ms`;
    /// returns until when its id must be remembered against replays.
    pub fn check(
        &self,
        command: &Command,
        agent: &str,
        verb: Verb,
        now_ms: u64,
    ) -> Result<u64, ReplyError> {
        match command.agent.as_deref() {
            Some(a) if a == agent => {}
            Some(a) => {
                return Err(unauthorized(format!(
                    "the command was signed for agent {:?}, not {agent:?}",
                    clip(a)
                )))
            }
            None => return Err(unauthorized("the signed command names no agent".into())),
        }
        match command.verb.as_deref() {
            Some(v) if v == verb.as_str() => {}
            Some(v) => {
                return Err(unauthorized(format!(
                    "the command was signed for verb {:?}, not {verb}",
                    clip(v)
                )))
            }
            None => return Err(unauthorized("the signed command names no verb".into())),
        }
        let (Some(issued), Some(expires)) = (command.issued_at_ms, command.expires_at_ms) else {
            return Err(unauthorized(
                "the signed command lacks issued_at_ms or expires_at_ms".into(),
            ));
        };
        let skew = self.skew.as_millis() as u64;
        let validity = self.validity.as_millis() as u64;
        if expires < issued || expires - issued > validity {
            return Err(unauthorized(format!(
                "the command is valid for {} ms; this agent accepts at most {validity} ms",
                expires.saturating_sub(issued)
            )));
        }
        if issued > now_ms.saturating_add(skew) {
            return Err(unauthorized(format!(
                "the command was issued {} ms in the future, beyond the tolerated clock skew of {skew} ms; check the clocks",
                issued - now_ms
            )));
        }
        let deadline = expires.saturating_add(skew);
        if now_ms > deadline {
            return Err(unauthorized(format!(
                "the command expired {} ms ago (clock skew tolerated: {skew} ms); send a new one",
                now_ms - expires
            )));
        }
        Ok(deadline)
    }
}

fn bad(message: String) -> ReplyError {
    ReplyError::new(ErrorKind::BadRequest, message)
}

fn unauthorized(message: String) -> ReplyError {
    ReplyError::new(ErrorKind::Unauthorized, message)
}

/// The start of a public key, enough to recognise it.
fn short(key: &str) -> String {
    let head: String = key.chars().take(12).collect();
    if key.chars().count() > 12 {
        format!("{head}...")
    } else {
        head
    }
}

fn clip(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
#[path = "signing_tests.rs"]
mod tests;
