//! The archiver's connection to the control plane: its own inbox prefix
//! ([`INBOX_PREFIX`], so the `archiver` identity subscribes to its own
//! replies only), and the server's permission violations kept, so that a
//! JetStream request that times out because the identity may not make it is
//! reported as what it is.

use crate::control::{Control, ControlError};
use async_nats::{Event, ServerError};
use geolb_proto::connect::ControlArgs;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Inbox prefix of the archiver's connection.
pub const INBOX_PREFIX: &str = "_INBOX.archiver";

/// The permission violations the server reported on this connection.
#[derive(Debug, Clone, Default)]
pub struct Violations(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    last: Mutex<Option<String>>,
    count: AtomicU64,
    notify: Notify,
}

impl Violations {
    /// The last one, if any (`Permissions Violation for Publish to "..."`).
    pub fn last(&self) -> Option<String> {
        self.0
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many so far.
    pub fn count(&self) -> u64 {
        self.0.count.load(Ordering::SeqCst)
    }

    /// Resolves with the next violation after the `seen`-th.
    pub async fn after(&self, seen: u64) -> String {
        loop {
            let notified = self.0.notify.notified();
            if self.count() > seen {
                return self.last().unwrap_or_default();
            }
            notified.await;
        }
    }

    fn record(&self, text: String) {
        *self.0.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
        self.0.count.fetch_add(1, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }
}

/// `fut`, or the text of a permission violation reported while it runs
/// (the server answers a forbidden request with nothing: it would time out).
pub async fn unless_refused<T>(
    violations: Option<&Violations>,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, String> {
    let Some(violations) = violations else {
        return Ok(fut.await);
    };
    let seen = violations.count();
    tokio::select! {
        out = fut => Ok(out),
        text = violations.after(seen) => Err(text),
    }
}

/// Connects like the coordinator does, with the archiver's inbox prefix.
pub async fn connect(args: &ControlArgs) -> Result<(Control, Violations), ControlError> {
    let violations = Violations::default();
    let seen = violations.clone();
    let control = Control::connect_with(args, move |options| {
        options
            .custom_inbox_prefix(INBOX_PREFIX)
            .event_callback(move |event| {
                let seen = seen.clone();
                async move {
                    match event {
                        Event::ServerError(ServerError::Other(text))
                            if text.to_ascii_lowercase().contains("permissions violation") =>
                        {
                            tracing::debug!(%text, "The control plane refused a request.");
                            seen.record(text.trim_matches('\'').to_string());
                        }
                        Event::Disconnected => {
                            tracing::warn!("Lost the control plane; reconnecting.")
                        }
                        Event::Connected => tracing::info!("Connected to the control plane."),
                        _ => {}
                    }
                }
            })
    })
    .await?;
    Ok((control, violations))
}
