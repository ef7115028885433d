//! Flaps of a container: a task walks the process mode's timeline
//! ([`crate::supervisor::flap::Flap`]) and takes the container down (`docker
//! pause`, `docker stop`, `docker kill`) and up (`unpause`, `start`).

use super::ops::Shared;
use super::state::Intent;
use crate::supervisor::flap::{Flap, Step};
use crate::supervisor::FlapPlan;
use geolb_proto::{ErrorKind, EventKind, FlapMode, FlapStatus, ReplyError, StopMode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// A flap in progress, as the shared state holds it.
pub(super) struct FlapSlot {
    /// Shown in snapshots.
    pub(super) status: FlapStatus,
    /// Cancelled to end it early.
    end: CancellationToken,
    /// Whether an early end brings the container up (cancel, start) or
    /// leaves it to the command that takes over (stop, restart, upgrade).
    bring_up: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Shared {
    /// Begins a flap of the running container.
    pub(super) async fn flap(self: &Arc<Self>, plan: FlapPlan) -> Result<(), ReplyError> {
        let _op = self.claim("flap")?;
        if self.lock().flap.is_some() {
            return Err(ReplyError::new(
                ErrorKind::Conflict,
                "a flap is already in progress; cancel it first (flap with cancel)",
            ));
        }
        if plan.cycles == 0 {
            return Err(ReplyError::new(
                ErrorKind::InvalidArgument,
                "cycles must be at least 1",
            ));
        }
        let seen = self.observe().await?;
        if !seen.is_some_and(|c| c.running && !c.paused) {
            return Err(ReplyError::new(
                ErrorKind::Conflict,
                "nothing is running; start it first",
            ));
        }
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        info!(container = %self.name(), mode = ?plan.mode, cycles = plan.cycles, down_ms = millis(plan.down), up_ms = millis(plan.up), "Flap began.");
        self.emit(EventKind::FlapBegan {
            mode: plan.mode,
            cycles: plan.cycles,
            down_ms: millis(plan.down),
            up_ms: millis(plan.up),
        });
        let flap = Flap::begin(plan, vec![0], Instant::now());
        // As with a process, the reply shows the first down phase begun: a
        // pause is quick and done here; a stop runs in the flap's task.
        match plan.mode {
            FlapMode::Pause => self.flap_down(plan, flap.stop_grace()).await,
            FlapMode::Stop => self.set_intent(Intent::Stopping(StopMode::Term)),
            FlapMode::Kill => self.set_intent(Intent::Stopping(StopMode::Kill)),
        }
        let status = flap.status();
        let end = CancellationToken::new();
        let bring_up = Arc::new(AtomicBool::new(true));
        let mut state = self.lock();
        let task = tokio::spawn(self.clone().run_flap(flap, end.clone(), bring_up.clone()));
        state.flap = Some(FlapSlot {
            status,
            end,
            bring_up,
            task,
        });
        self.publish_locked(&state);
        Ok(())
    }

    /// `flap` with `cancel`: ends it with the container up.
    pub(super) async fn cancel_flap(self: &Arc<Self>) -> Result<(), ReplyError> {
        match self.end_flap(true).await {
            true => Ok(()),
            false => Err(ReplyError::new(
                ErrorKind::Conflict,
                "no flap is in progress",
            )),
        }
    }

    /// Ends a flap early, the container up or not; false when none ran.
    /// Returns once the flap task is done (and `flap_ended` emitted).
    pub(super) async fn end_flap(&self, bring_up: bool) -> bool {
        let slot = {
            let mut state = self.lock();
            let Some(slot) = state.flap.take() else {
                return false;
            };
            slot.bring_up.store(bring_up, Ordering::SeqCst);
            slot.end.cancel();
            self.publish_locked(&state);
            slot
        };
        let _ = slot.task.await;
        true
    }

    async fn run_flap(
        self: Arc<Self>,
        mut flap: Flap,
        end: CancellationToken,
        bring_up: Arc<AtomicBool>,
    ) {
        let plan = flap.plan();
        if plan.mode != FlapMode::Pause {
            self.flap_down(plan, flap.stop_grace()).await;
        }
        let cancelled = loop {
            tokio::select! {
                biased;
                _ = end.cancelled() => break true,
                _ = tokio::time::sleep_until(flap.deadline()) => {}
            }
            match flap.advance(Instant::now()) {
                Some(Step::Up) => self.flap_up(plan).await,
                Some(Step::Down) => self.flap_down(plan, flap.stop_grace()).await,
                Some(Step::End { .. }) => {
                    let mut state = self.lock();
                    if end.is_cancelled() {
                        break true;
                    }
                    state.flap = None;
                    self.publish_locked(&state);
                    break false;
                }
                None => {}
            }
            let mut state = self.lock();
            if let Some(slot) = state.flap.as_mut().filter(|_| !end.is_cancelled()) {
                slot.status = flap.status();
                self.publish_locked(&state);
            }
        };
        if cancelled && bring_up.load(Ordering::SeqCst) {
            self.flap_up(plan).await;
        }
        let cycles_done = flap.cycles_done();
        info!(container = %self.name(), cycles_done, cancelled, "Flap ended.");
        self.emit(EventKind::FlapEnded {
            cycles_done,
            cancelled,
        });
    }

    async fn flap_down(&self, plan: FlapPlan, grace: Duration) {
        info!(container = %self.name(), mode = ?plan.mode, "Flap: taking the container down.");
        let never = CancellationToken::new();
        let result = match plan.mode {
            FlapMode::Pause => match self.engine.pause(self.name()).await {
                Ok(()) => self.observe().await.map(drop),
                Err(e) => Err(ReplyError::new(ErrorKind::Failed, e.to_string())),
            },
            FlapMode::Stop => self.bring_down(StopMode::Term, Some(grace), &never).await,
            FlapMode::Kill => self.bring_down(StopMode::Kill, None, &never).await,
        };
        if let Err(e) = result {
            warn!(container = %self.name(), error = %e, "Flap: could not take the container down.");
        }
    }

    /// Brings the container up, whatever took it down.
    async fn flap_up(&self, plan: FlapPlan) {
        info!(container = %self.name(), mode = ?plan.mode, "Flap: bringing the container up.");
        let result = match self.observe().await {
            Ok(Some(c)) if c.paused => match self.engine.unpause(self.name()).await {
                Ok(()) => self.observe().await.map(drop),
                Err(e) => Err(ReplyError::new(ErrorKind::Failed, e.to_string())),
            },
            Ok(Some(c)) if c.running => Ok(()),
            Ok(_) => self.start_now().await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            warn!(container = %self.name(), error = %e, "Flap: could not bring the container up.");
        }
    }
}
