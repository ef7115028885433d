//! The control plane: the connection, the micro service with one endpoint
//! per verb, and the tasks that ship events, heartbeats and metrics.
//!
//! The agent connects with `retry_on_initial_connect` and unlimited
//! reconnects, so a control plane that is down at start or goes away later
//! never stops supervision; events wait in the [`outbox::Outbox`].

pub mod outbox;
pub mod reports;
mod service;
pub(crate) mod telemetry;

use crate::commands::Context;
use geolb_proto::connect::ControlArgs;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Messages a subscription buffers before the client drops the excess: a
/// flood of requests waits here at most (with the request gate behind it).
const SUBSCRIPTION_CAPACITY: usize = 512;

/// How often heartbeats and metrics go out.
#[derive(Debug, Clone, Copy)]
pub struct Intervals {
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// Metrics interval.
    pub metrics: Duration,
}

/// Connects (in the background: this returns at once) and starts the
/// service, the outbox sender, heartbeats and metrics on `tracker`.
pub async fn start(
    args: &ControlArgs,
    ctx: Arc<Context>,
    intervals: Intervals,
    reports: Option<reports::ReportSocket>,
    tracker: &TaskTracker,
    token: CancellationToken,
) -> anyhow::Result<async_nats::Client> {
    let name = format!("geolb-agent {}", ctx.identity.id);
    let inbox = geolb_proto::objects::inbox_prefix(&ctx.identity.id);
    let client = connect(args, &name, &inbox).await?;
    ctx.objects.attach(client.clone());
    tracing::info!(url = %args.display_url(), "Control plane configured.");

    let service = service::register(&client, &ctx).await?;
    tracker.spawn(service::serve(service, ctx.clone(), token.clone()));
    // Unknown verbs are caught on a connection of their own: nats-server
    // drops the right to reply (`allow_responses`) when one connection
    // receives a request through two overlapping subscriptions.
    let catcher = connect(args, &format!("{name} unknown verbs"), &inbox).await?;
    tracker.spawn(service::refuse_unknown_verbs(
        catcher,
        ctx.clone(),
        token.clone(),
    ));
    if let Some(reports) = reports {
        let run = reports.run(
            ctx.identity.clone(),
            ctx.outbox.clone(),
            client.clone(),
            token.clone(),
        );
        tracker.spawn(run);
    }
    let outbox = ctx.outbox.clone();
    let (c, t) = (client.clone(), token.clone());
    tracker.spawn(async move { outbox.run(c, t).await });
    tracker.spawn(telemetry::heartbeats(
        ctx.clone(),
        client.clone(),
        intervals.heartbeat,
        token.clone(),
    ));
    tracker.spawn(telemetry::metrics(
        ctx,
        client.clone(),
        intervals.metrics,
        token,
    ));
    Ok(client)
}

/// One control-plane connection that retries forever in the background;
/// its replies come on `inbox` (the agent's own, in the least-privilege layout).
async fn connect(
    args: &ControlArgs,
    name: &str,
    inbox: &str,
) -> anyhow::Result<async_nats::Client> {
    let url = args.server_url();
    let options = args
        .options(name)
        .await?
        .custom_inbox_prefix(inbox)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .subscription_capacity(SUBSCRIPTION_CAPACITY)
        .event_callback(|event| async move {
            tracing::info!(event = %event, "Control-plane connection event.");
        });
    options
        .connect(url.as_str())
        .await
        .map_err(|e| anyhow::anyhow!("cannot use control plane {}: {e}", args.display_url()))
}
