//! Commands: the verbs an agent obeys and their arguments.
//!
//! The request body on `geolb.agent.<id>.<verb>` is a [`Command`]:
//! `{"v":1,"id":"c-42","args":{"mode":"ldm","grace":"30s"}}`. Unknown
//! argument names, negative durations and out-of-range counts are refused
//! with [`ErrorKind::InvalidArgument`].

use crate::duration::WireDuration;
use crate::reply::{ErrorKind, ReplyError};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// Most replicas one agent supervises.
pub const MAX_REPLICAS: u32 = 256;
/// Most down/up cycles one flap may ask for.
pub const MAX_FLAP_CYCLES: u32 = 10_000;
/// Longest command id accepted.
pub const MAX_ID_LEN: usize = 128;

/// A verb of the back channel; each is one endpoint of the agent's service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verb {
    /// Report state; changes nothing.
    Status,
    /// Stop every replica (`ldm`, `term` or `kill`); it stays stopped until `start`.
    Stop,
    /// Start stopped replicas.
    Start,
    /// Stop then start.
    Restart,
    /// Drain, swap the binary, start, and gate on health.
    Upgrade,
    /// Take the child down and up repeatedly.
    Flap,
    /// Change the number of replicas.
    Scale,
}

impl Verb {
    /// Every verb, in the order endpoints are registered.
    pub const ALL: [Verb; 7] = [
        Verb::Status,
        Verb::Stop,
        Verb::Start,
        Verb::Restart,
        Verb::Upgrade,
        Verb::Flap,
        Verb::Scale,
    ];

    /// The verb's name on the wire and in subjects.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Status => "status",
            Verb::Stop => "stop",
            Verb::Start => "start",
            Verb::Restart => "restart",
            Verb::Upgrade => "upgrade",
            Verb::Flap => "flap",
            Verb::Scale => "scale",
        }
    }
}

impl std::fmt::Display for Verb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Verb {
    type Err = ReplyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Verb::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                ReplyError::new(
                    ErrorKind::UnknownVerb,
                    format!(
                        "unknown verb {s:?}; use one of status, stop, start, restart, upgrade, flap, scale"
                    ),
                )
            })
    }
}

/// How `stop` (and the down phase of `restart`) ends the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopMode {
    /// SIGUSR2: nats-server lame-duck mode, wait for it to drain and exit.
    Ldm,
    /// SIGTERM, then SIGKILL after the grace period.
    #[default]
    Term,
    /// SIGKILL at once.
    Kill,
}

/// How `flap` takes the child down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlapMode {
    /// SIGTERM (then SIGKILL after a short grace); started again on up.
    #[default]
    Stop,
    /// SIGKILL; started again on up.
    Kill,
    /// SIGSTOP of the process group; SIGCONT on up (TCP stays open).
    Pause,
}

/// Arguments of `stop` and `restart`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StopArgs {
    /// How to stop; `term` when absent.
    #[serde(default)]
    pub mode: StopMode,
    /// `term`: how long before SIGKILL; `ldm`: how long the drain may take
    /// before SIGINT ends it (SIGKILL 5 s later). The agent's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace: Option<WireDuration>,
}

/// Arguments of `upgrade`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpgradeArgs {
    /// An installed nats-server version (`2.14.6`), a path to a binary, or
    /// `obj:NAME`, a binary stored on the control plane (`geolb binary put`).
    pub to: String,
    /// Drain with lame-duck mode first (default); `false` stops with SIGTERM.
    #[serde(default = "yes")]
    pub drain: bool,
    /// How long the health gate may take; the agent's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<WireDuration>,
    /// How long the drain may take before SIGINT ends it (clients that have
    /// not left by then are disconnected); the agent's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace: Option<WireDuration>,
    /// Only say whether `to` is available here (the same `not_installed`
    /// refusal an upgrade would give); change nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub check: bool,
    /// Resolve `to` and, for `obj:NAME`, download it beside the installed
    /// versions; change nothing that runs (a rollout's first step then waits
    /// for no download).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prefetch: bool,
}

