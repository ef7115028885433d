//! The sites' own health checks: every server is checked through its
//! `check` address; a region whose servers all fail withdraws (when
//! `auto_withdraw`), and announces again when one passes its recovery.

use super::Inner;
use crate::check;
use geolb_proto::routing::RoutingChange;
use std::sync::{Arc, Weak};

/// Checks server `index` until the router is dropped.
pub(super) async fn check(
    inner: Weak<Inner>,
    index: usize,
    mut stopped: tokio::sync::watch::Receiver<()>,
) {
    loop {
        let Some((addr, timeout)) = inner.upgrade().map(|i| {
            (
                i.config.servers[index].check.clone(),
                i.config.health.timeout.0,
            )
        }) else {
            return;
        };
        let outcome = tokio::select! {
            biased;
            _ = stopped.changed() => return,
            outcome = check::nats(&addr, timeout) => outcome,
        };
        let Some(router) = inner.upgrade() else {
            return;
        };
        let wait = router.config.health.next_after(outcome.is_err());
        router.record(index, outcome);
        drop(router);
        tokio::select! {
            biased;
            _ = stopped.changed() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

impl Inner {
    /// Records one check of server `index`; a change of health may
    /// withdraw or announce its region.
    fn record(self: &Arc<Self>, index: usize, outcome: Result<(), String>) {
        let mut state = self.lock();
        let Some(healthy) = state.health[index].record(outcome.is_ok()) else {
            return;
        };
        let server = &self.config.servers[index];
        self.publish(RoutingChange::Health {
            server: server.id.clone(),
            region: server.region.clone(),
            healthy,
            detail: outcome.err().unwrap_or_else(|| "PONG".into()),
        });
        let all_down = self
            .config
            .servers
            .iter()
            .zip(&state.health)
            .filter(|(s, _)| s.region == server.region)
            .all(|(_, h)| !h.healthy);
        self.site_health(&mut state, &server.region, all_down);
    }
}
