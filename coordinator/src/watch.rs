//! `geolb watch`: follow agent events as they happen, until Ctrl-C.
//!
//! Subscribes to `geolb.evt.<region>.<agent>` (wildcards where no filter is
//! given) and prints one line per event: `time region/agent kind detail`,
//! with the agent's timestamp in UTC, or the raw JSON with `--json`.

use crate::control::Control;
use crate::UsageError;
use futures::StreamExt;
use geolb_proto::{subject, Event};
use serde_json::Value;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

/// `geolb watch ...`.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// Only events from agents in this region.
    #[arg(long, env = "GEOLB_WATCH_REGION")]
    pub region: Option<String>,
    /// Only events from this agent.
    #[arg(long, env = "GEOLB_WATCH_AGENT")]
    pub agent: Option<String>,
    /// Print each event's raw JSON, one per line.
    #[arg(long, env = "GEOLB_JSON")]
    pub json: bool,
}

impl WatchArgs {
    /// The subject to follow, after checking the filters are valid names.
    pub fn subject(&self) -> Result<String, UsageError> {
        let region = checked("region", self.region.as_deref())?;
        let agent = checked("agent id", self.agent.as_deref())?;
        Ok(events_subject(region, agent))
    }
}

fn checked<'a>(what: &'static str, value: Option<&'a str>) -> Result<Option<&'a str>, UsageError> {
    if let Some(v) = value {
        subject::validate_name(what, v).map_err(|e| UsageError(e.to_string()))?;
    }
    Ok(value)
}

/// The event subject for an optional region and agent.
pub fn events_subject(region: Option<&str>, agent: Option<&str>) -> String {
    match (region, agent) {
        (None, None) => subject::EVENTS_ALL.to_string(),
        (Some(region), None) => subject::event(region, "*"),
        (None, Some(agent)) => subject::event("*", agent),
        (Some(region), Some(agent)) => subject::event(region, agent),
    }
}

/// Follows `subject` until Ctrl-C, printing each event.
pub async fn run(control: &Control, subject: &str, json: bool) -> anyhow::Result<ExitCode> {
    let mut events = control.client().subscribe(subject.to_string()).await?;
    control.client().flush().await?;
    eprintln!(
        "geolb: watching {subject} on {}; Ctrl-C to stop",
        control.url()
    );
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            biased;
            _ = &mut ctrl_c => return Ok(ExitCode::SUCCESS),
            message = events.next() => {
                let Some(message) = message else {
                    anyhow::bail!("the control plane closed the event subscription");
                };
                let text = if json {
                    String::from_utf8_lossy(&message.payload).trim_end().to_string()
                } else {
                    match serde_json::from_slice::<Event>(&message.payload) {
                        Ok(event) => line(&event),
                        Err(e) => format!("undecodable event on {}: {e}", message.subject),
                    }
                };
                crate::emit(&format!("{text}\n"))?;
            }
        }
    }
}

/// One event as `time region/agent kind detail`.
pub fn line(event: &Event) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(event.at_ms);
    let mut text = format!(
        "{} {}/{} {}",
        humantime::format_rfc3339_millis(at),
        event.region,
        event.agent,
        event.event.name()
    );
    if let Ok(Value::Object(fields)) = serde_json::to_value(&event.event) {
        for (key, value) in fields.iter().filter(|(k, _)| k.as_str() != "kind") {
            match value {
                Value::String(s) => text.push_str(&format!(" {key}={s}")),
                other => text.push_str(&format!(" {key}={other}")),
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use geolb_proto::{EventKind, Role};

    #[test]
    fn filters_narrow_the_subject() {
        let cases = [
            (None, None, "geolb.evt.>"),
            (Some("lon"), None, "geolb.evt.lon.*"),
            (None, Some("lon-1"), "geolb.evt.*.lon-1"),
            (Some("lon"), Some("lon-1"), "geolb.evt.lon.lon-1"),
        ];
        for (region, agent, want) in cases {
            assert_eq!(events_subject(region, agent), want);
        }
        let bad = WatchArgs {
            region: Some("a.b".into()),
            agent: None,
            json: false,
        };
        assert!(bad.subject().unwrap_err().0.contains("region \"a.b\""));
    }

    #[test]
    fn events_print_on_one_line() {
        let event = Event {
            v: 1,
            seq: 3,
            at_ms: 1_700_000_000_123,
            agent: "lon-1".into(),
            region: "lon".into(),
            role: Role::Server,
            event: EventKind::Exited {
                replica: 0,
                code: None,
                signal: Some(9),
            },
        };
        assert_eq!(
            line(&event),
            "2023-11-14T22:13:20.123Z lon/lon-1 exited replica=0 signal=9"
        );
        let started = Event {
            event: EventKind::Started {
                replica: 1,
                pid: 42,
                program: "nats-server".into(),
            },
            ..event
        };
        assert!(line(&started).ends_with("started pid=42 program=nats-server replica=1"));
    }
}
