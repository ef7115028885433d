//! Which commands the agent obeys. With `--trust` keys, only commands signed
//! by one of them, bound to this agent and verb, within their validity
//! window and not seen before ([`geolb_proto::signing`]); without, any
//! command (dev mode, announced by a warning at start).
//!
//! The replay memory keeps each accepted `(key, id)` until the command's
//! deadline (`expires_at_ms` + skew); past it the command is refused as
//! expired anyway, so forgetting it then is safe. It holds at most
//! [`MAX_REPLAY`] ids: with the default rate limit (200/s) and window (60 s
//! plus 30 s skew either way) it needs about 24,000; when it is full of
//! live ids, new commands are refused `rate_limited` rather than forgetting
//! one that could still be replayed.

use geolb_proto::signing::{self, Envelope, Trust, Window};
use geolb_proto::{now_ms, Command, ErrorKind, ReplyError, Request, Verb};
use std::collections::HashMap;
use std::sync::Mutex;

/// Most ids the replay memory holds.
pub const MAX_REPLAY: usize = 32_768;

/// The agent's trust, validity window and replay memory.
#[derive(Debug)]
pub struct Auth {
    agent: String,
    trust: Trust,
    window: Window,
    seen: Mutex<HashMap<(String, String), u64>>,
}

impl Auth {
    /// Checks commands for `agent` against `trust` with `window`.
    pub fn new(agent: &str, trust: Trust, window: Window) -> Auth {
        Auth {
            agent: agent.to_string(),
            trust,
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// True when commands are checked.
    pub fn enforced(&self) -> bool {
        !self.trust.is_empty()
    }

    /// The trusted keys.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// Decodes `payload` sent to `verb` and checks it; on refusal, the
    /// command id when one could be read (to answer with), and why.
    pub fn admit(&self, verb: Verb, payload: &[u8]) -> Result<Command, (String, ReplyError)> {
        let no_id = |e| (String::new(), e);
        let envelope = Envelope::detect(payload).map_err(no_id)?;
        match (envelope, self.enforced()) {
            (None, false) => plain(verb, payload).map_err(no_id),
            (Some(envelope), false) => signing::open_unverified(&envelope).map_err(no_id),
            (None, true) => Err(no_id(ReplyError::new(
                ErrorKind::Unauthorized,
                "the command is not signed; this agent obeys only commands signed by a key given to its --trust (geolb --signing-key FILE)",
            ))),
            (Some(envelope), true) => self.verify(verb, &envelope).map_err(|e| {
                // The id, unverified, only to say which command is refused.
                let id = signing::open_unverified(&envelope)
                    .map(|c| c.id)
                    .unwrap_or_default();
                (id, e)
            }),
        }
    }

    fn verify(&self, verb: Verb, envelope: &Envelope) -> Result<Command, ReplyError> {
        let opened = signing::open(envelope, &self.trust)?;
        let now = now_ms();
        let deadline = self.window.check(&opened.command, &self.agent, verb, now)?;
        self.remember(opened.key, &opened.command.id, deadline, now)?;
        Ok(opened.command)
    }

    fn remember(&self, key: String, id: &str, deadline: u64, now: u64) -> Result<(), ReplyError> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let entry = (key, id.to_string());
        if seen.get(&entry).is_some_and(|d| *d >= now) {
            return Err(ReplyError::new(
                ErrorKind::Unauthorized,
                format!(
                    "command {id:?} was already received: a replay is refused; send a new command"
                ),
            ));
        }
        if seen.len() >= MAX_REPLAY {
            seen.retain(|_, d| *d >= now);
            if seen.len() >= MAX_REPLAY {
                return Err(ReplyError::new(
                    ErrorKind::RateLimited,
                    format!("{MAX_REPLAY} signed commands are still within their validity; try again later"),
                ));
            }
        }
        seen.insert(entry, deadline);
        Ok(())
    }
}

/// An unsigned body; an empty one is a `status`.
fn plain(verb: Verb, payload: &[u8]) -> Result<Command, ReplyError> {
    if payload.iter().all(u8::is_ascii_whitespace) && verb == Verb::Status {
        Ok(Command::new("", &Request::Status))
    } else {
        Command::decode(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geolb_proto::signing::Signer;
    use std::time::Duration;

    fn auth(signer: &Signer) -> Auth {
        Auth::new(
            "a-1",
            Trust::new([signer.public_key()]).unwrap(),
            Window::default(),
        )
    }

    fn signed(signer: &Signer, id: &str, agent: &str, verb: Verb) -> Vec<u8> {
        let command = Command::new(id, &Request::Start);
        signer.sign(command, agent, verb, Duration::from_secs(10))
    }

    #[test]
    fn signed_commands_pass_once() {
        let signer = Signer::generate();
        let auth = auth(&signer);
        let body = signed(&signer, "c1", "a-1", Verb::Start);
        assert_eq!(auth.admit(Verb::Start, &body).unwrap().id, "c1");
        let (id, err) = auth.admit(Verb::Start, &body).unwrap_err();
        assert_eq!((id.as_str(), err.kind), ("c1", ErrorKind::Unauthorized));
        assert!(err.message.contains("replay"), "{}", err.message);
    }

    #[test]
    fn unsigned_foreign_and_misdirected_commands_are_refused() {
        let signer = Signer::generate();
        let auth = auth(&signer);
        let cases = [
            (Verb::Start, br#"{"id":"x"}"#.to_vec()),
            (Verb::Status, Vec::new()),
            (
                Verb::Start,
                signed(&Signer::generate(), "c2", "a-1", Verb::Start),
            ),
            (Verb::Start, signed(&signer, "c3", "a-2", Verb::Start)),
            (Verb::Stop, signed(&signer, "c4", "a-1", Verb::Start)),
        ];
        for (verb, body) in cases {
            let (_, err) = auth.admit(verb, &body).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Unauthorized, "{}", err.message);
        }
    }

    #[test]
    fn without_trust_anything_decodable_passes() {
        let auth = Auth::new("a-1", Trust::default(), Window::default());
        assert!(!auth.enforced());
        assert!(auth.admit(Verb::Start, br#"{"id":"x"}"#).is_ok());
        assert!(auth.admit(Verb::Status, b"").is_ok());
        let body = signed(&Signer::generate(), "c", "a-1", Verb::Start);
        assert_eq!(auth.admit(Verb::Start, &body).unwrap().id, "c");
    }

    #[test]
    fn the_replay_memory_forgets_only_what_has_expired() {
        let signer = Signer::generate();
        let auth = auth(&signer);
        let key = signer.public_key().to_string();
        for n in 0..MAX_REPLAY {
            auth.remember(key.clone(), &n.to_string(), 1_000, 500)
                .unwrap();
        }
        let full = auth.remember(key.clone(), "more", 1_000, 500).unwrap_err();
        assert_eq!(full.kind, ErrorKind::RateLimited);
        auth.remember(key.clone(), "later", 3_000, 2_000).unwrap();
        assert_eq!(auth.seen.lock().unwrap().len(), 1);
    }
}
