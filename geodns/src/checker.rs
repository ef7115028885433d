//! The GeoDNS's health checker: every server is checked through each of
//! its check addresses (in the lab, the emulator's links from every region,
//! so a partition counts) every interval; a round passes when more than
//! 18 % of them pass (Route 53's rule for its checkers around the world).
//! `slow` multiplies the interval, `stopped` freezes every server's health.

use crate::Inner;
use geolb_proto::routing::dns::{CheckerMode, DnsFaults};
use geolb_wan::check;
use std::sync::Weak;
use std::time::Duration;
use tokio::sync::watch;

/// Checks server `index` until the GeoDNS is dropped.
pub(crate) async fn run(inner: Weak<Inner>, index: usize, mut faults: watch::Receiver<DnsFaults>) {
    loop {
        let mode = faults.borrow_and_update().clone();
        if mode.checker == CheckerMode::Stopped {
            // Frozen until the fault changes.
            if faults.changed().await.is_err() {
                return;
            }
            continue;
        }
        let Some((checks, timeout, health)) = inner.upgrade().map(|i| {
            let h = i.config.health.clone();
            (i.config.servers[index].checks.clone(), h.timeout.0, h)
        }) else {
            return;
        };
        let outcomes =
            futures::future::join_all(checks.iter().map(|addr| check::nats(addr, timeout))).await;
        let passed = outcomes.iter().filter(|o| o.is_ok()).count();
        // More than 18 % of the checkers (at least one).
        let pass = !outcomes.is_empty() && passed * 100 > 18 * outcomes.len();
        let detail = match pass {
            true => format!("{passed} of {} checks passed", outcomes.len()),
            false => outcomes
                .iter()
                .find_map(|o| o.clone().err())
                .unwrap_or_else(|| "no check address".into()),
        };
        // A round finished after `stopped` was set changes nothing.
        if faults.borrow().checker == CheckerMode::Stopped {
            continue;
        }
        match inner.upgrade() {
            Some(inner) => inner.record(index, pass, detail),
            None => return,
        }
        let wait = match faults.borrow().checker {
            CheckerMode::Slow => health.next_after(!pass).mul_f64(mode.slow_factor.max(1.0)),
            _ => health.next_after(!pass),
        };
        tokio::select! {
            biased;
            changed = faults.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(wait.max(Duration::from_millis(10))) => {}
        }
    }
}
