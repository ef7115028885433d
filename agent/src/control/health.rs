//! Whether the control plane is reachable, and the alarm when it is not.
//!
//! The agent retries the control plane forever and keeps supervising
//! meanwhile, so a wrong URL, CA or credential would otherwise go unnoticed:
//! the child runs, its own health check passes, and the agent never shows up
//! in `geolb fleet ls`. [`Health`] follows the connection's events; once the
//! control plane has been away for `--control-alarm` (never reached, or lost),
//! [`watch`] tries one connection of its own to learn why (the retrying
//! client reports only "disconnected"), logs it as an ERROR naming the URL
//! and the reason ("tls: invalid peer certificate: UnknownIssuer"), and does
//! so again every [`REPEAT`] while it lasts. `/metrics` shows the same state
//! (`geolb_control_*`), and the agent's `/healthz` answers 503 until the
//! control plane has been reached and again once the alarm is raised.

use async_nats::Event;
use geolb_proto::connect::{Failure, Trust};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
// tokio's clock, so that paused-time tests and `sleep_until` agree with it.
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often the ERROR is repeated while the control plane stays away.
pub const REPEAT: Duration = Duration::from_secs(300);
/// `--control-alarm`'s default.
pub const DEFAULT_ALARM: Duration = Duration::from_secs(30);

/// The connection's state, shared by its event callback, [`watch`], `/metrics` and `/healthz`.
pub struct Health {
    url: String,
    alarm: Duration,
    trust: Trust,
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Debug)]
struct State {
    connected: bool,
    ever_connected: bool,
    /// When the connection last came or went (or the agent started).
    since: Instant,
    /// When [`watch`] next tries its own connection, while away.
    next_probe: Instant,
    alarmed: bool,
    failure: Option<Failure>,
}

/// What `/metrics` and `/healthz` show.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    /// The control-plane URL, without secrets.
    pub url: String,
    /// Connected now.
    pub connected: bool,
    /// Connected at least once since the agent started.
    pub ever_connected: bool,
    /// How long it has been away (zero while connected).
    pub away: Duration,
    /// Away longer than `--control-alarm`, and the ERROR logged.
    pub alarmed: bool,
    /// Why the last attempt of our own failed, while away.
    pub failure: Option<Failure>,
    /// The roots TLS trusts.
    pub trust: Trust,
}

impl Health {
    /// Not connected yet; `url` without secrets.
    pub fn new(url: String, alarm: Duration, trust: Trust) -> Health {
        let now = Instant::now();
        Health {
            url,
            alarm,
            trust,
            state: Mutex::new(State {
                connected: false,
                ever_connected: false,
                since: now,
                next_probe: now + alarm,
                alarmed: false,
                failure: None,
            }),
            changed: Notify::new(),
        }
    }

    /// Follows one event of the control-plane connection.
    pub fn event(&self, event: &Event) {
        let connected = match event {
            Event::Connected => true,
            Event::Disconnected | Event::Closed => false,
            _ => return,
        };
        let mut state = self.lock();
        if state.connected == connected {
            return;
        }
        let now = Instant::now();
        if connected && state.alarmed {
            tracing::info!(
                url = %self.url,
                away = %humantime::format_duration(round(now - state.since)),
                "Control plane reached again."
            );
        }
        state.connected = connected;
        state.ever_connected |= connected;
        state.since = now;
        state.next_probe = now + self.alarm;
        state.alarmed = false;
        state.failure = None;
        drop(state);
        self.changed.notify_one();
    }

    /// The state now.
    pub fn view(&self) -> View {
        let state = self.lock();
        View {
            url: self.url.clone(),
            connected: state.connected,
            ever_connected: state.ever_connected,
            away: match state.connected {
                true => Duration::ZERO,
                false => state.since.elapsed(),
            },
            alarmed: state.alarmed,
            failure: state.failure.clone(),
            trust: self.trust.clone(),
        }
    }

    /// When [`watch`] should try a connection of its own; `None` while connected.
    fn next_probe(&self) -> Option<Instant> {
        let state = self.lock();
        (!state.connected).then_some(state.next_probe)
    }

