//! An emulated anycast router: one address (as each vantage point sees it)
//! served from every region.
//!
//! - **bgp** mode: a vantage's connections go to the nearest announcing
//!   region (by the latency matrix); inside it a hash of the connection
//!   picks a healthy server. `withdraw`/`announce` (explicit, or by the
//!   site's own health checks when all its servers fail) move each vantage
//!   to its next site after a delay drawn from the flip distribution
//!   (seeded). Until its flip, a vantage's new connections still go to the
//!   old site (dead servers refuse them; a partitioned site swallows them);
//!   at the flip its established connections to the old site are reset, as
//!   packets of a flow that arrive at a site without its state are.
//! - **proxy** mode (Fly's edge): a connection always terminates in the
//!   vantage's region and goes to a healthy local server, across regions
//!   only when every local server is unhealthy.
//!
//! Connections are forwarded like the emulator's links ([`crate::link`]),
//! with no delay of their own: in the lab each server's address per
//! vantage region is the emulator's link from that region, which carries
//! the round trip and is cut by a partition.
//!
//! # Layout
//! - [`route`]: where a connection goes (pure).
//! - `vantage`: one listener and its connections.
//! - `sites`: the sites' health checks.
//! - `flips`: withdrawals, announcements and the flips they schedule.

mod flips;
pub mod route;
mod sites;
mod vantage;

use crate::check::Tracker;
use crate::Error;
use geolb_proto::routing::anycast::{
    AnycastConfig, AnycastMode, AnycastState, PendingFlip, SetAnycast, Site, SiteServer,
    VantageView,
};
use geolb_proto::routing::RoutingChange;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, watch};

/// A running anycast router; dropping it closes its listeners and resets
/// their connections.
pub struct Router {
    inner: Arc<Inner>,
    _stop: watch::Sender<()>,
}

/// What the router's tasks share.
struct Inner {
    config: AnycastConfig,
    regions: Vec<String>,
    vantages: Vec<vantage::Vantage>,
    state: Mutex<State>,
    changes: broadcast::Sender<RoutingChange>,
    /// Completes (with an error) when the router is dropped.
    stopped: watch::Receiver<()>,
}

/// What changes at run time.
struct State {
    mode: AnycastMode,
    auto_withdraw: bool,
    /// Regions withdrawn by a `withdraw`.
    explicit: BTreeSet<String>,
    /// Regions withdrawn because all their servers fail.
    unhealthy: BTreeSet<String>,
    /// One per server of the configuration.
    health: Vec<Tracker>,
    /// One per vantage of the configuration.
    routes: Vec<flips::Route>,
    rng: fastrand::Rng,
    generation: u64,
}

impl Router {
    /// Starts the router of `config`: binds every vantage, starts the
    /// sites' health checks, and routes every vantage to its nearest site.
    pub async fn start(config: AnycastConfig) -> Result<Router, Error> {
        config.validate().map_err(Error::Config)?;
        let mut regions: Vec<String> = Vec::new();
        for s in &config.servers {
            if !regions.contains(&s.region) {
                regions.push(s.region.clone());
            }
        }
        let mut vantages = Vec::new();
        for spec in &config.vantages {
            vantages.push(vantage::Vantage::bind(spec.clone()).await?);
        }
        let (stop, stopped) = watch::channel(());
        let state = State {
            mode: config.mode,
            auto_withdraw: config.auto_withdraw,
            explicit: BTreeSet::new(),
            unhealthy: BTreeSet::new(),
            health: config
                .servers
                .iter()
                .map(|_| Tracker::new(true, config.health.threshold, config.health.recovery))
                .collect(),
            routes: config
                .vantages
                .iter()
                .map(|_| flips::Route::default())
                .collect(),
            rng: fastrand::Rng::with_seed(config.seed),
            generation: 0,
        };
        let inner = Arc::new(Inner {
            config,
            regions,
            vantages,
            state: Mutex::new(state),
            changes: broadcast::channel(1024).0,
            stopped: stopped.clone(),
        });
        inner.route_now(&mut inner.lock());
        for (index, vantage) in inner.vantages.iter().enumerate() {
            let listener = vantage.take_listener();
            tokio::spawn(vantage::accept(
                inner.clone(),
                index,
                listener,
                stopped.clone(),
            ));
        }
        for index in 0..inner.config.servers.len() {
            tokio::spawn(sites::check(Arc::downgrade(&inner), index, stopped.clone()));
        }
        tracing::info!(vantages = inner.vantages.len(), mode = %inner.config.mode, "Anycast router started");
        Ok(Router { inner, _stop: stop })
    }

