//! What the routing systems did during a fault, from the changes they
//! published (`geolb.routing.<id>.<kind>`): when the GeoDNS marked the
//! failed region down and changed its answers, when the region withdrew
//! its anycast address, and, per client, how long a `dns` client kept
//! using the old answer and how long an `anycast` client's vantage took to
//! flip (pure).

use super::observe::ClientView;
use crate::report::{ClientOutcome, RoutingFigures};
use geolb_proto::client::Lookup;
use geolb_proto::routing::{Component, RoutingChange, RoutingEvent};
use std::collections::BTreeMap;

/// The changes after `fault_ms` (ms since the epoch), in order.
fn after(events: &[(u64, RoutingEvent)], fault_ms: u64) -> impl Iterator<Item = &RoutingEvent> {
    events
        .iter()
        .map(|(_, e)| e)
        .filter(move |e| e.at_ms >= fault_ms)
}

/// When each routing system noticed that `region` (its `servers`) failed.
pub fn figures(
    events: &[(u64, RoutingEvent)],
    fault_ms: u64,
    region: &str,
    servers: &[String],
) -> Option<RoutingFigures> {
    let since = |e: &RoutingEvent| e.at_ms - fault_ms;
    let marked = after(events, fault_ms).find_map(|e| match &e.change {
        RoutingChange::Health {
            server,
            healthy: false,
            ..
        } if e.component == Component::Dns && servers.contains(server) => Some(since(e)),
        _ => None,
    });
    let answers = after(events, fault_ms).find_map(|e| match &e.change {
        RoutingChange::Answers { servers: to, .. } if answers_away(to, servers) => Some(since(e)),
        _ => None,
    });
    let withdrawn = after(events, fault_ms).find_map(|e| match &e.change {
        RoutingChange::Withdrawn { region: r, .. } if r == region => Some(since(e)),
        _ => None,
    });
    let figures = RoutingFigures {
        dns_marked_down_ms: marked,
        dns_answers_changed_ms: answers,
        anycast_withdrawn_ms: withdrawn,
    };
    (figures != RoutingFigures::default()).then_some(figures)
}

/// Whether an answer names none of the failed `servers` (and something).
fn answers_away(answer: &[String], servers: &[String]) -> bool {
    !answer.is_empty() && !answer.iter().any(|s| servers.contains(s))
}

/// Fills in each `dns` client's staleness and each `anycast` client's
/// flip delay after `region` failed at `fault_ms`.
pub fn per_client(
    events: &[(u64, RoutingEvent)],
    fault_ms: u64,
    region: &str,
    servers: &[String],
    views: &BTreeMap<String, ClientView>,
    clients: &mut [ClientOutcome],
) {
    for client in clients.iter_mut() {
        let Some(view) = views.get(&client.id) else {
            continue;
        };
        match client.strategy.as_str() {
            "dns" => {
                // The first answer for its region that leads away from the failed one.
                let changed = after(events, fault_ms).find_map(|e| match &e.change {
                    RoutingChange::Answers {
                        region: r,
                        serial,
                        servers: to,
                        ..
                    } if *r == client.region && answers_away(to, servers) => {
                        Some((e.at_ms, u64::from(*serial)))
                    }
                    _ => None,
                });
                if let Some((at_ms, serial)) = changed {
                    let fresh = first_fresh(&view.lookups, at_ms, serial);
                    client.stale_ms = fresh.map(|l| l.at_ms.saturating_sub(at_ms));
                    client.stale_at_end = fresh.is_none();
                }
            }
            "anycast" => {
                client.flip_ms = after(events, fault_ms).find_map(|e| match &e.change {
                    RoutingChange::Flipped {
                        vantage,
                        from: Some(from),
                        delay_ms,
                        ..
                    } if *vantage == view.agent && from == region => Some(*delay_ms),
                    _ => None,
                });
            }
            _ => {}
        }
    }
}

/// The first lookup at or after `at_ms` that got answer version `serial` or newer.
fn first_fresh(lookups: &[Lookup], at_ms: u64, serial: u64) -> Option<&Lookup> {
    lookups
        .iter()
        .filter(|l| l.at_ms >= at_ms && l.error.is_none())
        .find(|l| l.version.is_some_and(|v| v >= serial))
}

#[cfg(test)]
mod tests {
    use super::*;
    use geolb_proto::routing::RoutingEvent;

    fn event(at_ms: u64, change: RoutingChange) -> (u64, RoutingEvent) {
        let component = match change {
            RoutingChange::Withdrawn { .. } | RoutingChange::Flipped { .. } => Component::Anycast,
            _ => Component::Dns,
        };
        (
            0,
            RoutingEvent {
                v: 1,
                at_ms,
                source: "x".into(),
                component,
                change,
            },
        )
    }

    fn lookup(at_ms: u64, version: u64) -> Lookup {
        Lookup {
            at_ms,
            version: Some(version),
            ..Lookup::default()
        }
    }

    #[test]
    fn figures_follow_the_first_change_after_the_fault() {
        let servers = vec!["lon-1".to_string(), "lon-2".to_string()];
        let health = |at, server: &str, healthy| {
            event(
                at,
                RoutingChange::Health {
                    server: server.into(),
                    region: "lon".into(),
                    healthy,
                    detail: String::new(),
                },
            )
        };
        let answers = |at, serial, to: &[&str]| {
            event(
                at,
                RoutingChange::Answers {
                    serial,
                    region: "lon".into(),
                    answered_as: "lon".into(),
                    addrs: vec![],
                    servers: to.iter().map(|s| s.to_string()).collect(),
                },
            )
        };
        let mut router_health = health(1_500, "lon-1", false);
        router_health.1.component = Component::Anycast;
        let events = vec![
            health(900, "lon-1", false),
            router_health,
            health(31_000, "ams-1", false),
            health(31_500, "lon-2", false),
            answers(31_600, 8, &["lon-1"]),
            answers(32_000, 9, &["ams-1", "ams-2"]),
            event(
                7_000,
                RoutingChange::Withdrawn {
                    region: "lon".into(),
                    reason: "health".into(),
                },
            ),
        ];
        let f = figures(&events, 1_000, "lon", &servers).unwrap();
        assert_eq!(
            f.dns_marked_down_ms,
            Some(30_500),
            "before the fault does not count"
        );
        assert_eq!(f.dns_answers_changed_ms, Some(31_000));
        assert_eq!(f.anycast_withdrawn_ms, Some(6_000));
        assert_eq!(figures(&[], 1_000, "lon", &servers), None);

        let lookups = [lookup(31_000, 7), lookup(40_000, 8), lookup(62_500, 9)];
        assert_eq!(
            first_fresh(&lookups, 32_000, 9).map(|l| l.at_ms),
            Some(62_500)
        );
        assert!(
            first_fresh(&lookups[..2], 32_000, 9).is_none(),
            "still stale"
        );
    }
}
