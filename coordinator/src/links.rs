//! Link controls registered on the control plane: every WAN emulator and
//! every agent with front links registers the micro service `geolb-wan`
//! (`$SRV.INFO.geolb-wan` finds them all), lists its links with the regions
//! each one joins, and obeys `set`. Scenarios choose links by region
//! through [`geolb_proto::wan::LinkPath`], never by a naming convention.

use crate::control::Control;
use futures::StreamExt;
use geolb_proto::wan::{self, LinkConfig, LinkView, WanReply};
use geolb_proto::{Command, Request};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How long one emulator may take to answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long discovery waits for more services after the last answer.
const QUIET: Duration = Duration::from_millis(300);
/// Longest a discovery takes.
const DISCOVERY: Duration = Duration::from_millis(1500);

/// One link and the emulator (or agent) that serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkControl {
    /// The emulator id (`geolb.wan.<id>.*`), an agent's id for its front links.
    pub emulator: String,
    /// The link as it was listed.
    pub link: LinkView,
}

/// Sends `verb` with `args` to component `id` on `subject`; its reply
/// (`R`, with an `error` field when refused), or why not. `what` names
/// the component in errors.
pub async fn call<R: serde::de::DeserializeOwned>(
    control: &Control,
    what: &str,
    subject: String,
    verb: &str,
    args: serde_json::Value,
) -> anyhow::Result<R> {
    let mut command = Command::new(control.next_command_id(), &Request::Status);
    command.args = args;
    let answer = tokio::time::timeout(
        REQUEST_TIMEOUT,
        control.client().request(subject, command.encode().into()),
    )
    .await
    .map_err(|_| anyhow::anyhow!("{what} did not answer {verb} in 5 s"))?
    .map_err(|e| anyhow::anyhow!("{what}: {verb}: {e}"))?;
    let value: serde_json::Value = serde_json::from_slice(&answer.payload)
        .map_err(|e| anyhow::anyhow!("{what}: bad reply to {verb}: {e}"))?;
    if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
        let error: geolb_proto::ReplyError = serde_json::from_value(error.clone())
            .map_err(|e| anyhow::anyhow!("{what}: bad error in its reply to {verb}: {e}"))?;
        anyhow::bail!("{what} refused {verb}: {error}");
    }
    serde_json::from_value(value).map_err(|e| anyhow::anyhow!("{what}: bad reply to {verb}: {e}"))
}

/// Sends `verb` with `args` to emulator `id`; its reply, or why not.
pub async fn request(
    control: &Control,
    id: &str,
    verb: &str,
    args: serde_json::Value,
) -> anyhow::Result<WanReply> {
    let what = format!("link emulator {id}");
    call(control, &what, wan::subject(id, verb), verb, args).await
}

/// The ids of every instance of micro service `service` whose endpoints are
/// on `<prefix>.<id>.<verb>` (the emulators: `geolb-wan`, `geolb.wan`).
pub async fn instances(
    control: &Control,
    service: &str,
    prefix: &str,
) -> anyhow::Result<Vec<String>> {
    let client = control.client();
    let inbox = client.new_inbox();
    let mut answers = client.subscribe(inbox.clone()).await?;
    client
        .publish_with_reply(format!("$SRV.INFO.{service}"), inbox, "".into())
        .await?;
    client.flush().await?;
    let deadline = Instant::now() + DISCOVERY;
    let mut ids = Vec::new();
    loop {
        let wait = QUIET.min(deadline.saturating_duration_since(Instant::now()));
        match tokio::time::timeout(wait, answers.next()).await {
            Ok(Some(message)) => ids.extend(instance_id(&message.payload, prefix)),
            _ => break,
        }
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// The ids of every emulator registered on the control plane.
pub async fn emulators(control: &Control) -> anyhow::Result<Vec<String>> {
    instances(control, wan::SERVICE_NAME, "geolb.wan").await
}

/// The instance id in a `$SRV.INFO` answer: from an endpoint's subject
/// `<prefix>.<id>.<verb>`.
fn instance_id(info: &[u8], prefix: &str) -> Option<String> {
    let info: serde_json::Value = serde_json::from_slice(info).ok()?;
    info["endpoints"].as_array()?.iter().find_map(|e| {
        let subject = e["subject"].as_str()?;
        let rest = subject.strip_prefix(prefix)?.strip_prefix('.')?;
        let (id, _verb) = rest.split_once('.')?;
        Some(id.to_string())
    })
}

/// Every link of every registered emulator.
pub async fn discover(control: &Control) -> anyhow::Result<Vec<LinkControl>> {
    let mut all = Vec::new();
    for id in emulators(control).await? {
        let reply = request(control, &id, "list", serde_json::Value::Null).await?;
        all.extend(reply.links.into_iter().map(|link| LinkControl {
            emulator: id.clone(),
            link,
        }));
    }
    Ok(all)
}

/// Gives every link in `links` the behaviour `config`, one `set` per emulator.
pub async fn set(
    control: &Control,
    links: &[LinkControl],
    config: impl Fn(&LinkControl) -> LinkConfig,
) -> anyhow::Result<()> {
    // One request per emulator and configuration.
    let mut groups: BTreeMap<(String, String), (LinkConfig, Vec<String>)> = BTreeMap::new();
    for link in links {
        let c = config(link);
        let key = (link.emulator.clone(), serde_json::to_string(&c)?);
        groups
            .entry(key)
            .or_insert((c, Vec::new()))
            .1
            .push(link.link.name.clone());
    }
    for ((emulator, _), (config, names)) in groups {
        let args = serde_json::json!({ "links": names, "config": config });
        request(control, &emulator, "set", args).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_emulator_id_in_a_service_info() {
        let info = br#"{"name":"geolb-wan","id":"X","version":"0.1.0",
            "endpoints":[{"name":"list","subject":"geolb.wan.lon-1.list"},
                         {"name":"set","subject":"geolb.wan.lon-1.set"}]}"#;
        assert_eq!(instance_id(info, "geolb.wan").as_deref(), Some("lon-1"));
        assert_eq!(instance_id(info, "geolb.dns"), None);
        assert_eq!(instance_id(br#"{"endpoints":[]}"#, "geolb.wan"), None);
        assert_eq!(instance_id(b"not json", "geolb.wan"), None);
    }
}