/// Arguments of `flap`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlapArgs {
    /// How long each down phase lasts (default 2s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down: Option<WireDuration>,
    /// How long each up phase lasts (default 2s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up: Option<WireDuration>,
    /// How many down/up cycles (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycles: Option<u32>,
    /// How the child is taken down.
    #[serde(default)]
    pub mode: FlapMode,
    /// End a running flap early and leave the child running.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancel: bool,
}

/// Arguments of `scale`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleArgs {
    /// Wanted number of replicas, 1 to [`MAX_REPLICAS`].
    pub replicas: u32,
}

fn yes() -> bool {
    true
}

/// A decoded, validated command: the verb with its arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `status`.
    Status,
    /// `stop`.
    Stop(StopArgs),
    /// `start`.
    Start,
    /// `restart`.
    Restart(StopArgs),
    /// `upgrade`.
    Upgrade(UpgradeArgs),
    /// `flap`.
    Flap(FlapArgs),
    /// `scale`.
    Scale(ScaleArgs),
}

impl Request {
    /// The verb this request is sent to.
    pub fn verb(&self) -> Verb {
        match self {
            Request::Status => Verb::Status,
            Request::Stop(_) => Verb::Stop,
            Request::Start => Verb::Start,
            Request::Restart(_) => Verb::Restart,
            Request::Upgrade(_) => Verb::Upgrade,
            Request::Flap(_) => Verb::Flap,
            Request::Scale(_) => Verb::Scale,
        }
    }

    /// The request's arguments as JSON (`null` for verbs without any).
    pub fn args(&self) -> serde_json::Value {
        let value = match self {
            Request::Status | Request::Start => return serde_json::Value::Null,
            Request::Stop(a) | Request::Restart(a) => serde_json::to_value(a),
            Request::Upgrade(a) => serde_json::to_value(a),
            Request::Flap(a) => serde_json::to_value(a),
            Request::Scale(a) => serde_json::to_value(a),
        };
        value.unwrap_or(serde_json::Value::Null)
    }

    /// Parses and validates the arguments sent to `verb`.
    pub fn parse(verb: Verb, args: &serde_json::Value) -> Result<Request, ReplyError> {
        let request = match verb {
            Verb::Status => no_args(verb, args).map(|_| Request::Status)?,
            Verb::Start => no_args(verb, args).map(|_| Request::Start)?,
            Verb::Stop => Request::Stop(typed(verb, args)?),
            Verb::Restart => Request::Restart(typed(verb, args)?),
            Verb::Upgrade => Request::Upgrade(typed(verb, args)?),
            Verb::Flap => Request::Flap(typed(verb, args)?),
            Verb::Scale => Request::Scale(typed(verb, args)?),
        };
        request.validate()?;
        Ok(request)
    }

