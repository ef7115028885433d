//! `geolb-agent run`: wires the supervisor (or, with `--container`, the
//! container handle), the OS signals and (when configured) the control
//! plane together, and returns the exit code.

use crate::admission::{Auth, Bucket, Gate, Memory};
use crate::cli::{OnTerm, RunArgs};
use crate::commands::Context;
use crate::control::{self, outbox::Outbox, reports::ReportSocket, Intervals};
use crate::identity::Identity;
use crate::monitor::Monitor;
use crate::signals;
use crate::supervisor;
use crate::supervisor::{Backoff, DrainProbe, Spec, Supervisor};
use crate::target::Target;
use geolb_proto::signing::{Trust, Window};
use geolb_proto::{EventKind, Role};
use std::future::Future;
use std::pin::Pin;
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

/// How the run ends: the exit code and the reason given in `agent_stopping`.
type Ending = Pin<Box<dyn Future<Output = anyhow::Result<(i32, String)>>>>;

/// A task run beside the supervisor once everything is set up, until the
/// agent stops (`fly-server`'s route watch).
pub type Sidecar =
    Box<dyn FnOnce(Arc<Context>, CancellationToken) -> Pin<Box<dyn Future<Output = ()> + Send>>>;

/// Runs the agent until its child is done (with `--container`, until a
/// SIGTERM or SIGINT); returns the exit code.
pub async fn run(args: RunArgs) -> anyhow::Result<i32> {
    run_with(args, None).await
}

