//! Commands from the agent page (only with `--allow-commands`): the form
//! becomes the same [`VerbFlags`] as `geolb cmd`'s flags, is validated the
//! same way, and is sent through the same [`Control::request`], signed
//! with the same `--signing-key`. The reply is shown on the agent page.

use crate::cmd::{default_timeout, VerbFlags};
use crate::control::Control;
use geolb_proto::{Verb, WireDuration};
use serde::Deserialize;

/// The fields of a command form (empty fields are absent).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CommandForm {
    /// The form's CSRF value.
    #[serde(default)]
    pub csrf: String,
    /// stop, start, restart, upgrade, flap or scale.
    #[serde(default)]
    pub verb: String,
    /// stop/restart/flap mode.
    #[serde(default)]
    pub mode: String,
    /// stop/restart grace.
    #[serde(default)]
    pub grace: String,
    /// upgrade target.
    #[serde(default)]
    pub to: String,
    /// flap down phase.
    #[serde(default)]
    pub down: String,
    /// flap up phase.
    #[serde(default)]
    pub up: String,
    /// flap cycles.
    #[serde(default)]
    pub cycles: String,
    /// scale replicas.
    #[serde(default)]
    pub replicas: String,
}

fn given(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

fn duration(name: &str, s: &str) -> Result<Option<WireDuration>, String> {
    given(s)
        .map(|v| {
            v.parse::<WireDuration>()
                .map_err(|e| format!("{name}: {e}"))
        })
        .transpose()
}

fn number(name: &str, s: &str) -> Result<Option<u32>, String> {
    given(s)
        .map(|v| {
            v.parse::<u32>()
                .map_err(|_| format!("{name}: {v:?} is not a whole number"))
        })
        .transpose()
}

impl CommandForm {
    /// The verb and its flags, as `geolb cmd` would have them.
    pub fn flags(&self) -> Result<(Verb, VerbFlags), String> {
        let verb: Verb = self
            .verb
            .parse()
            .map_err(|e: geolb_proto::ReplyError| e.message)?;
        if verb == Verb::Status {
            return Err(
                "status is what this page shows; send a command that changes something".into(),
            );
        }
        let flags = VerbFlags {
            mode: given(&self.mode).map(String::from),
            grace: duration("grace", &self.grace)?,
            to: given(&self.to).map(String::from),
            down: duration("down", &self.down)?,
            up: duration("up", &self.up)?,
            cycles: number("cycles", &self.cycles)?,
            replicas: number("replicas", &self.replicas)?,
            ..VerbFlags::default()
        };
        Ok((verb, flags))
    }
}

/// Sends the form's command to agent `id`; returns whether it was applied and a line saying so.
pub async fn send(control: &Control, id: &str, form: &CommandForm) -> (bool, String) {
    let (verb, flags) = match form.flags() {
        Ok(v) => v,
        Err(e) => return (false, e),
    };
    let request = match flags.request(verb) {
        Ok(r) => r,
        Err(e) => return (false, e.0),
    };
    match control
        .request(id, &request, default_timeout(&request))
        .await
    {
        Ok(reply) if reply.ok => (
            true,
            format!("{verb}: ok; {id} is {}", reply.state.state.as_str()),
        ),
        Ok(reply) => {
            let why = reply.error.map_or("refused".to_string(), |e| {
                format!("{:?}: {}", e.kind, e.message)
            });
            (false, format!("{verb}: {why}"))
        }
        Err(e) => (false, format!("{verb}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(verb: &str) -> CommandForm {
        CommandForm {
            verb: verb.into(),
            ..Default::default()
        }
    }

    #[test]
    fn forms_become_the_cli_flags() {
        let mut f = form("stop");
        f.mode = "kill".into();
        f.grace = " 2s ".into();
        let (verb, flags) = f.flags().unwrap();
        assert_eq!(verb, Verb::Stop);
        assert!(flags.request(verb).is_ok());
        let mut bad = form("flap");
        bad.cycles = "many".into();
        assert!(bad.flags().unwrap_err().contains("cycles"));
        assert!(form("nuke").flags().is_err());
        assert!(form("status").flags().is_err());
        let mut scale = form("stop");
        scale.replicas = "3".into();
        let (verb, flags) = scale.flags().unwrap();
        assert!(flags
            .request(verb)
            .unwrap_err()
            .0
            .contains("--replicas does not apply to stop"));
    }
}
