//! Following a container: on each engine event about it, and on a timer in
//! case one was missed, it is inspected, and what changed becomes the same
//! events a process gives; the snapshot and the events go out from here.

use super::ops::{failed, Shared, State};
use super::state::{self, Intent, Seen};
use futures::StreamExt;
use geolb_engine::EngineError;
use geolb_proto::{EventKind, ReplyError};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Pause before the engine's event stream is opened again.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

impl Shared {
    /// Inspects the container on each engine event about it, and every
    /// `every` in case one was missed (the event stream reconnects), until
    /// `token` is cancelled.
    pub(super) async fn watch(self: Arc<Self>, every: Duration, token: CancellationToken) {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut events = self.engine.container_events(self.name());
        loop {
            tokio::select! {
                biased;
                _ = token.cancelled() => return,
                event = events.next() => match event {
                    Some(Ok(action)) => debug!(container = %self.name(), action, "Engine event."),
                    Some(Err(e)) => debug!(error = %e, "Engine event stream failed."),
                    None => {
                        debug!("Engine event stream ended; reconnecting.");
                        tokio::time::sleep(RECONNECT_EVERY).await;
                        events = self.engine.container_events(self.name());
                    }
                },
                _ = ticker.tick() => {}
            }
            let _ = self.observe().await;
        }
    }

    /// Inspects the container, records what changed, publishes the snapshot
    /// and emits the events of the change. An engine that does not answer
    /// leaves the last state in place.
    pub(super) async fn observe(&self) -> Result<Seen, ReplyError> {
        let _one_at_a_time = self.observing.lock().await;
        let now = match self.engine.container(self.name()).await {
            Ok(found) => Some(found),
            Err(EngineError::NoSuchContainer { .. }) => None,
            Err(e) => {
                let mut state = self.lock();
                if !std::mem::replace(&mut state.engine_failing, true) {
                    warn!(container = %self.name(), error = %e, "Cannot inspect the container.");
                }
                return Err(failed(format!(
                    "cannot inspect container {}: {e}",
                    self.name()
                )));
            }
        };
        let events = {
            let mut state = self.lock();
            if std::mem::replace(&mut state.engine_failing, false) {
                info!(container = %self.name(), "The Docker engine answers again.");
            }
            let replacing = state
                .op
                .as_ref()
                .is_some_and(|(name, _)| *name == "replace");
            if now.is_none() && state.seen.is_some() && !replacing {
                warn!(container = %self.name(), "The container is gone (removed?).");
            }
            let events = state::changes(&state.seen, &now);
            let running = now.as_ref().is_some_and(|c| c.running);
            if running && state.intent == Intent::Stopped {
                // Started by someone else (`docker start`): follow it again.
                state.intent = Intent::Follow;
            }
            if let Some(found) = &now {
                state.image.clone_from(&found.image);
            }
            state.seen = now.clone();
            self.publish_locked(&state);
            events
        };
        for event in events {
            self.log_change(&event);
            self.emit(event);
        }
        Ok(now)
    }

    fn log_change(&self, event: &EventKind) {
        let name = self.name();
        match event {
            EventKind::Started { pid, program, .. } => {
                info!(container = %name, pid, image = %program, "Container started.")
            }
            EventKind::Exited { code, .. } => info!(container = %name, code, "Container exited."),
            EventKind::Restarting { attempt, .. } => {
                info!(container = %name, attempt, "Docker's restart policy restarts the container.")
            }
            EventKind::Paused { .. } => info!(container = %name, "Container paused."),
            EventKind::Resumed { .. } => info!(container = %name, "Container resumed."),
            _ => {}
        }
    }

    /// Publishes the snapshot from `state`.
    pub(super) fn publish_locked(&self, state: &State) {
        let flap = state.flap.as_ref().map(|f| f.status.clone());
        let now = state::snapshot(&state.seen, state.intent, flap, &state.image);
        self.snapshot.send_if_modified(|current| {
            let changed = *current != now;
            if changed {
                *current = now;
            }
            changed
        });
    }

    /// Records what a command makes of the container and publishes it.
    pub(super) fn set_intent(&self, intent: Intent) {
        let mut state = self.lock();
        state.intent = intent;
        self.publish_locked(&state);
    }

    /// Sends an event; a full or closed channel drops it.
    pub(super) fn emit(&self, event: EventKind) {
        if let Err(err) = self.events.try_send(event) {
            debug!(%err, "Dropped a container event.");
        }
    }
}
