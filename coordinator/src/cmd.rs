//! `geolb cmd VERB SELECTOR [flags]`: send one command to many agents.
//!
//! A plain agent id is addressed directly; `region=`, `role=` and `all` are
//! resolved from [`fleet::list`] (agents `live` or `stale`, not `lost`). All
//! requests are in flight at once, each with its own timeout, and one row is
//! printed per target. The exit code is 0 only if every target answered ok.

mod flags;

pub use flags::{default_timeout, VerbFlags, DEFAULT_TIMEOUT, DRAIN_TIMEOUT};

use crate::control::{Control, RequestFailure};
use crate::fleet;
use crate::selector::Selector;
use crate::table::Table;
use crate::UsageError;
use geolb_proto::{AgentStatus, Reply, Request, Verb, WireDuration};
use serde_json::{json, Value};
use std::process::ExitCode;
use std::time::Duration;

/// `geolb cmd ...`.
#[derive(Debug, Clone, clap::Args)]
pub struct CmdArgs {
    /// status, stop, start, restart, upgrade, flap or scale.
    #[arg(value_parser = parse_verb)]
    pub verb: Verb,
    /// Which agents: an agent id, region=R, role=server|client, or all.
    pub selector: Selector,
    /// The verb's flags.
    #[command(flatten)]
    pub flags: VerbFlags,
    /// Print a JSON array of {target, ok, reply|error}.
    #[arg(long, env = "GEOLB_JSON")]
    pub json: bool,
    /// How long to wait for each reply [default: 10s; 120s for upgrade and ldm stops].
    #[arg(long, env = "GEOLB_CMD_TIMEOUT", value_name = "D")]
    pub timeout: Option<WireDuration>,
}

fn parse_verb(s: &str) -> Result<Verb, String> {
    s.parse::<Verb>().map_err(|e| e.message)
}

/// A validated command line, ready to send.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The request every target gets.
    pub request: Request,
    /// Which agents.
    pub selector: Selector,
    /// Reply timeout per target.
    pub timeout: Duration,
    /// JSON output.
    pub json: bool,
}

impl CmdArgs {
    /// Validates the flags into a [`Plan`]; nothing is sent yet.
    pub fn plan(&self) -> Result<Plan, UsageError> {
        let request = self.flags.request(self.verb)?;
        let timeout = self
            .timeout
            .map_or_else(|| default_timeout(&request), |t| t.0);
        if timeout.is_zero() {
            return Err(UsageError("--timeout must be more than 0".into()));
        }
        Ok(Plan {
            request,
            selector: self.selector.clone(),
            timeout,
            json: self.json,
        })
    }
}

/// One agent a command goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Agent id.
    pub id: String,
    /// Its region, when the fleet listing told us.
    pub region: Option<String>,
}

/// The agents `selector` names: the id itself, or those live or stale in the fleet.
pub async fn resolve(control: &Control, selector: &Selector) -> anyhow::Result<Vec<Target>> {
    if let Some(id) = selector.single_id() {
        return Ok(vec![Target {
            id: id.to_string(),
            region: None,
        }]);
    }
    let entries = fleet::list(control).await?;
    Ok(entries
        .into_iter()
        .filter(|e| e.liveness.reachable() && selector.matches(&e.heartbeat.status))
        .map(|e| Target {
            id: e.id,
            region: Some(e.region),
        })
        .collect())
}

/// Sends `request` to every target at once and collects the outcomes in order.
pub async fn fan_out(
    control: &Control,
    targets: &[String],
    request: &Request,
    timeout: Duration,
) -> Vec<(String, Result<Reply, RequestFailure>)> {
    let requests = targets
        .iter()
        .map(|id| async move { (id.clone(), control.request(id, request, timeout).await) });
    futures::future::join_all(requests).await
}

/// Runs a validated `geolb cmd`.
pub async fn run(control: &Control, plan: &Plan) -> anyhow::Result<ExitCode> {
    let targets = resolve(control, &plan.selector).await?;
    if targets.is_empty() {
        if plan.json {
            crate::emit("[]\n")?;
        }
        eprintln!("geolb: no agent matches {}", plan.selector);
        return Ok(ExitCode::FAILURE);
    }
    let ids: Vec<String> = targets.iter().map(|t| t.id.clone()).collect();
    let outcomes = fan_out(control, &ids, &plan.request, plan.timeout).await;
    let all_ok = outcomes.iter().all(|(_, o)| matches!(o, Ok(r) if r.ok));
    if plan.json {
        let rows: Vec<JsonRow> = outcomes.iter().map(|(id, o)| json_row(id, o)).collect();
        crate::emit(&format!("{}\n", serde_json::to_string_pretty(&rows)?))?;
    } else {
        crate::emit(&render(&targets, &outcomes))?;
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One target's outcome as JSON: `{target, ok, reply|error}`.
#[derive(Debug, serde::Serialize)]
struct JsonRow<'a> {
    target: &'a str,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply: Option<&'a Reply>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Value>,
}

fn json_row<'a>(target: &'a str, outcome: &'a Result<Reply, RequestFailure>) -> JsonRow<'a> {
    match outcome {
        Ok(reply) => JsonRow {
            target,
            ok: reply.ok,
            reply: Some(reply),
            error: reply.error.as_ref().map(|e| json!(e)),
        },
        Err(failure) => JsonRow {
            target,
            ok: false,
            reply: None,
            error: Some(json!({"kind": failure.kind(), "message": failure.to_string()})),
        },
    }
}

/// One row per target: id, region, result, and the state or the error message.
pub fn render(targets: &[Target], outcomes: &[(String, Result<Reply, RequestFailure>)]) -> String {
    let mut table = Table::new(["TARGET", "REGION", "RESULT", "DETAIL"]);
    for (target, (id, outcome)) in targets.iter().zip(outcomes) {
        let known = target.region.clone().unwrap_or_else(|| "-".into());
        let (region, result, detail) = match outcome {
            Ok(reply) => {
                let region = reply.state.region.clone();
                match &reply.error {
                    None if reply.ok => (region, "ok".to_string(), summary(&reply.state)),
                    error => {
                        let (kind, message) = error
                            .as_ref()
                            .map_or(("failed", ""), |e| (e.kind.as_str(), e.message.as_str()));
                        let detail = format!("{message} ({})", summary(&reply.state));
                        (region, kind.to_string(), detail)
                    }
                }
            }
            Err(failure) => (known, failure.kind().to_string(), failure.to_string()),
        };
        table.row([id.clone(), region, result, detail]);
    }
    table.render()
}

/// The resulting state in one phrase: state, replicas, pids, version.
pub fn summary(state: &AgentStatus) -> String {
    let running = state
        .replicas
        .iter()
        .filter(|r| r.state == geolb_proto::ChildState::Running)
        .count();
    let pids: Vec<String> = state
        .replicas
        .iter()
        .filter_map(|r| r.pid.map(|p| p.to_string()))
        .collect();
    let mut text = format!(
        "state={} replicas={running}/{}",
        state.state, state.desired_replicas
    );
    if !pids.is_empty() {
        text.push_str(&format!(" pids={}", pids.join(",")));
    }
    if let Some(version) = &state.version {
        text.push_str(&format!(" version={version}"));
    }
    text
}

#[cfg(test)]
mod tests;
