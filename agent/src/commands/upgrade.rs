//! `upgrade`: resolve the target first (a missing binary or image is
//! refused before anything stops; `check` stops there; `obj:NAME` is then
//! fetched from the control plane, and `prefetch` stops there), drain, switch binaries with the same
//! arguments (or recreate the container from the new image), then gate on
//! health: `/healthz` 200 and as many route peers and outbound gateways as
//! before.

use super::Context;
use crate::monitor::{rejoined, Monitor};
use crate::target::Upgrade;
use geolb_proto::{ErrorKind, EventKind, ReplyError, ServerMetrics, UpgradeArgs};
use std::time::{Duration, Instant};

/// Upgrades the child to the binary (or image) `args.to` names.
pub async fn upgrade(ctx: &Context, args: UpgradeArgs) -> Result<(), ReplyError> {
    let target = match geolb_proto::objects::reference(&args.to) {
        Some(name) => {
            ctx.handle.runs_programs(&args.to)?;
            let binary = ctx.objects.binary(name).await?;
            if args.check {
                return Ok(());
            }
            Upgrade::Program(ctx.objects.fetch(&binary).await?)
        }
        None => {
            ctx.handle
                .resolve_upgrade(&args.to, &ctx.servers_dir)
                .await?
        }
    };
    if args.check || args.prefetch {
        return Ok(());
    }
    let timeout = args.timeout.map_or(ctx.upgrade_timeout, |t| t.0);
    let began = Instant::now();
    let before_status = ctx.status();
    let from = before_status.version.unwrap_or(before_status.program);
    let before = match &ctx.monitor {
        Some(monitor) => monitor.server_metrics().await,
        None => ServerMetrics::default(),
    };
    tracing::info!(from = %from, to = %target.describe(), drain = args.drain, "Upgrade began.");
    let grace = args.grace.map(|g| g.0);
    ctx.handle
        .upgrade(target.clone(), args.drain, grace)
        .await?;
    let to = match &ctx.monitor {
        Some(monitor) => {
            let now = health_gate(monitor, &before, timeout).await?;
            ctx.set_child_version(Some(now.version.clone()));
            now.version
        }
        None => target.describe(),
    };
    let duration_ms = began.elapsed().as_millis() as u64;
    tracing::info!(from = %from, to = %to, duration_ms, "Upgrade done.");
    ctx.outbox.push(EventKind::Upgraded {
        from,
        to,
        duration_ms,
    });
    Ok(())
}

/// Waits until the server is healthy and joined as before, or times out
/// with what is still missing.
pub async fn health_gate(
    monitor: &Monitor,
    before: &ServerMetrics,
    timeout: Duration,
) -> Result<ServerMetrics, ReplyError> {
    let deadline = Instant::now() + timeout;
    loop {
        let now = monitor.server_metrics().await;
        if rejoined(before, &now) {
            return Ok(now);
        }
        if Instant::now() >= deadline {
            return Err(ReplyError::new(
                ErrorKind::Timeout,
                format!(
                    "the new server is not back after {timeout:?}: {}; check its log",
                    missing(before, &now)
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn missing(before: &ServerMetrics, now: &ServerMetrics) -> String {
    let mut parts = Vec::new();
    if let Some(e) = &now.error {
        parts.push(e.clone());
    } else if !now.healthy {
        parts.push(format!("/healthz answers {}", now.healthz_status));
    }
    if now.routes < before.routes {
        parts.push(format!("{} of {} route peers", now.routes, before.routes));
    }
    for gateway in before.gateways.iter().filter(|g| g.outbound) {
        if !now
            .gateways
            .iter()
            .any(|n| n.name == gateway.name && n.outbound)
        {
            parts.push(format!("gateway {} not connected", gateway.name));
        }
    }
    parts.join(", ")
}
