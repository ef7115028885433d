//! Heartbeats and metrics: sent every interval while connected, never
//! buffered (only the latest matters).

use crate::commands::Context;
use async_nats::connection::State;
use geolb_proto::{
    now_ms, subject, Heartbeat, HostMetrics, Metrics, ProcessMetrics, PROTOCOL_VERSION,
};
use std::sync::Arc;
use std::time::Duration;
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
use tokio_util::sync::CancellationToken;

/// Publishes a heartbeat every `interval` while connected.
pub async fn heartbeats(
    ctx: Arc<Context>,
    client: async_nats::Client,
    interval: Duration,
    token: CancellationToken,
) {
    let subject = subject::heartbeat(&ctx.identity.region, &ctx.identity.id);
    let mut every = Every::new(interval, token);
    while every.tick().await {
        if client.connection_state() != State::Connected {
            continue;
        }
        let heartbeat = Heartbeat {
            v: PROTOCOL_VERSION,
            at_ms: now_ms(),
            interval_ms: interval.as_millis() as u64,
            status: ctx.status(),
            outbox: ctx.outbox.stats(),
        };
        let body = serde_json::to_vec(&heartbeat).unwrap_or_default();
        if let Err(e) = client.publish(subject.clone(), body.into()).await {
            tracing::debug!(error = %e, "Heartbeat not sent.");
        }
    }
}

/// Publishes metrics every `interval` while connected; for a server also
/// reads its monitoring endpoints (and keeps the child's version fresh).
pub async fn metrics(
    ctx: Arc<Context>,
    client: async_nats::Client,
    interval: Duration,
    token: CancellationToken,
) {
    let subject = subject::metrics(&ctx.identity.region, &ctx.identity.id);
    let mut sampler = Sampler::new();
    let mut every = Every::new(interval, token);
    while every.tick().await {
        let server = match &ctx.monitor {
            Some(monitor) => {
                let server = monitor.server_metrics().await;
                if !server.version.is_empty() {
                    ctx.set_child_version(Some(server.version.clone()));
                }
                Some(server)
            }
            None => None,
        };
        if client.connection_state() != State::Connected {
            continue;
        }
        let pids = ctx.handle.snapshot().pids();
        let (host, agent_process, children) = sampler.sample(&pids);
        let metrics = Metrics {
            v: PROTOCOL_VERSION,
            at_ms: now_ms(),
            agent: ctx.identity.id.clone(),
            region: ctx.identity.region.clone(),
            role: ctx.identity.role,
            host,
            agent_process,
            children,
            server,
            client: ctx
                .client_reports
                .as_ref()
                .and_then(|latest| latest.snapshot()),
        };
        let body = serde_json::to_vec(&metrics).unwrap_or_default();
        if let Err(e) = client.publish(subject.clone(), body.into()).await {
            tracing::debug!(error = %e, "Metrics not sent.");
        }
    }
}

/// A ticker that stops when the token is cancelled.
struct Every {
    ticker: tokio::time::Interval,
    token: CancellationToken,
}

impl Every {
    fn new(interval: Duration, token: CancellationToken) -> Every {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Every { ticker, token }
    }

    /// Waits for the next tick; false once cancelled.
    async fn tick(&mut self) -> bool {
        tokio::select! {
            biased;
            _ = self.token.cancelled() => false,
            _ = self.ticker.tick() => true,
        }
    }
}

/// CPU and memory of the host, the agent and its children (sysinfo).
pub(crate) struct Sampler {
    system: System,
    agent_pid: Pid,
}

impl Sampler {
    pub(crate) fn new() -> Sampler {
        Sampler {
            system: System::new(),
            agent_pid: Pid::from_u32(std::process::id()),
        }
    }

    pub(crate) fn sample(
        &mut self,
        children: &[(u32, u32)],
    ) -> (HostMetrics, Option<ProcessMetrics>, Vec<ProcessMetrics>) {
        let mut pids: Vec<Pid> = children
            .iter()
            .map(|(_, pid)| Pid::from_u32(*pid))
            .collect();
        pids.push(self.agent_pid);
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&pids),
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        let host = HostMetrics {
            cpu_pct: self.system.global_cpu_usage(),
            cpus: self.system.cpus().len() as u32,
            mem_used_bytes: self.system.used_memory(),
            mem_total_bytes: self.system.total_memory(),
            load1: System::load_average().one,
        };
        let process = |replica: Option<u32>, pid: Pid| {
            self.system.process(pid).map(|p| ProcessMetrics {
                replica,
                pid: pid.as_u32(),
                cpu_pct: p.cpu_usage(),
                rss_bytes: p.memory(),
            })
        };
        let agent = process(None, self.agent_pid);
        let children = children
            .iter()
            .filter_map(|(replica, pid)| process(Some(*replica), Pid::from_u32(*pid)))
            .collect();
        (host, agent, children)
    }
}
