//! What the receiving side measures, per sender: received, lost (gaps),
//! duplicated, out of order, and the end-to-end latency of first copies.
//!
//! - The first sequence number seen from a sender (per run) is its
//!   baseline, not a loss.
//! - A jump past the highest seen counts the skipped numbers as lost; a
//!   late arrival of one of them takes it back from lost and counts as out
//!   of order. At most [`MAX_MISSING`] missing numbers are remembered per
//!   sender; older ones stay lost (and would count as duplicates if they
//!   ever came).
//! - A number already received is a duplicate, except while a
//!   make-before-break move overlaps two subscriptions on purpose.
//! - A new `run` from a sender (it restarted) starts a new baseline.

use super::histogram::Histogram;
use super::message::Header;
use geolb_proto::client::Traffic;
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

/// Missing sequence numbers remembered per sender.
pub const MAX_MISSING: usize = 65_536;

/// Counters, summed over senders.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// First copies received.
    pub received: u64,
    /// Numbers not (yet) received.
    pub lost: u64,
    /// Repeats.
    pub duplicated: u64,
    /// First copies that arrived after a later number.
    pub out_of_order: u64,
}

impl Counts {
    /// Field by field sum.
    fn plus(self, o: Counts) -> Counts {
        Counts {
            received: self.received + o.received,
            lost: self.lost + o.lost,
            duplicated: self.duplicated + o.duplicated,
            out_of_order: self.out_of_order + o.out_of_order,
        }
    }

    /// Field by field difference (`o` is never larger: it was added before).
    fn minus(self, o: Counts) -> Counts {
        Counts {
            received: self.received - o.received,
            lost: self.lost - o.lost,
            duplicated: self.duplicated - o.duplicated,
            out_of_order: self.out_of_order - o.out_of_order,
        }
    }
}

/// How one arrival was classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The next number, or one past a gap.
    InOrder,
    /// A first copy, after a later number.
    Late,
    /// A number already received.
    Duplicate,
}

/// One sender's sequence state.
#[derive(Debug, Clone)]
pub struct Sequence {
    /// What was received from this sender.
    pub counts: Counts,
    run: u64,
    baseline: u64,
    highest: u64,
    missing: BTreeSet<u64>,
}

impl Sequence {
    /// Starts at the first number seen (the baseline).
    pub fn new(run: u64, seq: u64) -> Sequence {
        Sequence {
            counts: Counts {
                received: 1,
                ..Counts::default()
            },
            run,
            baseline: seq,
            highest: seq,
            missing: BTreeSet::new(),
        }
    }

    /// Classifies `seq` and updates `counts`.
    pub fn observe(&mut self, seq: u64, counts: &mut Counts) -> Arrival {
        if seq > self.highest {
            let gap = seq - self.highest - 1;
            counts.lost += gap;
            let from = (self.highest + 1).max(seq.saturating_sub(MAX_MISSING as u64));
            self.missing.extend(from..seq);
            while self.missing.len() > MAX_MISSING {
                self.missing.pop_first();
            }
            self.highest = seq;
            counts.received += 1;
            return Arrival::InOrder;
        }
        if self.missing.remove(&seq) {
            counts.lost -= 1;
            counts.received += 1;
            counts.out_of_order += 1;
            return Arrival::Late;
        }
        if seq < self.baseline {
            // Sent before the first one we saw: new to us, never counted lost.
            self.baseline = seq;
            counts.received += 1;
            counts.out_of_order += 1;
            return Arrival::Late;
        }
        counts.duplicated += 1;
        Arrival::Duplicate
    }
}

/// Everything received, per sender and in total.
#[derive(Debug, Default)]
pub struct Receiver {
    senders: HashMap<String, Sequence>,
    counts: Counts,
    latency: Histogram,
    overlap_until: Option<Instant>,
}

impl Receiver {
    /// Records a message received at `received_us` (µs since the epoch).
    pub fn observe(&mut self, header: &Header, received_us: u64, now: Instant) -> Arrival {
        let mut counts = self.counts;
        let arrival = match self.senders.get_mut(&header.id) {
            Some(sequence) if sequence.run == header.run => {
                let mut own = sequence.counts;
                let arrival = sequence.observe(header.seq, &mut own);
                let before = std::mem::replace(&mut sequence.counts, own);
                counts = counts.plus(own).minus(before);
                arrival
            }
            // From a previous run of a restarted sender: a straggler, ignored.
            Some(sequence) if sequence.run > header.run => return Arrival::Late,
            // A new sender, or a new run: the baseline.
            _ => {
                let sequence = Sequence::new(header.run, header.seq);
                self.senders.insert(header.id.clone(), sequence);
                counts.received += 1;
                Arrival::InOrder
            }
        };
        let overlapping = self.overlap_until.is_some_and(|until| now < until);
        if arrival == Arrival::Duplicate && overlapping {
            counts.duplicated -= 1;
            if let Some(sequence) = self.senders.get_mut(&header.id) {
                sequence.counts.duplicated -= 1;
            }
        }
        if arrival != Arrival::Duplicate {
            self.latency
                .record(received_us.saturating_sub(header.sent_us));
        }
        self.counts = counts;
        arrival
    }

    /// Repeats until `until` are expected (two subscriptions during a move).
    pub fn overlap_until(&mut self, until: Instant) {
        self.overlap_until = Some(until);
    }

    /// The totals.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// What was received from each sender.
    pub fn by_sender(
        &self,
    ) -> std::collections::BTreeMap<String, geolb_proto::client::SenderCounts> {
        self.senders
            .iter()
            .map(|(id, s)| {
                let c = s.counts;
                let counts = geolb_proto::client::SenderCounts {
                    received: c.received,
                    lost: c.lost,
                    duplicated: c.duplicated,
                };
                (id.clone(), counts)
            })
            .collect()
    }

    /// Senders heard from.
    pub fn senders(&self) -> usize {
        self.senders.len()
    }

    /// The report's traffic section.
    pub fn traffic(&self, sent: u64) -> Traffic {
        Traffic {
            sent,
            received: self.counts.received,
            lost: self.counts.lost,
            duplicated: self.counts.duplicated,
            out_of_order: self.counts.out_of_order,
            latency_ms: self.latency.percentiles(),
        }
    }
}

#[cfg(test)]
#[path = "tracker_tests.rs"]
mod tests;
