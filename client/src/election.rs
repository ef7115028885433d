//! The `rtt` election, as pure functions of the probe table's view.
//!
//! - A candidate is **eligible** when it is healthy (its probe connection is
//!   up, its last PING was answered in time, it has not announced lame-duck
//!   mode) and has at least `min_samples` samples younger than the election
//!   window.
//! - The **best** eligible candidate has the lowest RTT (each candidate's
//!   RTT is the lowest sample of its rolling window, see [`crate::table`]);
//!   candidates within max(5 %, 0.1 ms) of the lowest are a tie, won by the
//!   client's own region, then by the lower RTT.
//! - The current server that is lost, down, unresponsive or draining is left
//!   **at once** for the best other candidate, preferring candidates that
//!   answered a probe within their `recent` (twice their probe interval): when a whole region is cut, its other
//!   servers have not timed out yet either, and moving to one would only
//!   wait out a connect timeout. Once elected, the other candidates are
//!   probed only every `--probe-idle-interval`, so a server that went
//!   *silent* is left only after a burst of probes to every candidate has
//!   told who answers now ([`burst_settled`]); the driver then counts as
//!   recent only the candidates that answered the burst. With no other candidate, a
//!   lost connection is dropped, but a draining or silent one is kept (it
//!   may still deliver, or come back).
//! - A healthy current server is left for a better one only when some
//!   candidate beats it by max(`hysteresis_pct` %, `hysteresis_min`)
//!   **continuously** for `hold`, by the lowest of at least `min_samples`
//!   samples of the last `hold` (a candidate probed only every idle
//!   interval may look better on old samples: the driver has it probed
//!   fast while it reviews it, [`seems_better`]).

use geolb_proto::client::MoveReason;
use std::time::{Duration, Instant};

/// A candidate's health as its probe sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Answers in time, not draining.
    Healthy,
    /// Its last PING went unanswered past the timeout.
    Unresponsive,
    /// It announced lame-duck mode.
    Draining,
    /// No probe connection.
    Down,
}

/// One candidate as the election sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    /// In the client's own region.
    pub own_region: bool,
    /// RTT (ms): the lowest sample of the rolling window, if any.
    pub rtt_ms: Option<f64>,
    /// Samples within the election window.
    pub fresh: u32,
    /// Health.
    pub health: Health,
    /// How long ago its last probe was answered (none: never).
    pub answered_ago: Option<Duration>,
    /// A failover prefers it when it answered within this (twice the
    /// interval it is probed at).
    pub recent: Duration,
    /// Its samples of the last `hold`.
    pub held: u32,
    /// The lowest of them (ms).
    pub held_rtt_ms: Option<f64>,
}

/// The election's parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Fresh samples needed to be eligible.
    pub min_samples: u32,
    /// Relative margin a better server needs (percent of the current RTT).
    pub hysteresis_pct: f64,
    /// Absolute margin a better server needs (ms).
    pub hysteresis_min_ms: f64,
    /// How long the margin must hold.
    pub hold: Duration,
}

/// What the driver should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Keep the current server (or keep waiting when there is none).
    Stay,
    /// Connect to `to` (from nothing, or away from the current server).
    Move {
        /// Candidate index.
        to: usize,
        /// Why (`Initial` when there was no current server).
        reason: MoveReason,
    },
    /// Drop the current server: its connection is lost and nothing else is eligible.
    Leave {
        /// Why.
        reason: MoveReason,
    },
}

/// The current server, as the driver knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Current {
    /// Candidate index.
    pub index: usize,
    /// Set when the data-plane connection itself reported a failure
    /// (disconnected: `Lost`; lame-duck notice: `LameDuck`).
    pub failed: Option<MoveReason>,
}

/// The longest a burst of probes is waited for.
pub const BURST_MAX: Duration = Duration::from_millis(500);
/// What a candidate gets to answer a burst beyond twice its RTT.
pub const BURST_SLACK: Duration = Duration::from_millis(20);

/// Whether a burst of probes sent `elapsed` ago (to every candidate but
/// `current`, which went silent) has told enough: every healthy candidate
/// answered, or had twice its RTT + [`BURST_SLACK`] to answer, or
/// is slower than one that answered; at most [`BURST_MAX`].
pub fn burst_settled(views: &[View], current: usize, elapsed: Duration) -> bool {
    let answered = |v: &View| v.answered_ago.is_some_and(|ago| ago <= elapsed);
    let others: Vec<&View> = views
        .iter()
        .enumerate()
        .filter(|(i, v)| *i != current && v.health == Health::Healthy)
        .map(|(_, v)| v)
        .collect();
    let best_answered = others
        .iter()
        .filter(|v| answered(v))
        .filter_map(|v| v.rtt_ms)
        .reduce(f64::min);
    let had_its_chance = |v: &View| {
        let chance = v.rtt_ms.map_or(BURST_MAX, |ms| {
            Duration::from_secs_f64(ms * 2.0 / 1000.0) + BURST_SLACK
        });
        elapsed >= chance.min(BURST_MAX)
    };
    let slower = |v: &View| matches!((v.rtt_ms, best_answered), (Some(r), Some(b)) if r >= b);
    elapsed >= BURST_MAX
        || others
            .iter()
            .all(|v| answered(v) || had_its_chance(v) || slower(v))
}

