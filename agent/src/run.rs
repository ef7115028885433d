//! `geolb-agent run`: wires the supervisor, the OS signals and (when
//! configured) the control plane together, and returns the exit code.

use crate::cli::{OnTerm, RunArgs};
use crate::commands::{Auth, Bucket, Context, Gate, Memory};
use crate::control::{self, outbox::Outbox, reports::ReportSocket, Intervals};
use crate::identity::Identity;
use crate::monitor::Monitor;
use crate::signals;
use crate::supervisor::{Backoff, DrainProbe, Spec, Supervisor};
use geolb_proto::signing::{Trust, Window};
use geolb_proto::{EventKind, Role};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Command ids remembered for repeats.
const MEMORY: usize = 4096;
/// `command_refused` events (and warnings) a second, and their burst.
const REFUSALS_RATE: (u32, u32) = (10, 20);

/// Runs the agent until its child is done; returns the exit code.
pub async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let identity = Identity::new(args.id(), args.region(), args.role)?;
    let trust = Trust::new(&args.trust).map_err(|e| anyhow::anyhow!("--trust: {e}"))?;
    let window = Window {
        validity: args.command_validity.0,
        skew: args.clock_skew.0,
    };
    let auth = Auth::new(&identity.id, trust, window);
    let monitor = args.monitor.as_deref().map(Monitor::parse).transpose()?;
    let outbox = Arc::new(Outbox::new(identity.clone(), args.outbox));
    let (events, mut event_rx) = mpsc::channel::<EventKind>(1024);
    let reports = match (args.role, args.control.url.is_some()) {
        (Role::Client, true) => Some(ReportSocket::bind(&identity).map_err(|e| {
            anyhow::anyhow!("cannot bind the client report socket: {e}; set XDG_RUNTIME_DIR to a writable folder")
        })?),
        _ => None,
    };
    let mut spec = spec(&args, monitor.clone());
    spec.env.extend(reports.as_ref().map(ReportSocket::env));
    let (handle, supervision) = Supervisor::start(spec, events);

    let ctx = Arc::new(Context {
        handle: handle.clone(),
        identity,
        servers_dir: args.servers_dir.clone(),
        monitor,
        upgrade_timeout: args.upgrade_timeout.0,
        outbox: outbox.clone(),
        child_version: Mutex::new(None),
        memory: Memory::new(MEMORY),
        client_reports: reports.as_ref().map(ReportSocket::latest),
        started: Instant::now(),
        auth,
        gate: Gate::new(args.command_rate, args.command_burst),
        refusals: Bucket::new(REFUSALS_RATE.0, REFUSALS_RATE.1),
        refusals_unreported: Default::default(),
    });
    outbox.push(EventKind::AgentStarted {
        version: env!("CARGO_PKG_VERSION").to_string(),
    });

    let tracker = TaskTracker::new();
    let token = CancellationToken::new();
    let pump = outbox.clone();
    tracker.spawn(async move {
        while let Some(kind) = event_rx.recv().await {
            pump.push(kind);
        }
    });
    forward_signals(&handle, &tracker, &args)?;
    let client = match args.control.url.is_some() {
        true => Some({
            announce_trust(&ctx.auth, window);
            control::start(
                &args.control,
                ctx.clone(),
                intervals(&args),
                reports,
                &tracker,
                token.clone(),
            )
            .await?
        }),
        false => {
            tracing::info!("No control plane given: supervising only.");
            None
        }
    };

    let outcome = supervision.await?;
    outbox.push(EventKind::AgentStopping {
        reason: format!("child finished, exit code {}", outcome.code),
    });
    if let Some(client) = client {
        let _ = tokio::time::timeout(Duration::from_secs(2), outbox.flush_now(&client)).await;
    }
    token.cancel();
    tracker.close();
    Ok(outcome.code)
}

/// Says once, at start, which commands the agent will obey.
fn announce_trust(auth: &Auth, window: Window) {
    if auth.enforced() {
        let keys: Vec<&str> = auth.trust().keys().collect();
        tracing::info!(
            trusted = ?keys,
            validity = ?window.validity,
            skew = ?window.skew,
            "Obeying only commands signed by a trusted key."
        );
    } else {
        tracing::warn!("No --trust key given: obeying unsigned commands from anyone who can publish on the control plane (dev mode).");
    }
}

fn spec(args: &RunArgs, monitor: Option<Monitor>) -> Spec {
    let mut command = args.command.iter().cloned();
    let program = command.next().unwrap_or_default().into();
    Spec {
        program,
        args: command.collect(),
        env: Vec::new(),
        replicas: args.replicas,
        restart: args.restart,
        backoff: Backoff {
            min: args.backoff_min.0,
            max: args.backoff_max.0.max(args.backoff_min.0),
            ..Backoff::default()
        },
        term_grace: args.term_grace.0,
        ldm_grace: args.ldm_grace.0,
        drain_probe: monitor.map(drain_probe),
    }
}

/// True once a draining server has no client connections left.
fn drain_probe(monitor: Monitor) -> DrainProbe {
    Arc::new(move || {
        let monitor = monitor.clone();
        Box::pin(async move { matches!(monitor.connections().await, Ok(0)) })
    })
}

fn intervals(args: &RunArgs) -> Intervals {
    Intervals {
        heartbeat: args.heartbeat.0.max(Duration::from_millis(10)),
        metrics: args.metrics_interval.0.max(Duration::from_millis(100)),
    }
}

/// Passes TERM, INT, HUP, USR1 and USR2 on to the children; with
/// `--on-term drain` a TERM drains them instead.
fn forward_signals(
    handle: &crate::supervisor::Handle,
    tracker: &TaskTracker,
    args: &RunArgs,
) -> anyhow::Result<()> {
    let drain = (args.on_term == OnTerm::Drain).then_some(args.term_drain_grace.0);
    for sig in signals::forwarded() {
        let mut stream = signal(SignalKind::from_raw(sig.to_nix() as i32))?;
        let handle = handle.clone();
        tracker.spawn(async move {
            while stream.recv().await.is_some() {
                match (sig, drain) {
                    (signals::Signal::Term, Some(grace)) => handle.drain(grace).await,
                    _ => {
                        tracing::info!(signal = ?sig, "Signal received; forwarding to the child.");
                        handle.forward(sig).await
                    }
                }
            }
        });
    }
    Ok(())
}
