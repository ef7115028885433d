//! The agent as a NATS micro service (ADR-32): `$SRV.PING`, `$SRV.INFO` and
//! `$SRV.STATS` answered by async-nats, and one endpoint per verb on
//! `geolb.agent.<id>.<verb>`. `status`, the one quick verb (read-only, never
//! waits), is answered inline in the service loop: a task per request cost
//! more than the answer (see the bench's `ack_latency` finding). Every other
//! verb is answered in its own task, so a long `upgrade` does not hold up
//! `status`; the admission gate ([`crate::admission::Gate`]) bounds how many
//! run at once and how many arrive a second, answering the excess
//! `rate_limited` inline.

use crate::commands::{self, Context};
use async_nats::service::{Request, Service, ServiceExt};
use futures::stream::{SelectAll, StreamExt};
use geolb_proto::{subject, Verb};
use std::collections::HashMap;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The registered service and its endpoints.
pub struct Registered {
    _service: Service,
    endpoints: SelectAll<futures::stream::BoxStream<'static, (Verb, Request)>>,
}

/// Registers the service and its endpoints.
pub async fn register(client: &async_nats::Client, ctx: &Context) -> anyhow::Result<Registered> {
    let metadata = HashMap::from([
        ("id".to_string(), ctx.identity.id.clone()),
        ("region".to_string(), ctx.identity.region.clone()),
        ("role".to_string(), ctx.identity.role.to_string()),
        ("host".to_string(), ctx.identity.host.clone()),
    ]);
    let service = client
        .service_builder()
        .description("nats-geolb agent: supervises a nats-server or test client")
        .metadata(metadata)
        .start(subject::SERVICE_NAME, env!("CARGO_PKG_VERSION"))
        .await
        .map_err(|e| anyhow::anyhow!("cannot register the agent service: {e}"))?;
    let group = service.group(subject::command_group(&ctx.identity.id));
    let mut endpoints = SelectAll::new();
    for verb in Verb::ALL {
        let endpoint = group
            .endpoint_builder()
            .name(verb.as_str())
            .add(verb.as_str())
            .await
            .map_err(|e| anyhow::anyhow!("cannot add endpoint {verb}: {e}"))?;
        endpoints.push(endpoint.map(move |request| (verb, request)).boxed());
    }
    Ok(Registered {
        _service: service,
        endpoints,
    })
}

/// Answers requests to `geolb.agent.<id>.<anything else>` with an
/// `unknown_verb` error, so a typo gets an answer rather than silence.
pub async fn refuse_unknown_verbs(
    client: async_nats::Client,
    ctx: Arc<Context>,
    token: CancellationToken,
) {
    let wildcard = format!("{}.*", subject::command_group(&ctx.identity.id));
    let mut subscription = match client.subscribe(wildcard).await {
        Ok(s) => s,
        Err(e) => return tracing::warn!(error = %e, "Cannot listen for unknown verbs."),
    };
    loop {
        let message = tokio::select! {
            biased;
            _ = token.cancelled() => return,
            next = subscription.next() => match next {
                Some(message) => message,
                None => return,
            },
        };
        let verb = message.subject.rsplit('.').next().unwrap_or_default();
        let (Some(reply_to), Err(_)) = (message.reply, verb.parse::<Verb>()) else {
            continue;
        };
        let reply = match ctx.gate.admit() {
            Ok(_permit) => commands::answer(&ctx, verb, &message.payload).await,
            Err(e) => commands::refuse(&ctx, verb, String::new(), e),
        };
        let _ = client.publish(reply_to, reply.encode().into()).await;
    }
}

/// Answers requests until cancelled.
pub async fn serve(mut registered: Registered, ctx: Arc<Context>, token: CancellationToken) {
    loop {
        let (verb, request) = tokio::select! {
            biased;
            _ = token.cancelled() => return,
            next = registered.endpoints.next() => match next {
                Some(pair) => pair,
                None => return,
            },
        };
        if verb == Verb::Status {
            // Never suspends before replying: nothing to apply, no memory.
            let reply = commands::answer(&ctx, verb.as_str(), &request.message.payload).await;
            respond(&request, reply).await;
            continue;
        }
        let permit = match ctx.gate.admit() {
            Ok(permit) => permit,
            Err(e) => {
                let reply = commands::refuse(&ctx, verb.as_str(), String::new(), e);
                respond(&request, reply).await;
                continue;
            }
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let reply = commands::answer(&ctx, verb.as_str(), &request.message.payload).await;
            respond(&request, reply).await;
        });
    }
}

/// Sends `reply` to the requester.
async fn respond(request: &Request, reply: geolb_proto::Reply) {
    if let Err(e) = request.respond(Ok(reply.encode().into())).await {
        tracing::warn!(error = %e, "Reply not sent.");
    }
}
