//! `geolb-client`: the headless NATS test client, run as `geolb-agent
//! client` (linked into the one agent binary that every image carries).
//!
//! # How it works
//! Given every data-plane server of every region (`--server REGION=URL`,
//! since gateways do not tell clients about other regions), the client
//! probes each one on a connection of its own ([`probe`]), chooses a server
//! by its `--strategy`, publishes sequenced messages at `--rate` and
//! receives its peers' messages, measuring loss, duplicates, order and
//! end-to-end latency ([`tracker`]). Every `--report-interval` it sends a
//! status record, and a Moved record on every disconnect and reconnect,
//! through the report channel ([`report`]).
//!
//! - `rtt` ([`rtt`]): the first election waits `--election-window` (2 s) of
//!   probes at `--probe-interval` (200 ms); the lowest RTT wins, each
//!   candidate's being the lowest of its last `--rtt-window` samples (at
//!   least `--min-samples` fresh), which queueing cannot raise
//!   ([`election`]). The client leaves its server at once when it is lost,
//!   stops answering probes or announces lame-duck mode, make-before-break
//!   where possible, and returns to a better server only past the
//!   hysteresis held for `--hold`.
//! - `random` / `ordered` ([`stock`]): a stock async-nats client, observed.
//! - `dns` / `anycast` ([`routed`]): one `--target` that the routing system
//!   maps to a server; `dns` resolves it itself ([`resolve`]) on every
//!   connection attempt and records each lookup.
//! - Data-plane connections ignore discovered servers; the servers are
//!   expected to run with `no_advertise`.
//! - `--count N` runs N such clients in one process, each with everything
//!   above of its own; only the report channel and the signals are shared.
//!
//! Bad input (no server, a malformed or duplicated URL, a scheme that does
//! not match `--transport`, an unknown `--region`) is refused before
//! anything starts. When nothing answers, probes redial with jittered
//! backoff (up to `--backoff-max`) and status records show no server.
//!
//! SIGTERM, SIGINT and SIGUSR2 stop the client: it drains its connection,
//! sends a last status record and exits 0. SIGHUP and SIGUSR1 are ignored
//! (an agent forwards them to servers and clients alike).
//!
//! # Layout
//! - [`args`]: flags and their `GEOLB_CLIENT_*` variables; `setup`: the checked plan of one client.
//! - [`candidates`]: `--server` parsing and checks.
//! - [`wire`], [`probe`], [`table`]: raw NATS probes and what they learn.
//! - [`backoff`]: jittered exponential backoff.
//! - [`election`]: the pure `rtt` policy.
//! - [`session`]: data-plane connections.
//! - [`rtt`], [`stock`], [`routed`]: the drivers of the strategies; [`resolve`]: the dns strategy's resolver.
//! - [`message`], [`payload`], [`traffic`], [`tracker`], [`histogram`]: the traffic.
//! - [`context`], [`report`]: records and the report channel.

pub mod args;
pub mod backoff;
pub mod candidates;
pub mod context;
pub mod election;
pub mod histogram;
pub mod message;
pub mod payload;
pub mod probe;
pub mod report;
pub mod resolve;
pub mod routed;
pub mod rtt;
pub mod session;
pub mod standby;
pub mod stock;
pub mod table;
pub mod tracker;
pub mod traffic;
pub mod wire;

pub use args::ClientArgs;

use args::Strategy;
use context::Context;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

mod setup;

/// Between the starts of the clients of one process: a hundred clients
/// start over a second, not all dialling every candidate at once.
const START_SPREAD: Duration = Duration::from_millis(10);

/// Runs the client (or `--count` of them) until a stop signal or
/// `--duration`; returns the exit code.
pub async fn run(args: ClientArgs) -> anyhow::Result<i32> {
    raise_open_files_limit();
    // Every client's flags are checked before any starts.
    let mut plans = args
        .ids()
        .into_iter()
        .map(|id| setup::Plan::for_client(&args, id))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let payload =
        payload::Payload::load(args.payload.as_deref(), &args.control, &args.base_id()).await?;
    for plan in &mut plans {
        plan.outgoing.payload = payload.clone();
    }
    let reporter = Arc::new(report::Reporter::from_env());
    let token = CancellationToken::new();
    let tasks = TaskTracker::new();
    watch_signals(&token, &tasks)?;
    if let Some(duration) = args.duration {
        let stop = token.clone();
        tasks.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::time::sleep(duration.0) => stop.cancel(),
            }
        });
    }
    if plans.len() > 1 {
        tracing::info!(count = plans.len(), first = %plans[0].id, "Running several clients in this process.");
    }
    let count = plans.len() as u32;
    let clients: Vec<_> = plans
        .into_iter()
        .enumerate()
        .map(|(i, plan)| {
            let client = one(args.clone(), plan, count, reporter.clone(), token.clone());
            let start = START_SPREAD * i as u32;
            let stop = token.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(start) => {}
                }
                client.await
            })
        })
        .collect();
    let mut outcome = Ok(());
    for client in clients {
        let ended = client
            .await
            .map_err(|e| anyhow::anyhow!("a client task failed: {e}"))
            .and_then(|ended| ended);
        if let Err(e) = ended {
            // One client's failure stops them all, as one process would.
            token.cancel();
            outcome = outcome.and(Err(e));
        }
    }
    token.cancel();
    tasks.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tasks.wait()).await;
    reporter.flush(Duration::from_secs(2)).await;
    outcome?;
    tracing::info!(dropped_records = reporter.dropped(), "Client stopped.");
    Ok(0)
}

