//! The flap timeline as a small state machine, free of processes and I/O.
//!
//! A flap of `cycles` cycles runs `down, up, down, up, ...`: each cycle is a
//! down phase of `down` followed by an up phase of `up`. It ends when the
//! last cycle's up phase has lasted `up`, with the child up, so a flap takes
//! `cycles * (down + up)`. Cancelling leaves the child up; the cycles done
//! are those whose up phase began.

use super::FlapPlan;
use geolb_proto::{FlapPhase, FlapStatus};
use std::time::Duration;
use tokio::time::Instant;

/// Longest wait between SIGTERM and SIGKILL in a `stop` flap's down phase.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// What the actor must do when a phase deadline passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Take the targets down.
    Down,
    /// Bring the targets up.
    Up,
    /// The flap is over; the targets are up.
    End {
        /// Cycles completed.
        cycles_done: u32,
    },
}

/// A flap in progress.
#[derive(Debug, Clone)]
pub(crate) struct Flap {
    plan: FlapPlan,
    cycle: u32,
    phase: FlapPhase,
    deadline: Instant,
    /// The replicas being flapped.
    pub(super) targets: Vec<u32>,
}

impl Flap {
    /// Begins in cycle 1's down phase; the caller takes the targets down.
    pub(crate) fn begin(plan: FlapPlan, targets: Vec<u32>, now: Instant) -> Flap {
        Flap {
            plan,
            cycle: 1,
            phase: FlapPhase::Down,
            deadline: now + plan.down,
            targets,
        }
    }

    /// The plan.
    pub(crate) fn plan(&self) -> FlapPlan {
        self.plan
    }

    /// When the current phase ends.
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Moves to the next phase once the deadline passed; `None` before.
    pub(crate) fn advance(&mut self, now: Instant) -> Option<Step> {
        if now < self.deadline {
            return None;
        }
        match self.phase {
            FlapPhase::Down => {
                self.phase = FlapPhase::Up;
                self.deadline = now + self.plan.up;
                Some(Step::Up)
            }
            FlapPhase::Up if self.cycle >= self.plan.cycles => Some(Step::End {
                cycles_done: self.cycle,
            }),
            FlapPhase::Up => {
                self.cycle += 1;
                self.phase = FlapPhase::Down;
                self.deadline = now + self.plan.down;
                Some(Step::Down)
            }
        }
    }

    /// Cycles done if the flap is cancelled now.
    pub(crate) fn cycles_done(&self) -> u32 {
        match self.phase {
            FlapPhase::Down => self.cycle - 1,
            FlapPhase::Up => self.cycle,
        }
    }

    /// SIGTERM-to-SIGKILL grace in a `stop` flap: 2 s, or less if the down
    /// phase is shorter.
    pub(crate) fn stop_grace(&self) -> Duration {
        STOP_GRACE.min(self.plan.down)
    }

    /// The status shown in snapshots.
    pub(crate) fn status(&self) -> FlapStatus {
        FlapStatus {
            mode: self.plan.mode,
            cycle: self.cycle,
            cycles: self.plan.cycles,
            phase: self.phase,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geolb_proto::FlapMode;

    fn plan(cycles: u32) -> FlapPlan {
        FlapPlan {
            mode: FlapMode::Pause,
            down: Duration::from_millis(100),
            up: Duration::from_millis(300),
            cycles,
        }
    }

    /// Drives a flap deadline by deadline and records the steps.
    fn run(cycles: u32) -> Vec<(u64, Step, u32, FlapPhase)> {
        let start = Instant::now();
        let mut flap = Flap::begin(plan(cycles), vec![0], start);
        let mut steps = Vec::new();
        for _ in 0..100 {
            let now = flap.deadline();
            let Some(step) = flap.advance(now) else { break };
            let at = (now - start).as_millis() as u64;
            let status = flap.status();
            steps.push((at, step, status.cycle, status.phase));
            if matches!(step, Step::End { .. }) {
                break;
            }
        }
        steps
    }

    #[test]
    fn runs_down_up_cycles_then_ends_up() {
        use FlapPhase::{Down, Up};
        assert_eq!(
            run(1),
            [
                (100, Step::Up, 1, Up),
                (400, Step::End { cycles_done: 1 }, 1, Up)
            ]
        );
        assert_eq!(
            run(2),
            [
                (100, Step::Up, 1, Up),
                (400, Step::Down, 2, Down),
                (500, Step::Up, 2, Up),
                (800, Step::End { cycles_done: 2 }, 2, Up),
            ]
        );
        assert_eq!(run(3).len(), 6);
    }

    #[test]
    fn waits_for_the_deadline() {
        let start = Instant::now();
        let mut flap = Flap::begin(plan(2), vec![0], start);
        assert_eq!(flap.advance(start), None);
        assert_eq!(flap.advance(start + Duration::from_millis(99)), None);
        assert_eq!(flap.status().phase, FlapPhase::Down);
        assert_eq!(
            flap.advance(start + Duration::from_millis(150)),
            Some(Step::Up)
        );
        assert_eq!(flap.deadline(), start + Duration::from_millis(450));
    }

    #[test]
    fn counts_cycles_done_on_cancel() {
        let start = Instant::now();
        let mut flap = Flap::begin(plan(3), vec![0], start);
        let mut seen = vec![flap.cycles_done()];
        while let Some(step) = flap.advance(flap.deadline()) {
            if matches!(step, Step::End { .. }) {
                break;
            }
            seen.push(flap.cycles_done());
        }
        assert_eq!(seen, [0, 1, 1, 2, 2, 3]);
    }

    #[test]
    fn stop_grace_is_capped_by_the_down_phase() {
        let now = Instant::now();
        let short = Flap::begin(plan(1), vec![0], now);
        assert_eq!(short.stop_grace(), Duration::from_millis(100));
        let long = FlapPlan {
            down: Duration::from_secs(10),
            ..plan(1)
        };
        assert_eq!(
            Flap::begin(long, vec![0], now).stop_grace(),
            Duration::from_secs(2)
        );
    }
}