/// [`run`], with a [`Sidecar`] task beside the supervisor.
pub async fn run_with(args: RunArgs, sidecar: Option<Sidecar>) -> anyhow::Result<i32> {
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
    let tracker = TaskTracker::new();
    let token = CancellationToken::new();
    // Front links listen before the child starts, so nobody dials past them.
    let front = crate::front::start(&args.front, &identity).await?;
    if !args.front.is_empty() {
        let watch = crate::front::watch_targets(
            args.front.clone(),
            identity.clone(),
            args.front_timeout.0,
            events.clone(),
            token.clone(),
        );
        tracker.spawn(watch);
    }
    // A container is found (or refused) before anything else is set up.
    let (handle, ending, reports) = match &args.container {
        Some(name) => {
            let (handle, ending) =
                supervise_container(&args, name, monitor.clone(), events, &tracker, &token).await?;
            (handle, ending, None)
        }
        None => {
            let reports = match (args.role, args.control.url.is_some()) {
                (Role::Client, true) => Some(ReportSocket::bind(&identity).map_err(|e| {
                    anyhow::anyhow!("cannot bind the client report socket: {e}; set XDG_RUNTIME_DIR to a writable folder")
                })?),
                _ => None,
            };
            let (handle, ending) =
                supervise_process(&args, monitor.clone(), reports.as_ref(), events, &tracker)?;
            (handle, ending, reports)
        }
    };

    // Built once, shared by every control-plane connection.
    let control_tls = match args.control.url.is_some() {
        true => Some(args.control.tls()?),
        false => None,
    };
    let health = control_tls.as_ref().map(|tls| {
        Arc::new(control::health::Health::new(
            args.control.display_url(),
            args.control_alarm.0,
            tls.trust.clone(),
        ))
    });
    let ctx = Arc::new(Context {
        handle,
        control: health,
        identity,
        servers_dir: args.servers_dir.clone(),
        objects: crate::objects::Objects::new(args.objects_dir()),
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

    let pump = outbox.clone();
    tracker.spawn(async move {
        while let Some(kind) = event_rx.recv().await {
            pump.push(kind);
        }
    });
    crate::prometheus::start(args.prometheus_listen, ctx.clone(), &tracker, token.clone()).await?;
    let client = match &control_tls {
        Some(tls) => Some({
            announce_trust(&ctx.auth, window);
            control::start(
                &args.control,
                tls,
                ctx.clone(),
                intervals(&args),
                reports,
                &tracker,
                token.clone(),
            )
            .await?
        }),
        None => {
            tracing::info!("No control plane given: supervising only.");
            None
        }
    };

    if let (Some(client), false) = (&client, args.front.is_empty()) {
        let (client, id, t) = (client.clone(), ctx.identity.id.clone(), token.clone());
        tracker.spawn(async move {
            tokio::select! {
                biased;
                _ = t.cancelled() => {}
                served = front.serve(&client, &id) => if let Err(e) = served {
                    tracing::warn!(error = %e, "The front links are not announced on the control plane.");
                },
            }
        });
    }
    if let Some(sidecar) = sidecar {
        tracker.spawn(sidecar(ctx.clone(), token.clone()));
    }
    let (code, reason) = ending.await?;
    outbox.push(EventKind::AgentStopping { reason });
    if let Some(client) = client {
        let _ = tokio::time::timeout(Duration::from_secs(2), outbox.flush_now(&client)).await;
    }
    token.cancel();
    tracker.close();
    // The tasks end on the token; waiting lets them clean up (the report
    // socket's file is removed when its task drops it).
    let _ = tokio::time::timeout(Duration::from_secs(1), tracker.wait()).await;
    Ok(code)
}

/// Starts the supervisor around CMD; the run ends with the child.
fn supervise_process(
    args: &RunArgs,
    monitor: Option<Monitor>,
    reports: Option<&ReportSocket>,
    events: mpsc::Sender<EventKind>,
    tracker: &TaskTracker,
) -> anyhow::Result<(Target, Ending)> {
    let mut spec = spec(args, monitor);
    spec.env.extend(reports.map(ReportSocket::env));
    let (handle, supervision) = Supervisor::start(spec, events);
    forward_signals(&handle, tracker, args)?;
    let ending: Ending = Box::pin(async move {
        let code = supervision.await?.code;
        Ok((code, format!("child finished, exit code {code}")))
    });
    Ok((Target::Process(handle), ending))
}

/// Without the `docker` feature there is no container mode.
#[cfg(not(feature = "docker"))]
async fn supervise_container(
    _: &RunArgs,
    name: &str,
    _: Option<Monitor>,
    _: mpsc::Sender<EventKind>,
    _: &TaskTracker,
    _: &CancellationToken,
) -> anyhow::Result<(Target, Ending)> {
    anyhow::bail!(
        "--container {name}: this geolb-agent was built without the `docker` feature; \
         build it with `cargo build -p geolb-agent --features docker`"
    )
}

/// Finds the container and watches it; HUP, USR1 and USR2 are passed on to
/// it, and the run ends at SIGTERM or SIGINT, leaving the container as it is.
#[cfg(feature = "docker")]
async fn supervise_container(
    args: &RunArgs,
    name: &str,
    monitor: Option<Monitor>,
    events: mpsc::Sender<EventKind>,
    tracker: &TaskTracker,
    token: &CancellationToken,
) -> anyhow::Result<(Target, Ending)> {
    if !args.command.is_empty() {
        anyhow::bail!("--container {name} supervises a container: give no CMD after `--`");
    }
    if args.replicas != 1 {
        anyhow::bail!("--container {name} supervises one container: --replicas must be 1");
    }
    use crate::container;
    let spec = container::Spec {
        name: name.to_string(),
        term_grace: args.term_grace.0,
        ldm_grace: args.ldm_grace.0,
        drain_probe: monitor.map(drain_probe),
    };
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let handle = container::start(spec, events, token.clone()).await?;
    for sig in signals::forwarded().into_iter().filter(|s| !s.shuts_down()) {
        let mut stream = signal(sig.kind())?;
        let handle = handle.clone();
        tracker.spawn(async move {
            while stream.recv().await.is_some() {
                handle.forward(sig).await;
            }
        });
    }
    let last = handle.clone();
    let ending: Ending = Box::pin(async move {
        let received = tokio::select! {
            _ = term.recv() => signals::Signal::Term,
            _ = int.recv() => signals::Signal::Int,
        };
        tracing::info!(signal = %received, "Signal received; the agent ends and leaves the container as it is.");
        last.shutdown().await;
        Ok((
            0,
            format!("{received} received; the container is left as it is"),
        ))
    });
    Ok((Target::Container(handle), ending))
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
    handle: &supervisor::Handle,
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