    /// Where vantage `id` listens.
    pub fn vantage_addr(&self, id: &str) -> Option<SocketAddr> {
        let v = self.inner.vantages.iter().find(|v| v.spec.id == id)?;
        Some(v.local)
    }

    /// The changes as they happen (health, withdrawals, flips).
    pub fn changes(&self) -> broadcast::Receiver<RoutingChange> {
        self.inner.changes.subscribe()
    }

    /// Stops `region` announcing the address; vantages flip away from it.
    pub fn withdraw(&self, region: &str) -> Result<AnycastState, Error> {
        self.inner.known(region)?;
        self.inner.explicitly(region, false);
        Ok(self.state())
    }

    /// Makes `region` announce the address again.
    pub fn announce(&self, region: &str) -> Result<AnycastState, Error> {
        self.inner.known(region)?;
        self.inner.explicitly(region, true);
        Ok(self.state())
    }

    /// Changes the mode or the sites' own withdrawals.
    pub fn set(&self, args: &SetAnycast) -> AnycastState {
        self.inner.set(args);
        self.state()
    }

    /// The router's state now.
    pub fn state(&self) -> AnycastState {
        self.inner.view()
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, change: RoutingChange) {
        tracing::info!(kind = change.kind(), ?change, "Anycast route changed");
        let _ = self.changes.send(change);
    }

    fn known(&self, region: &str) -> Result<(), Error> {
        match self.regions.iter().any(|r| r == region) {
            true => Ok(()),
            false => Err(Error::UnknownRegion(region.to_string())),
        }
    }

    /// Regions announcing the address now.
    fn announced<'a>(&'a self, state: &State) -> Vec<&'a str> {
        self.regions
            .iter()
            .filter(|r| !state.explicit.contains(*r))
            .filter(|r| !(state.auto_withdraw && state.unhealthy.contains(*r)))
            .map(String::as_str)
            .collect()
    }

    fn set(self: &Arc<Self>, args: &SetAnycast) {
        let mut state = self.lock();
        if let Some(auto) = args.auto_withdraw {
            state.auto_withdraw = auto;
        }
        if let Some(mode) = args.mode.filter(|m| *m != state.mode) {
            state.mode = mode;
            self.publish(RoutingChange::Mode { mode });
        }
        if state.mode == AnycastMode::Bgp {
            // Back to BGP: every vantage takes its site at once (a change
            // of set-up, not a routing event).
            self.route_now(&mut state);
        }
    }

    fn view(&self) -> AnycastState {
        let state = self.lock();
        let announced = self.announced(&state);
        let sites = self
            .regions
            .iter()
            .map(|region| Site {
                region: region.clone(),
                announced: announced.contains(&region.as_str()),
                withdrawn: match (
                    state.explicit.contains(region),
                    state.unhealthy.contains(region),
                ) {
                    (true, _) => Some("explicit".into()),
                    (false, true) if state.auto_withdraw => Some("health".into()),
                    _ => None,
                },
                servers: self
                    .config
                    .servers
                    .iter()
                    .zip(&state.health)
                    .filter(|(s, _)| &s.region == region)
                    .map(|(s, h)| SiteServer {
                        id: s.id.clone(),
                        healthy: h.healthy,
                    })
                    .collect(),
            })
            .collect();
        let vantages = self
            .vantages
            .iter()
            .zip(&state.routes)
            .map(|(v, route)| {
                let stats = v.stats();
                VantageView {
                    id: v.spec.id.clone(),
                    region: v.spec.region.clone(),
                    listen: v.local.to_string(),
                    site: match state.mode {
                        AnycastMode::Bgp => route.site.clone(),
                        AnycastMode::Proxy => Some(v.spec.region.clone()),
                    },
                    pending: route.pending.as_ref().map(|p| PendingFlip {
                        to: p.to.clone(),
                        delay_ms: p.delay.as_millis() as u64,
                        due_ms: p.due_ms,
                    }),
                    open: stats.open,
                    total: stats.total,
                    resets: route.resets,
                }
            })
            .collect();
        AnycastState {
            mode: state.mode,
            auto_withdraw: state.auto_withdraw,
            flip: self.config.flip.clone(),
            health: self.config.health.clone(),
            sites,
            vantages,
        }
    }
}
