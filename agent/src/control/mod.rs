//! The control plane: the connection, the micro service with one endpoint
//! per verb, and the tasks that ship events, heartbeats and metrics.
//!
//! The agent connects with `retry_on_initial_connect` and unlimited
//! reconnects, so a control plane that is down at start or goes away later
//! never stops supervision; events wait in the [`outbox::Outbox`], and
//! [`health`] raises the alarm when it stays away.

pub mod health;
pub mod outbox;
pub mod reports;
mod service;
pub(crate) mod telemetry;

use crate::commands::Context;
use geolb_proto::connect::{ControlArgs, Failure, Tls};
use health::Health;
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

/// How long one connection attempt may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);

/// Connects (in the background: this returns at once) and starts the
/// service, the outbox sender, heartbeats, metrics and the health watch on
/// `tracker`; `tls` is shared by every connection, and the main one's
/// events go to `ctx.control`.
pub async fn start(
    args: &ControlArgs,
    tls: &Tls,
    ctx: Arc<Context>,
    intervals: Intervals,
    reports: Option<reports::ReportSocket>,
    tracker: &TaskTracker,
    token: CancellationToken,
) -> anyhow::Result<async_nats::Client> {
    let name = format!("geolb-agent {}", ctx.identity.id);
    let health = ctx.control.clone().unwrap_or_else(|| {
        Arc::new(Health::new(
            args.display_url(),
            health::DEFAULT_ALARM,
            tls.trust.clone(),
        ))
    });
    let client = connect(args, tls, &name, Some(health.clone())).await?;
    tracing::info!(url = %args.display_url(), tls_trust = %tls.trust, "Control plane configured.");
    for error in &tls.trust.cert_env_errors {
        tracing::warn!(error = %error, "SSL_CERT_FILE/SSL_CERT_DIR could not be read; the compiled-in roots are trusted without them.");
    }
    let (probe_args, probe_tls) = (args.clone(), tls.clone());
    let probe = move || {
        let (args, tls) = (probe_args.clone(), probe_tls.clone());
        async move { probe(&args, &tls).await }
    };
    tracker.spawn(health::watch(health, probe, token.clone()));

    let service = service::register(&client, &ctx).await?;
    tracker.spawn(service::serve(service, ctx.clone(), token.clone()));
    // Unknown verbs are caught on a connection of their own: nats-server
    // drops the right to reply (`allow_responses`) when one connection
    // receives a request through two overlapping subscriptions.
    let catcher = connect(args, tls, &format!("{name} unknown verbs"), None).await?;
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
/// with `health`, its events are followed there.
async fn connect(
    args: &ControlArgs,
    tls: &Tls,
    name: &str,
    health: Option<Arc<Health>>,
) -> anyhow::Result<async_nats::Client> {
    let url = args.server_url();
    let options = args
        .options_with(name, tls)
        .await?
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(CONNECTION_TIMEOUT)
        .subscription_capacity(SUBSCRIPTION_CAPACITY)
        .event_callback(move |event| {
            if let Some(health) = &health {
                health.event(&event);
            }
            async move {
                tracing::info!(event = %event, "Control-plane connection event.");
            }
        });
    options
        .connect(url.as_str())
        .await
        .map_err(|e| anyhow::anyhow!("cannot use control plane {}: {e}", args.display_url()))
}

/// One attempt of our own, no retry: why the control plane cannot be
/// reached (`None`: it answered, and the connection is closed again).
async fn probe(args: &ControlArgs, tls: &Tls) -> Option<Failure> {
    let options = match args.options_with("geolb-agent probe", tls).await {
        Ok(options) => options.connection_timeout(CONNECTION_TIMEOUT),
        Err(e) => {
            return Some(Failure {
                kind: geolb_proto::connect::FailureKind::BadUrl,
                reason: e.to_string(),
            })
        }
    };
    match options.connect(args.server_url().as_str()).await {
        Ok(client) => {
            let _ = client.drain().await;
            None
        }
        Err(e) => Some(Failure::of(&e, CONNECTION_TIMEOUT)),
    }
}
