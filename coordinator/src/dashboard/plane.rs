//! The dashboard's side of the control plane: it connects in the
//! background (retrying until the control plane answers, so the dashboard
//! serves pages, saying "control plane unreachable", from its first
//! second), then follows the fleet ([`LiveFleet`]), the agents' recent
//! history and the running scenarios. async-nats reconnects and
//! resubscribes by itself after a loss; [`Plane::reachable`] says whether
//! it is connected now.
//!
//! A `tick` counter changes at most every [`THROTTLE`] when something
//! arrived, and every second anyway (heartbeat ages move): every event
//! stream renders when it changes, so a burst of updates costs one render.

use super::history::History;
use super::live_runs::LiveRuns;
use crate::control::Control;
use crate::live::LiveFleet;
use geolb_proto::connect::ControlArgs;
use geolb_proto::signing::Signer;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::watch;

/// Shortest time between two renders of a page's parts.
pub const THROTTLE: Duration = Duration::from_millis(250);

/// A connected control plane and what follows it.
pub struct Connected {
    /// The connection (commands are signed when a signer was given).
    pub control: Control,
    /// The fleet, live.
    pub fleet: LiveFleet,
}

/// The control plane as the dashboard sees it.
pub struct Plane {
    connected: OnceLock<Connected>,
    /// Each agent's recent metrics and events.
    pub history: History,
    /// The scenarios running now (and the last few that ended).
    pub live_runs: LiveRuns,
    /// The URL, with no secret in it.
    pub url: String,
    dirty: AtomicBool,
    tick: watch::Sender<u64>,
}

impl Plane {
    /// Starts connecting to the control plane of `args` in the background.
    pub fn start(args: ControlArgs, signer: Option<Signer>, validity: Duration) -> Arc<Plane> {
        let (tick, _) = watch::channel(0);
        let plane = Arc::new(Plane {
            connected: OnceLock::new(),
            history: History::default(),
            live_runs: LiveRuns::default(),
            url: args.display_url(),
            dirty: AtomicBool::new(false),
            tick,
        });
        tokio::spawn(connect(plane.clone(), args, signer, validity));
        tokio::spawn(ticker(plane.clone()));
        plane
    }

    /// The connection, once made.
    pub fn connected(&self) -> Option<&Connected> {
        self.connected.get()
    }

    /// Whether the control plane is connected now.
    pub fn reachable(&self) -> bool {
        self.connected().is_some_and(|c| {
            c.control.client().connection_state() == async_nats::connection::State::Connected
        })
    }

    /// Follows the render tick.
    pub fn ticks(&self) -> watch::Receiver<u64> {
        self.tick.subscribe()
    }

    /// Something changed: the next tick renders it.
    pub fn touch(&self) {
        self.dirty.store(true, Ordering::Relaxed);
    }
}

async fn connect(plane: Arc<Plane>, args: ControlArgs, signer: Option<Signer>, validity: Duration) {
    let mut delay = Duration::from_millis(250);
    let control = loop {
        match Control::connect(&args).await {
            Ok(control) => break control.with_signer(signer, validity),
            Err(e) => {
                tracing::warn!(error = %e, "Control plane unreachable; retrying.");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    };
    let fleet = loop {
        match LiveFleet::start(&control).await {
            Ok(fleet) => break fleet,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot follow the fleet; retrying.");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    tokio::spawn(super::history::follow(plane.clone(), fleet.subscribe()));
    match control
        .client()
        .subscribe(geolb_proto::scenario::SCENARIOS_ALL)
        .await
    {
        Ok(sub) => {
            tokio::spawn(super::live_runs::follow(plane.clone(), sub));
        }
        Err(e) => tracing::warn!(error = %e, "Cannot follow running scenarios."),
    }
    let _ = plane.connected.set(Connected { control, fleet });
    plane.touch();
}

async fn ticker(plane: Arc<Plane>) {
    let mut interval = tokio::time::interval(THROTTLE);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut quiet = 0u32;
    let per_second = (Duration::from_secs(1).as_millis() / THROTTLE.as_millis()) as u32;
    loop {
        interval.tick().await;
        quiet += 1;
        if plane.dirty.swap(false, Ordering::Relaxed) || quiet >= per_second {
            quiet = 0;
            plane.tick.send_modify(|t| *t += 1);
        }
    }
}