    fn validate(&self) -> Result<(), ReplyError> {
        let invalid = |msg: String| Err(ReplyError::new(ErrorKind::InvalidArgument, msg));
        match self {
            Request::Scale(a) if a.replicas == 0 || a.replicas > MAX_REPLICAS => invalid(format!(
                "replicas {} is out of range; use 1 to {MAX_REPLICAS} (stop the agent's child with `stop`)",
                a.replicas
            )),
            Request::Flap(a) if !a.cancel && a.cycles == Some(0) => {
                invalid("cycles 0 would do nothing; use 1 or more".into())
            }
            Request::Flap(a) if a.cycles.unwrap_or(0) > MAX_FLAP_CYCLES => invalid(format!(
                "cycles {} is too many; use at most {MAX_FLAP_CYCLES}",
                a.cycles.unwrap_or(0)
            )),
            Request::Upgrade(a) if a.to.trim().is_empty() => {
                invalid("upgrade needs `to`: a nats-server version such as 2.14.6, a binary path or obj:NAME".into())
            }
            Request::Upgrade(a) if a.check && a.prefetch => {
                invalid("upgrade takes `check` or `prefetch`, not both".into())
            }
            Request::Upgrade(a) => match crate::objects::reference(&a.to) {
                Some(name) => crate::objects::validate_name(name).or_else(|e| invalid(e.to_string())),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

fn no_args(verb: Verb, args: &serde_json::Value) -> Result<(), ReplyError> {
    match args {
        serde_json::Value::Null => Ok(()),
        serde_json::Value::Object(map) if map.is_empty() => Ok(()),
        other => Err(ReplyError::new(
            ErrorKind::InvalidArgument,
            format!("{verb} takes no arguments, got {other}"),
        )),
    }
}

fn typed<T: DeserializeOwned>(verb: Verb, args: &serde_json::Value) -> Result<T, ReplyError> {
    let args = match args {
        serde_json::Value::Null => serde_json::Value::Object(Default::default()),
        serde_json::Value::Object(_) => args.clone(),
        other => {
            return Err(ReplyError::new(
                ErrorKind::InvalidArgument,
                format!("arguments of {verb} must be a JSON object, got {other}"),
            ))
        }
    };
    serde_json::from_value(args).map_err(|e| {
        ReplyError::new(
            ErrorKind::InvalidArgument,
            format!("bad arguments for {verb}: {e}"),
        )
    })
}

/// The body of every command request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// Protocol version.
    #[serde(default = "crate::default_version")]
    pub v: u32,
    /// Unique command id; a repeated id is answered from memory.
    pub id: String,
    /// The verb's arguments.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub args: serde_json::Value,
    /// When the sender issued the command (ms since epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at_ms: Option<u64>,
    /// Signed commands only: the agent id the command is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Signed commands only: the verb the command is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verb: Option<String>,
    /// Signed commands only: when the command stops being valid (ms since epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
}

impl Command {
    /// A command with the given id carrying `request`'s arguments.
    pub fn new(id: impl Into<String>, request: &Request) -> Command {
        Command {
            v: crate::PROTOCOL_VERSION,
            id: id.into(),
            args: request.args(),
            issued_at_ms: Some(crate::now_ms()),
            agent: None,
            verb: None,
            expires_at_ms: None,
        }
    }

    /// Binds the command to one agent and verb and gives it an expiry
    /// `validity` after its issue time, as a signed command needs.
    pub fn bound(
        mut self,
        agent: impl Into<String>,
        verb: Verb,
        validity: std::time::Duration,
    ) -> Command {
        let issued = *self.issued_at_ms.get_or_insert_with(crate::now_ms);
        self.agent = Some(agent.into());
        self.verb = Some(verb.as_str().to_string());
        self.expires_at_ms = Some(issued.saturating_add(validity.as_millis() as u64));
        self
    }

    /// Decodes a request body; malformed JSON or a missing id is a `bad_request`.
    pub fn decode(payload: &[u8]) -> Result<Command, ReplyError> {
        let bad = |msg: String| ReplyError::new(ErrorKind::BadRequest, msg);
        let command: Command = serde_json::from_slice(payload).map_err(|e| {
            bad(format!(
                "command is not valid JSON ({e}); send {{\"id\":\"...\",\"args\":{{...}}}}"
            ))
        })?;
        if command.v != crate::PROTOCOL_VERSION {
            return Err(bad(format!(
                "protocol version {} is not supported; this agent speaks version {}",
                command.v,
                crate::PROTOCOL_VERSION
            )));
        }
        if command.id.is_empty() || command.id.len() > MAX_ID_LEN {
            return Err(bad(format!(
                "command id must be 1 to {MAX_ID_LEN} characters"
            )));
        }
        Ok(command)
    }

    /// Encodes the command as JSON bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a command always serializes")
    }
}

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;
