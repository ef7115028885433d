//! What `geolb-agent geodns` and `geolb-agent anycast` share: reading a
//! JSON configuration file, connecting to the control plane, registering a
//! micro service whose every endpoint answers one JSON reply, publishing
//! the component's changes on `geolb.routing.<id>.<kind>`, and stopping on
//! SIGTERM or SIGINT.

use anyhow::Context as _;
use async_nats::service::ServiceExt;
use futures::StreamExt;
use geolb_proto::connect::ControlArgs;
use geolb_proto::routing::{change_subject, RoutingChange, RoutingEvent};
use geolb_proto::{Command, ReplyError};
use std::path::Path;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::broadcast;

/// Reads and parses the JSON file at `path`.
pub fn read_config<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} file {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid {what} file", path.display()))
}

/// Completes on SIGTERM or SIGINT.
pub async fn stopped() -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

/// Connects as `name`, retrying until the control plane answers.
pub async fn connect(control: &ControlArgs, name: &str) -> anyhow::Result<async_nats::Client> {
    Ok(control
        .options(name)
        .await?
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connect(control.url.clone().unwrap_or_default())
        .await?)
}

/// Publishes every change of `changes` as a [`RoutingEvent`] of `id`, a `component`.
pub async fn publish_changes(
    client: async_nats::Client,
    id: String,
    component: geolb_proto::routing::Component,
    mut changes: broadcast::Receiver<RoutingChange>,
) {
    loop {
        let change = match changes.recv().await {
            Ok(change) => change,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(
                    lost = n,
                    "Routing changes were produced faster than sent; some were dropped"
                );
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let subject = change_subject(&id, change.kind());
        let event = RoutingEvent::now(&id, component, change);
        match serde_json::to_vec(&event) {
            Ok(body) => {
                if let Err(error) = client.publish(subject, body.into()).await {
                    tracing::warn!(%error, "Cannot publish a routing change");
                }
            }
            Err(error) => tracing::warn!(%error, "Cannot encode a routing change"),
        }
    }
}

/// Registers `service` with one endpoint per verb on `<group>.<verb>` and
/// answers each request with `answer(verb, command)`, encoded as JSON.
pub async fn serve<R: serde::Serialize>(
    client: &async_nats::Client,
    service: &str,
    description: &str,
    group: String,
    verbs: &[&'static str],
    answer: impl Fn(&str, Result<Command, ReplyError>) -> R,
) -> anyhow::Result<()> {
    let service = client
        .service_builder()
        .description(description)
        .start(service, env!("CARGO_PKG_VERSION"))
        .await
        .map_err(|e| anyhow::anyhow!("cannot register the {service} service: {e}"))?;
    let group = service.group(group);
    let mut endpoints = Vec::new();
    for verb in verbs {
        let endpoint = group
            .endpoint(*verb)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        endpoints.push(endpoint.map(move |request| (*verb, request)));
    }
    let mut requests = futures::stream::select_all(endpoints);
    while let Some((verb, request)) = requests.next().await {
        let reply = answer(verb, Command::decode(&request.message.payload));
        let _ = request
            .respond(Ok(serde_json::to_vec(&reply)?.into()))
            .await;
    }
    Ok(())
}
