//! Replies to commands and their typed errors.

use crate::status::AgentStatus;
use serde::{Deserialize, Serialize};

/// What went wrong, so a caller can tell bad input from a stuck agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The body is not a valid command (not JSON, no id, wrong version).
    BadRequest,
    /// No such verb.
    UnknownVerb,
    /// An argument is unknown, negative or out of range.
    InvalidArgument,
    /// The upgrade target is not installed.
    NotInstalled,
    /// The request conflicts with the current state (`start` while running).
    Conflict,
    /// A gate (health, drain) did not pass in time.
    Timeout,
    /// The agent tried and failed (a spawn error, a dead child).
    Failed,
    /// The command was not signed by a trusted key, expired or replayed.
    Unauthorized,
    /// Too many commands; try again later.
    RateLimited,
    /// A fetched object's bytes do not match its stored sha256.
    ChecksumMismatch,
    /// The upgrade target is not an executable for this agent's architecture.
    NotExecutable,
    /// An error kind this version does not know.
    #[serde(other)]
    Unknown,
}

impl ErrorKind {
    /// The kind's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::UnknownVerb => "unknown_verb",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::NotInstalled => "not_installed",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Failed => "failed",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::ChecksumMismatch => "checksum_mismatch",
            ErrorKind::NotExecutable => "not_executable",
            ErrorKind::Unknown => "unknown",
        }
    }
}

/// A typed error with a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}: {message}", kind.as_str())]
pub struct ReplyError {
    /// The error's kind.
    pub kind: ErrorKind,
    /// What happened and what to do next.
    pub message: String,
}

impl ReplyError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ReplyError {
        ReplyError {
            kind,
            message: message.into(),
        }
    }
}

/// The answer to every command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// Protocol version.
    #[serde(default = "crate::default_version")]
    pub v: u32,
    /// The command id this answers (empty when the body had none).
    pub id: String,
    /// Whether the command was applied.
    pub ok: bool,
    /// Why not, when `ok` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ReplyError>,
    /// The agent's state after the command.
    pub state: AgentStatus,
}

impl Reply {
    /// A reply from the outcome of applying command `id`.
    pub fn new(
        id: impl Into<String>,
        outcome: Result<(), ReplyError>,
        state: AgentStatus,
    ) -> Reply {
        let error = outcome.err();
        Reply {
            v: crate::PROTOCOL_VERSION,
            id: id.into(),
            ok: error.is_none(),
            error,
            state,
        }
    }

    /// Encodes the reply as JSON bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a reply always serializes")
    }

    /// Decodes a reply body.
    pub fn decode(payload: &[u8]) -> Result<Reply, serde_json::Error> {
        serde_json::from_slice(payload)
    }
}