/// Whether `view` may be elected.
pub fn eligible(view: &View, policy: &Policy) -> bool {
    view.health == Health::Healthy && view.rtt_ms.is_some() && view.fresh >= policy.min_samples
}

/// The best eligible candidate not in `skip`.
pub fn best(views: &[View], policy: &Policy, skip: &[usize]) -> Option<usize> {
    let pool: Vec<(usize, f64, bool)> = views
        .iter()
        .enumerate()
        .filter(|(i, v)| !skip.contains(i) && eligible(v, policy))
        .filter_map(|(i, v)| v.rtt_ms.map(|rtt| (i, rtt, v.own_region)))
        .collect();
    let lowest = pool.iter().map(|(_, rtt, _)| *rtt).reduce(f64::min)?;
    pool.into_iter()
        .filter(|(_, rtt, _)| ties(*rtt, lowest))
        .min_by(|a, b| b.2.cmp(&a.2).then(a.1.total_cmp(&b.1)))
        .map(|(i, _, _)| i)
}

/// Whether `rtt_ms` is as good as `lowest_ms`: within max(5 %, 0.1 ms).
pub fn ties(rtt_ms: f64, lowest_ms: f64) -> bool {
    rtt_ms <= lowest_ms + (lowest_ms * 0.05).max(0.1)
}

/// Whether `rtt_ms` beats `current_ms` past the hysteresis margin.
pub fn clearly_better(rtt_ms: f64, current_ms: f64, policy: &Policy) -> bool {
    let margin = (current_ms * policy.hysteresis_pct / 100.0).max(policy.hysteresis_min_ms);
    rtt_ms < current_ms - margin
}

/// The candidate that beats `current` past the hysteresis on its whole
/// rolling window (which, probed every idle interval, may be old): the one
/// to probe fast until its samples of the hold confirm or refute it.
pub fn seems_better(
    views: &[View],
    current: usize,
    policy: &Policy,
    skip: &[usize],
) -> Option<usize> {
    let challenger = best(views, policy, skip).filter(|&b| b != current)?;
    let (theirs, ours) = (views[challenger].rtt_ms?, views[current].rtt_ms?);
    clearly_better(theirs, ours, policy).then_some(challenger)
}

/// Why the current server must be left now, if it must.
pub fn must_leave(current: &Current, view: &View) -> Option<MoveReason> {
    current.failed.or(match view.health {
        Health::Healthy => None,
        Health::Unresponsive => Some(MoveReason::Unresponsive),
        Health::Draining => Some(MoveReason::LameDuck),
        Health::Down => Some(MoveReason::Lost),
    })
}

/// Decides at `now`. `better_since` is the hysteresis timer the caller keeps
/// between calls; `skip` lists candidates the data plane just failed to reach.
pub fn decide(
    views: &[View],
    current: Option<Current>,
    policy: &Policy,
    better_since: &mut Option<Instant>,
    skip: &[usize],
    now: Instant,
) -> Decision {
    let Some(current) = current else {
        *better_since = None;
        return match best(views, policy, skip) {
            Some(to) => Decision::Move {
                to,
                reason: MoveReason::Initial,
            },
            None => Decision::Stay,
        };
    };
    let here = &views[current.index];
    if let Some(reason) = must_leave(&current, here) {
        *better_since = None;
        let mut skip = skip.to_vec();
        skip.push(current.index);
        let stale = views
            .iter()
            .enumerate()
            .filter(|(_, v)| v.answered_ago.is_none_or(|ago| ago > v.recent))
            .map(|(i, _)| i);
        let fresh_only: Vec<usize> = skip.iter().copied().chain(stale).collect();
        let target = best(views, policy, &fresh_only).or_else(|| best(views, policy, &skip));
        return match (target, current.failed) {
            (Some(to), _) => Decision::Move { to, reason },
            (None, Some(MoveReason::Lost)) => Decision::Leave { reason },
            // Nowhere to go: a draining or silent server may still deliver.
            (None, _) => Decision::Stay,
        };
    }
    let challenger = best(views, policy, skip).filter(|&b| b != current.index);
    let held = challenger
        .map(|b| &views[b])
        .filter(|v| v.held >= policy.min_samples)
        .and_then(|v| v.held_rtt_ms);
    let winning = match (held, here.rtt_ms) {
        (Some(theirs), Some(ours)) => clearly_better(theirs, ours, policy),
        _ => false,
    };
    match (winning, challenger) {
        (true, Some(to)) => {
            let since = *better_since.get_or_insert(now);
            match now.saturating_duration_since(since) >= policy.hold {
                true => {
                    *better_since = None;
                    Decision::Move {
                        to,
                        reason: MoveReason::Better,
                    }
                }
                false => Decision::Stay,
            }
        }
        _ => {
            *better_since = None;
            Decision::Stay
        }
    }
}

#[cfg(test)]
#[path = "election_tests.rs"]
mod tests;