    /// Records what a connection of our own found: with a failure, raises
    /// the alarm (logs the ERROR); without, the control plane answers now
    /// and the client will be back shortly.
    fn probed(&self, failure: Option<Failure>) {
        let mut state = self.lock();
        if state.connected {
            return;
        }
        let now = Instant::now();
        let Some(failure) = failure else {
            state.next_probe = now + self.alarm;
            return;
        };
        let away = humantime::format_duration(round(now - state.since));
        tracing::error!(
            url = %self.url,
            away = %away,
            ever_connected = state.ever_connected,
            kind = %failure.kind,
            reason = %failure.reason,
            "Cannot reach the control plane; {}. Supervision goes on and the agent keeps retrying.",
            failure.kind.advice()
        );
        state.alarmed = true;
        state.failure = Some(failure);
        state.next_probe = now + REPEAT;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl View {
    /// The agent's `/healthz`: `Ok` (200) while connected, or briefly away
    /// after having been connected; `Err` (503) before the first connection
    /// and once the alarm is raised. The text says which, in one line.
    pub fn check(&self) -> Result<String, String> {
        let away = humantime::format_duration(round(self.away));
        let why = self
            .failure
            .as_ref()
            .map(|f| format!(": {f}; {}", f.kind.advice()))
            .unwrap_or_default();
        match (self.connected, self.ever_connected, self.alarmed) {
            (true, _, _) => Ok(format!("control plane {} connected", self.url)),
            (false, false, _) => Err(format!(
                "control plane {} not reached yet ({away}){why}",
                self.url
            )),
            (false, true, true) => Err(format!("control plane {} away for {away}{why}", self.url)),
            (false, true, false) => Ok(format!(
                "control plane {} away for {away}, reconnecting",
                self.url
            )),
        }
    }
}

/// Whole seconds (for messages).
fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

/// Raises the alarm when the control plane stays away: at each due time,
/// `probe` tries one connection and returns why it failed (`None`: it worked).
pub async fn watch<P, F>(health: Arc<Health>, probe: P, token: CancellationToken)
where
    P: Fn() -> F,
    F: Future<Output = Option<Failure>>,
{
    loop {
        let due = health.next_probe();
        tokio::select! {
            biased;
            _ = token.cancelled() => return,
            _ = health.changed.notified() => continue,
            _ = async {
                match due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
        let failure = tokio::select! {
            biased;
            _ = token.cancelled() => return,
            failure = probe() => failure,
        };
        health.probed(failure);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geolb_proto::connect::FailureKind;

    fn health(alarm: Duration) -> Arc<Health> {
        Arc::new(Health::new("tls://cp:4222".into(), alarm, Trust::default()))
    }

    fn untrusted() -> Failure {
        Failure {
            kind: FailureKind::Tls,
            reason: "invalid peer certificate: UnknownIssuer".into(),
        }
    }

    #[test]
    fn fails_the_check_until_first_connected_and_once_alarmed() {
        let h = health(Duration::from_secs(30));
        let err = h.view().check().unwrap_err();
        assert!(err.contains("tls://cp:4222 not reached yet"), "{err}");
        h.event(&Event::Connected);
        assert!(h.view().check().is_ok());
        h.event(&Event::Disconnected);
        let ok = h.view().check().unwrap();
        assert!(ok.contains("reconnecting"), "{ok}");
        h.probed(Some(untrusted()));
        let view = h.view();
        assert!(view.alarmed && !view.connected);
        let err = view.check().unwrap_err();
        assert!(
            err.contains("UnknownIssuer") && err.contains("--tls-ca"),
            "{err}"
        );
        h.event(&Event::Connected);
        let view = h.view();
        assert!(!view.alarmed && view.failure.is_none() && view.away.is_zero());
    }

    #[test]
    fn a_probe_that_connects_raises_no_alarm() {
        let h = health(Duration::from_secs(30));
        h.probed(None);
        assert!(!h.view().alarmed);
    }

    #[tokio::test(start_paused = true)]
    async fn probes_once_the_alarm_time_has_passed_and_again_later() {
        let h = health(Duration::from_secs(30));
        let probes = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let token = CancellationToken::new();
        let counted = probes.clone();
        let task = tokio::spawn(watch(
            h.clone(),
            move || {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { Some(untrusted()) }
            },
            token.clone(),
        ));
        let count = || probes.load(std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert_eq!(count(), 0);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(count(), 1);
        assert!(h.view().alarmed);
        tokio::time::sleep(REPEAT).await;
        assert_eq!(count(), 2);
        h.event(&Event::Connected);
        tokio::time::sleep(REPEAT * 2).await;
        assert_eq!(count(), 2, "no probe while connected");
        token.cancel();
        task.await.unwrap();
    }
}