/// One client, from its first probe to its last status record.
async fn one(
    args: ClientArgs,
    plan: setup::Plan,
    count: u32,
    reporter: Arc<report::Reporter>,
    token: CancellationToken,
) -> anyhow::Result<()> {
    let cadence = table::Cadence {
        fast: args.probe_interval.0,
        idle: args.probe_idle_interval.0,
        hold: args.hold.0,
    };
    let table = Arc::new(
        table::Table::new(
            &plan.servers,
            &plan.region,
            args.rtt_window as usize,
            args.election_window.0,
        )
        .with_cadence(cadence),
    );
    let mut ctx = Context::new(
        plan.id.clone(),
        plan.region.clone(),
        args.strategy,
        table.clone(),
        reporter.clone(),
    );
    ctx.process_clients = count;
    let ctx = Arc::new(ctx);
    tracing::debug!(id = %plan.id, region = %plan.region, strategy = args.strategy.name(),
        servers = plan.servers.len(), subjects = ?plan.link.subjects, "Client starting.");
    let tasks = TaskTracker::new();
    if args.strategy == Strategy::Rtt || !args.no_probes {
        for (index, server) in plan.servers.iter().enumerate() {
            let task = probe::run(
                index,
                server.clone(),
                table.clone(),
                plan.probe,
                token.clone(),
            );
            tasks.spawn(task);
        }
    }
    let publisher = traffic::publish(
        plan.outgoing.clone(),
        ctx.publish_to.subscribe(),
        ctx.traffic.clone(),
        token.clone(),
    );
    tasks.spawn(publisher);
    tasks.spawn(report_every(
        ctx.clone(),
        args.report_interval.0,
        token.clone(),
    ));

    let outcome = match args.strategy {
        Strategy::Rtt => {
            rtt::drive(ctx.clone(), plan.rtt.clone(), token.clone()).await;
            Ok(())
        }
        Strategy::Random | Strategy::Ordered => {
            let urls = plan.servers.iter().map(|s| s.url.clone()).collect();
            stock::drive(ctx.clone(), urls, plan.link.clone(), token.clone()).await
        }
        Strategy::Dns | Strategy::Anycast => match plan.routed.clone() {
            Some(routed) => {
                routed::drive(ctx.clone(), routed, plan.link.clone(), token.clone()).await
            }
            None => Err(anyhow::anyhow!(
                "a {} client needs --target",
                args.strategy.name()
            )),
        },
    };
    token.cancel();
    tasks.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tasks.wait()).await;
    outcome?;
    reporter.send(&ctx.status());
    Ok(())
}

/// Raises the soft limit of open files to the hard one: a process of many
/// clients holds a connection per candidate per client.
fn raise_open_files_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::debug!(error = %e, soft, hard, "Cannot raise the open files limit.");
            }
        }
    }
}

/// Sends a status record every `interval` until cancelled.
async fn report_every(ctx: Arc<Context>, interval: Duration, token: CancellationToken) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            biased;
            _ = token.cancelled() => return,
            _ = tick.tick() => {
                ctx.reporter.send(&ctx.status());
            }
        }
    }
}

/// TERM, INT and USR2 cancel `token`; HUP and USR1 are logged and ignored.
fn watch_signals(token: &CancellationToken, tasks: &TaskTracker) -> std::io::Result<()> {
    let kinds = [
        (SignalKind::terminate(), true),
        (SignalKind::interrupt(), true),
        (SignalKind::user_defined2(), true),
        (SignalKind::hangup(), false),
        (SignalKind::user_defined1(), false),
    ];
    for (kind, stops) in kinds {
        let mut stream = signal(kind)?;
        let token = token.clone();
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = token.cancelled() => return,
                    got = stream.recv() => {
                        if got.is_none() {
                            return;
                        }
                        if stops {
                            tracing::info!(signal = kind.as_raw_value(), "Stop signal received; draining.");
                            token.cancel();
                            return;
                        }
                        tracing::info!(signal = kind.as_raw_value(), "Signal ignored by the client.");
                    }
                }
            }
        });
    }
    Ok(())
}
