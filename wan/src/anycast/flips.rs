//! Withdrawals and announcements, and the flips they schedule: each
//! vantage whose nearest announcing site changed moves after its own delay,
//! drawn (seeded) from the flip distribution.

use super::{route, Inner, State};
use geolb_proto::routing::anycast::AnycastMode;
use geolb_proto::routing::RoutingChange;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Where one vantage's new connections go, and where they will.
#[derive(Debug, Default)]
pub(super) struct Route {
    /// The site now (bgp mode).
    pub site: Option<String>,
    /// A flip on its way.
    pub pending: Option<Pending>,
    /// Established connections reset by flips.
    pub resets: u64,
}

/// A scheduled flip.
#[derive(Debug)]
pub(super) struct Pending {
    pub to: String,
    pub delay: Duration,
    pub due_ms: u64,
    generation: u64,
}

impl Inner {
    /// Every vantage to its nearest announcing site at once, no flip.
    pub(super) fn route_now(&self, state: &mut State) {
        let announced: Vec<String> = self
            .announced(state)
            .into_iter()
            .map(String::from)
            .collect();
        for (v, r) in self.vantages.iter().zip(state.routes.iter_mut()) {
            r.site = route::site(
                &self.config.rtt_ms,
                &v.spec.region,
                announced.iter().map(String::as_str),
            )
            .map(String::from);
            r.pending = None;
        }
    }

    /// `withdraw` (`announce` false) or `announce` of `region`.
    pub(super) fn explicitly(self: &Arc<Self>, region: &str, announce: bool) {
        let mut state = self.lock();
        let was = self.announced(&state).contains(&region);
        match announce {
            true => state.explicit.remove(region),
            false => state.explicit.insert(region.to_string()),
        };
        self.announcement(&state, region, was, "explicit");
        self.reroute(&mut state);
    }

    /// The servers of `region` are all down (`true`) or not.
    pub(super) fn site_health(self: &Arc<Self>, state: &mut State, region: &str, all_down: bool) {
        let was = self.announced(state).contains(&region);
        match all_down {
            true => state.unhealthy.insert(region.to_string()),
            false => state.unhealthy.remove(region),
        };
        self.announcement(state, region, was, "health");
        self.reroute(state);
    }

    /// Publishes a withdrawal or an announcement of `region` if it changed.
    fn announcement(&self, state: &State, region: &str, was: bool, reason: &str) {
        let now = self.announced(state).contains(&region);
        let (region, reason) = (region.to_string(), reason.to_string());
        match (was, now) {
            (true, false) => self.publish(RoutingChange::Withdrawn { region, reason }),
            (false, true) => self.publish(RoutingChange::Announced { region, reason }),
            _ => {}
        }
    }

    /// Schedules a flip for every vantage whose nearest announcing site is
    /// no longer its own, and cancels those that are no longer needed.
    pub(super) fn reroute(self: &Arc<Self>, state: &mut State) {
        if state.mode == AnycastMode::Proxy {
            return;
        }
        let announced: Vec<String> = self
            .announced(state)
            .into_iter()
            .map(String::from)
            .collect();
        for index in 0..self.vantages.len() {
            let spec = &self.vantages[index].spec;
            let target = route::site(
                &self.config.rtt_ms,
                &spec.region,
                announced.iter().map(String::as_str),
            );
            let current = &mut state.routes[index];
            let to = match target {
                // Nothing announced anywhere: traffic stays where it is.
                None => {
                    current.pending = None;
                    continue;
                }
                Some(t) if current.site.as_deref() == Some(t) => {
                    current.pending = None;
                    continue;
                }
                Some(t) if current.pending.as_ref().is_some_and(|p| p.to == t) => continue,
                Some(t) => t.to_string(),
            };
            let delay = self.config.flip.at(state.rng.f64());
            state.generation += 1;
            let generation = state.generation;
            let from = state.routes[index].site.clone();
            state.routes[index].pending = Some(Pending {
                to: to.clone(),
                delay,
                due_ms: geolb_proto::now_ms() + delay.as_millis() as u64,
                generation,
            });
            self.publish(RoutingChange::FlipScheduled {
                vantage: spec.id.clone(),
                region: spec.region.clone(),
                from,
                to,
                delay_ms: delay.as_millis() as u64,
            });
            let weak = Arc::downgrade(self);
            tokio::spawn(flip_after(
                weak,
                index,
                generation,
                delay,
                self.stopped.clone(),
            ));
        }
    }

    /// Applies the flip `generation` of vantage `index` if it is still due.
    fn flip(&self, index: usize, generation: u64) {
        let mut state = self.lock();
        let route = &mut state.routes[index];
        let Some(pending) = route.pending.take_if(|p| p.generation == generation) else {
            return;
        };
        let from = route.site.replace(pending.to.clone());
        let vantage = &self.vantages[index];
        let reset = from.as_deref().map_or(0, |old| vantage.reset_site(old));
        route.resets += reset;
        self.publish(RoutingChange::Flipped {
            vantage: vantage.spec.id.clone(),
            region: vantage.spec.region.clone(),
            from,
            to: pending.to,
            delay_ms: pending.delay.as_millis() as u64,
            reset,
        });
    }
}

async fn flip_after(
    inner: Weak<Inner>,
    index: usize,
    generation: u64,
    delay: Duration,
    mut stopped: tokio::sync::watch::Receiver<()>,
) {
    tokio::select! {
        biased;
        _ = stopped.changed() => return,
        () = tokio::time::sleep(delay) => {}
    }
    if let Some(inner) = inner.upgrade() {
        inner.flip(index, generation);
    }
}
