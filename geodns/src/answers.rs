//! What each region is answered now, and the version (serial) that
//! changes whenever an answer changes.

use crate::policy::{self, Candidate};
use geolb_proto::routing::dns::{DnsAnswer, DnsConfig, DnsFaults};
use geolb_proto::routing::RoutingChange;
use geolb_wan::check::Tracker;
use std::net::Ipv4Addr;

/// Every region's answer and their version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The version, from 1; the SOA serial and the TXT record carry it.
    pub serial: u32,
    /// One answer per listener, in the configuration's order.
    pub answers: Vec<DnsAnswer>,
}

impl Table {
    /// The answers for `health` and `faults`, computed from nothing.
    pub fn compute(config: &DnsConfig, health: &[Tracker], faults: &DnsFaults) -> Vec<DnsAnswer> {
        let candidates: Vec<Candidate<'_>> = config
            .servers
            .iter()
            .zip(health)
            .map(|(s, h)| Candidate {
                region: &s.region,
                healthy: h.healthy,
            })
            .collect();
        config
            .listeners
            .iter()
            .map(|listener| {
                let answered_as = faults
                    .wrong_region
                    .clone()
                    .unwrap_or_else(|| listener.region.clone());
                let chosen =
                    policy::choose(config.policy, &config.rtt_ms, &answered_as, &candidates);
                let servers = &config.servers;
                DnsAnswer {
                    region: listener.region.clone(),
                    listen: listener.listen.clone(),
                    answered_as,
                    addrs: chosen
                        .iter()
                        .filter_map(|&i| servers[i].answers.get(&listener.region).copied())
                        .collect::<Vec<Ipv4Addr>>(),
                    servers: chosen.iter().map(|&i| servers[i].id.clone()).collect(),
                }
            })
            .collect()
    }

    /// Takes `answers`; when any differs, bumps the serial and returns one
    /// change per region that differs.
    pub fn update(&mut self, answers: Vec<DnsAnswer>) -> Vec<RoutingChange> {
        if answers == self.answers {
            return Vec::new();
        }
        self.serial = self.serial.wrapping_add(1).max(1);
        let changes = answers
            .iter()
            .enumerate()
            .filter(|(i, a)| self.answers.get(*i) != Some(a))
            .map(|(_, a)| RoutingChange::Answers {
                serial: self.serial,
                region: a.region.clone(),
                answered_as: a.answered_as.clone(),
                addrs: a.addrs.clone(),
                servers: a.servers.clone(),
            })
            .collect();
        self.answers = answers;
        changes
    }
}
