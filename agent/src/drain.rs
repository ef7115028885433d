//! The lame-duck drain policy, written once for processes (the
//! [`supervisor`](crate::supervisor)) and containers (`container`).
//!
//! A drain sends SIGUSR2 (nats-server's lame-duck mode), then SIGINT as
//! soon as the drain probe says the clients have left or the grace is
//! over, then SIGKILL [`INTERRUPT_GRACE`] after the SIGINT, or at once when
//! a stop with mode kill escalates. [`Drain::step`] is that policy as a pure
//! function: the drain's state, the time and what was observed in, the next
//! action and the next state out. The callers send the signals.

use std::time::Duration;
use tokio::time::Instant;

/// After a drain's SIGINT, how long before SIGKILL.
pub const INTERRUPT_GRACE: Duration = Duration::from_secs(5);

/// Where one drain is (SIGUSR2 already sent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drain {
    /// When the grace is over and SIGINT follows.
    deadline: Instant,
    /// When SIGINT was sent, once it was.
    interrupted: Option<Instant>,
    /// Whether SIGKILL was sent.
    killed: bool,
}

/// What the caller saw since the last step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// The drain probe said the server has no clients left.
    pub drained: bool,
    /// A stop with mode kill interrupts the drain.
    pub escalated: bool,
}

/// What to do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing yet.
    Wait,
    /// Send SIGINT: lame-duck mode ends, the server shuts down.
    Interrupt(Why),
    /// Send SIGKILL.
    Kill,
}

/// Why a drain is interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// The probe said the clients have left.
    Drained,
    /// The grace ran out.
    GraceOver,
}

impl Drain {
    /// A drain that began at `now` with `grace` to empty the server.
    pub fn new(now: Instant, grace: Duration) -> Drain {
        Drain {
            deadline: now + grace,
            interrupted: None,
            killed: false,
        }
    }

    /// The next action and the drain after it.
    pub fn step(self, now: Instant, seen: Observed) -> (Drain, Action) {
        if self.killed {
            return (self, Action::Wait);
        }
        let overdue = self
            .interrupted
            .is_some_and(|at| now >= at + INTERRUPT_GRACE);
        if seen.escalated || overdue {
            return (
                Drain {
                    killed: true,
                    ..self
                },
                Action::Kill,
            );
        }
        if self.interrupted.is_none() {
            let why = if now >= self.deadline {
                Some(Why::GraceOver)
            } else if seen.drained {
                Some(Why::Drained)
            } else {
                None
            };
            if let Some(why) = why {
                let next = Drain {
                    interrupted: Some(now),
                    ..self
                };
                return (next, Action::Interrupt(why));
            }
        }
        (self, Action::Wait)
    }

    /// Whether the probe's answer would change anything: the server still
    /// drains within its grace.
    pub fn wants_probe(&self, now: Instant) -> bool {
        !self.killed && self.interrupted.is_none() && now < self.deadline
    }

    /// Whether SIGKILL was sent (nothing is left to do but wait).
    pub fn killed(&self) -> bool {
        self.killed
    }

    /// When [`Drain::step`] acts next with nothing new observed.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.killed, self.interrupted) {
            (true, _) => None,
            (false, Some(at)) => Some(at + INTERRUPT_GRACE),
            (false, None) => Some(self.deadline),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(30);
    const S: Duration = Duration::from_secs(1);

    /// The drain's state in a case: fresh, interrupted `n` s after the
    /// start, or killed.
    #[derive(Clone, Copy, Debug)]
    enum From {
        Fresh,
        InterruptedAt(u64),
        Killed,
    }

    #[test]
    fn each_state_time_and_observation_gives_one_action() {
        use Action::*;
        let quiet = Observed::default();
        let drained = Observed {
            drained: true,
            ..quiet
        };
        let escalated = Observed {
            escalated: true,
            ..quiet
        };
        // (state, seconds since the drain began, observed, action, deadline after, in s)
        let cases = [
            (From::Fresh, 0, quiet, Wait, Some(30)),
            (From::Fresh, 29, quiet, Wait, Some(30)),
            (From::Fresh, 30, quiet, Interrupt(Why::GraceOver), Some(35)),
            (From::Fresh, 40, quiet, Interrupt(Why::GraceOver), Some(45)),
            (From::Fresh, 3, drained, Interrupt(Why::Drained), Some(8)),
            (
                From::Fresh,
                30,
                drained,
                Interrupt(Why::GraceOver),
                Some(35),
            ),
            (From::Fresh, 3, escalated, Kill, None),
            (From::InterruptedAt(3), 4, quiet, Wait, Some(8)),
            (From::InterruptedAt(3), 4, drained, Wait, Some(8)),
            (From::InterruptedAt(3), 7, quiet, Wait, Some(8)),
            (From::InterruptedAt(3), 8, quiet, Kill, None),
            (From::InterruptedAt(30), 34, quiet, Wait, Some(35)),
            (From::InterruptedAt(30), 35, quiet, Kill, None),
            (From::InterruptedAt(3), 4, escalated, Kill, None),
            (From::Killed, 4, quiet, Wait, None),
            (From::Killed, 100, escalated, Wait, None),
            (From::Killed, 100, drained, Wait, None),
        ];
        let start = Instant::now();
        let at = |secs: u64| start + S * secs as u32;
        for (from, secs, seen, action, deadline) in cases {
            let fresh = Drain::new(start, GRACE);
            let drain = match from {
                From::Fresh => fresh,
                From::InterruptedAt(t) => fresh.step(at(t), drained).0,
                From::Killed => fresh.step(at(1), escalated).0,
            };
            let (next, got) = drain.step(at(secs), seen);
            let case = format!("{from:?} at {secs} s, {seen:?}");
            assert_eq!(got, action, "{case}");
            assert_eq!(next.next_deadline(), deadline.map(at), "{case}");
        }
    }

    #[test]
    fn the_probe_matters_only_while_the_server_drains_within_its_grace() {
        let start = Instant::now();
        let fresh = Drain::new(start, GRACE);
        assert!(fresh.wants_probe(start));
        assert!(fresh.wants_probe(start + S * 29));
        assert!(!fresh.wants_probe(start + GRACE));
        let drained = Observed {
            drained: true,
            escalated: false,
        };
        let (interrupted, _) = fresh.step(start + S, drained);
        assert!(!interrupted.wants_probe(start + S * 2));
    }
}
