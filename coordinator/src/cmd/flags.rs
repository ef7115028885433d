//! The verb flags of `geolb cmd`, turned into a validated [`Request`].
//!
//! The flags become the verb's JSON arguments and go through
//! [`Request::parse`], the same validation the agent applies, so bad input
//! fails here before anything is sent. A flag that does not belong to the
//! verb is refused rather than silently dropped.

use crate::UsageError;
use clap::builder::BoolishValueParser;
use geolb_proto::{Request, StopMode, Verb, WireDuration};
use serde_json::{Map, Value};
use std::time::Duration;

/// Default reply timeout of a command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default reply timeout of an upgrade or a lame-duck stop (drains take time).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// Flags of the verbs; each verb takes only its own.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct VerbFlags {
    /// stop, restart: ldm, term or kill. flap: stop, kill or pause.
    #[arg(long, env = "GEOLB_CMD_MODE")]
    pub mode: Option<String>,
    /// stop, restart: before SIGKILL (term) or SIGINT (ldm); upgrade: how long the drain may take.
    #[arg(long, env = "GEOLB_CMD_GRACE")]
    pub grace: Option<WireDuration>,
    /// upgrade: an installed nats-server version (2.14.6), a binary path, or obj:NAME (`geolb binary put`).
    #[arg(long, env = "GEOLB_CMD_TO")]
    pub to: Option<String>,
    /// upgrade: drain with lame-duck mode first [default: true].
    #[arg(long, env = "GEOLB_CMD_DRAIN", value_name = "BOOL", action = clap::ArgAction::Set,
          value_parser = BoolishValueParser::new())]
    pub drain: Option<bool>,
    /// upgrade: only ask whether the agents have `--to`; change nothing.
    #[arg(long, env = "GEOLB_CMD_CHECK")]
    pub check: bool,
    /// upgrade: download obj:NAME to the agents now; change nothing that runs.
    #[arg(long, env = "GEOLB_CMD_PREFETCH", conflicts_with = "check")]
    pub prefetch: bool,
    /// upgrade: how long the agent's health gate may take.
    #[arg(long, env = "GEOLB_CMD_HEALTH_TIMEOUT", value_name = "D")]
    pub health_timeout: Option<WireDuration>,
    /// flap: how long each down phase lasts [agent default: 2s].
    #[arg(long, env = "GEOLB_CMD_DOWN", value_name = "D")]
    pub down: Option<WireDuration>,
    /// flap: how long each up phase lasts [agent default: 2s].
    #[arg(long, env = "GEOLB_CMD_UP", value_name = "D")]
    pub up: Option<WireDuration>,
    /// flap: how many down/up cycles [agent default: 3].
    #[arg(long, env = "GEOLB_CMD_CYCLES", value_name = "N")]
    pub cycles: Option<u32>,
    /// flap: end a running flap and leave the child running.
    #[arg(long, env = "GEOLB_CMD_CANCEL")]
    pub cancel: bool,
    /// scale: the wanted number of replicas.
    #[arg(long, env = "GEOLB_CMD_REPLICAS", value_name = "N")]
    pub replicas: Option<u32>,
}

/// The flags each verb takes, by their command-line names.
fn allowed(verb: Verb) -> &'static [&'static str] {
    match verb {
        Verb::Status | Verb::Start => &[],
        Verb::Stop | Verb::Restart => &["mode", "grace"],
        Verb::Upgrade => &[
            "to",
            "drain",
            "health-timeout",
            "grace",
            "check",
            "prefetch",
        ],
        Verb::Flap => &["mode", "down", "up", "cycles", "cancel"],
        Verb::Scale => &["replicas"],
    }
}

impl VerbFlags {
    /// The flags given, as (flag name, argument name, JSON value).
    fn given(&self) -> Vec<(&'static str, &'static str, Value)> {
        let duration = |d: &WireDuration| Value::String(d.to_string());
        let mut given = Vec::new();
        let mut push = |flag, key, value: Option<Value>| {
            if let Some(value) = value {
                given.push((flag, key, value));
            }
        };
        push("mode", "mode", self.mode.clone().map(Value::String));
        push("grace", "grace", self.grace.as_ref().map(duration));
        push("to", "to", self.to.clone().map(Value::String));
        push("drain", "drain", self.drain.map(Value::Bool));
        push(
            "health-timeout",
            "timeout",
            self.health_timeout.as_ref().map(duration),
        );
        push("down", "down", self.down.as_ref().map(duration));
        push("up", "up", self.up.as_ref().map(duration));
        push("cycles", "cycles", self.cycles.map(Value::from));
        push("cancel", "cancel", self.cancel.then_some(Value::Bool(true)));
        push("check", "check", self.check.then_some(Value::Bool(true)));
        let prefetch = self.prefetch.then_some(Value::Bool(true));
        push("prefetch", "prefetch", prefetch);
        push("replicas", "replicas", self.replicas.map(Value::from));
        given
    }

    /// The validated request for `verb`, or a usage error naming the bad flag.
    pub fn request(&self, verb: Verb) -> Result<Request, UsageError> {
        let allowed = allowed(verb);
        let mut args = Map::new();
        for (flag, key, value) in self.given() {
            if !allowed.contains(&flag) {
                return Err(UsageError(not_for(flag, verb, allowed)));
            }
            args.insert(key.to_string(), value);
        }
        match verb {
            Verb::Upgrade if !args.contains_key("to") => {
                return Err(UsageError(
                    "upgrade needs --to VERSION_OR_PATH (a nats-server version such as 2.14.6, a binary path, or obj:NAME)".into(),
                ))
            }
            Verb::Scale if !args.contains_key("replicas") => {
                return Err(UsageError("scale needs --replicas N".into()))
            }
            _ => {}
        }
        let args = if args.is_empty() {
            Value::Null
        } else {
            Value::Object(args)
        };
        let request = Request::parse(verb, &args).map_err(|e| UsageError(e.message))?;
        // What goes on the wire must pass the agent's own check too.
        Request::parse(verb, &request.args()).map_err(|e| UsageError(e.message))
    }
}

fn not_for(flag: &str, verb: Verb, allowed: &[&str]) -> String {
    if allowed.is_empty() {
        format!("--{flag} does not apply to {verb}; {verb} takes no flags")
    } else {
        let list: Vec<String> = allowed.iter().map(|f| format!("--{f}")).collect();
        format!(
            "--{flag} does not apply to {verb}; {verb} takes {}",
            list.join(", ")
        )
    }
}

/// How long to wait for a reply when `--timeout` is not given.
pub fn default_timeout(request: &Request) -> Duration {
    let grace_plus = |grace: Option<WireDuration>| {
        grace.map_or(DEFAULT_TIMEOUT, |g| {
            DEFAULT_TIMEOUT.max(g.0 + DEFAULT_TIMEOUT)
        })
    };
    match request {
        Request::Upgrade(args) => args.timeout.map_or(DRAIN_TIMEOUT, |t| {
            DRAIN_TIMEOUT.max(t.0 + Duration::from_secs(60))
        }),
        Request::Stop(args) | Request::Restart(args) if args.mode == StopMode::Ldm => {
            DRAIN_TIMEOUT.max(grace_plus(args.grace))
        }
        Request::Stop(args) | Request::Restart(args) => grace_plus(args.grace),
        _ => DEFAULT_TIMEOUT,
    }
}

#[cfg(test)]
#[path = "flags_tests.rs"]
mod tests;
