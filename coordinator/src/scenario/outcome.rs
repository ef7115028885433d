//! What every client saw in a scenario's window: its failover gaps, where
//! it landed against where it should have, and its traffic counters since
//! the baseline (pure).

use super::observe::ClientView;
use crate::report::ClientOutcome;
use geolb_proto::client::MoveReason;
use std::collections::BTreeMap;

/// The outcome of every client: gaps of its moves in `window` (ms since
/// the observer started; a voluntary move to a better server is a switch,
/// not a gap), where it was at `landed` (a snapshot), what it should have
/// been, and its counters since the baseline.
pub fn outcomes(
    clients: &BTreeMap<String, ClientView>,
    landed: &BTreeMap<String, ClientView>,
    window: (u64, u64),
    homes: &BTreeMap<String, String>,
    expected: impl Fn(&ClientView) -> String,
) -> Vec<ClientOutcome> {
    clients
        .iter()
        .map(|(id, view)| {
            let moves: Vec<&geolb_proto::client::ClientMove> = view
                .moves
                .iter()
                .filter(|(t, m)| {
                    (window.0..=window.1).contains(t)
                        && m.to.is_some()
                        && m.reason != MoveReason::Initial
                })
                .map(|(_, m)| m)
                .collect();
            let base = view
                .baseline
                .as_ref()
                .map(|b| b.traffic)
                .unwrap_or_default();
            let now = view.latest.traffic;
            let lost_same_strategy = lost_from_own_strategy(clients, view, |_| true);
            let lost_same_strategy_cross_region = lost_from_own_strategy(clients, view, |sender| {
                sender.latest.region != view.latest.region
            });
            let lost_connections = view
                .moves
                .iter()
                .filter(|(t, m)| (window.0..=window.1).contains(t) && m.to.is_none())
                .count() as u32;
            let failed = |s: &geolb_proto::client::ClientStatus| {
                s.routed.as_ref().map(|r| r.failed_attempts)
            };
            let dead_attempts = failed(&view.latest).map(|now| {
                now.saturating_sub(view.baseline.as_ref().and_then(failed).unwrap_or(0))
            });
            let region_of =
                |s: &geolb_proto::client::ClientStatus| s.server.as_ref().map(|r| r.region.clone());
            ClientOutcome {
                id: id.clone(),
                region: view.latest.region.clone(),
                strategy: view.latest.strategy.clone(),
                gaps_ms: moves
                    .iter()
                    .filter(|m| m.reason != MoveReason::Better)
                    .map(|m| m.gap_ms)
                    .collect(),
                landed_region: landed
                    .get(id)
                    .and_then(|v| v.region_now().map(String::from)),
                expected_region: expected(view),
                switches: moves.len() as u32,
                sent: now.sent.saturating_sub(base.sent),
                received: now.received.saturating_sub(base.received),
                lost: now.lost.saturating_sub(base.lost),
                lost_same_strategy,
                lost_same_strategy_cross_region,
                duplicated: now.duplicated.saturating_sub(base.duplicated),
                connected_after_ms: view.latest.connected_after_ms,
                probe_rate: view.before().probe_rate,
                lost_connections,
                region_at_start: region_of(view.before()),
                region_at_end: region_of(&view.latest),
                dead_attempts,
                stale_ms: None,
                stale_at_end: false,
                flip_ms: None,
                home_region: home(homes, view),
            }
        })
        .collect()
}

/// The home region of `view`'s client in `homes`, else the region it lives in.
pub fn home(homes: &BTreeMap<String, String>, view: &ClientView) -> String {
    homes
        .get(&view.latest.client)
        .cloned()
        .unwrap_or_else(|| view.latest.region.clone())
}

/// Messages sent by clients of `view`'s own strategy (and passing `also`)
/// that it missed since the baseline.
fn lost_from_own_strategy(
    clients: &BTreeMap<String, ClientView>,
    view: &ClientView,
    also: impl Fn(&ClientView) -> bool,
) -> u64 {
    let same = |sender: &String| {
        clients
            .get(sender)
            .is_some_and(|s| s.latest.strategy == view.latest.strategy && also(s))
    };
    let before = |sender: &String| {
        view.baseline
            .as_ref()
            .and_then(|b| b.by_sender.get(sender))
            .map_or(0, |c| c.lost)
    };
    view.latest
        .by_sender
        .iter()
        .filter(|(sender, _)| same(sender))
        .map(|(sender, counts)| counts.lost.saturating_sub(before(sender)))
        .sum()
}
