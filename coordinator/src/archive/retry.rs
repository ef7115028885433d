//! Retrying transient S3 failures: a capped exponential backoff with jitter,
//! each retry counted in the archiver's metrics.

use super::metrics::Metrics;
use super::store::StoreError;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Delays between attempts: `initial`, doubling up to `cap`, each with up to
/// a fifth of jitter either way.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    cap: Duration,
}

impl Backoff {
    /// The archiver's: 0.5 s doubling to 30 s.
    pub fn new() -> Backoff {
        Backoff::with(Duration::from_millis(500), Duration::from_secs(30))
    }

    /// Starting at `initial`, never above `cap`.
    pub fn with(initial: Duration, cap: Duration) -> Backoff {
        Backoff { next: initial, cap }
    }

    /// The next delay, without jitter (pure).
    pub fn next_base(&mut self) -> Duration {
        let now = self.next;
        self.next = (now * 2).min(self.cap);
        now
    }

    /// The next delay, jittered by up to ±20 %.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next_base();
        base.mul_f64(0.8 + 0.4 * fastrand::f64())
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

/// How far apart retries are (at most `max_delay`, 30 s by default) and
/// when they stop: never, at a fixed time, or a grace period after a
/// shutdown was asked for.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    token: CancellationToken,
    grace: Duration,
    fixed: Option<tokio::time::Instant>,
    since: Arc<Mutex<Option<tokio::time::Instant>>>,
    max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            token: CancellationToken::new(),
            grace: Duration::ZERO,
            fixed: None,
            since: Arc::default(),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Retry until it works or fails for good.
    pub fn forever() -> RetryPolicy {
        RetryPolicy::default()
    }

    /// Retry for `limit` from now.
    pub fn for_at_most(limit: Duration) -> RetryPolicy {
        RetryPolicy {
            fixed: Some(tokio::time::Instant::now() + limit),
            ..RetryPolicy::default()
        }
    }

    /// Retry until `grace` after `token` is cancelled.
    pub fn until_shutdown(token: CancellationToken, grace: Duration) -> RetryPolicy {
        RetryPolicy {
            token,
            grace,
            ..RetryPolicy::default()
        }
    }

    /// Waits at most `max_delay` between two attempts.
    pub fn with_max_delay(mut self, max_delay: Duration) -> RetryPolicy {
        self.max_delay = max_delay;
        self
    }

    /// The last moment a retry may start, if there is one yet.
    pub fn deadline(&self) -> Option<tokio::time::Instant> {
        if self.token.is_cancelled() {
            let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
            return Some(*since.get_or_insert_with(tokio::time::Instant::now) + self.grace);
        }
        self.fixed
    }

    /// Resolves when a shutdown is asked for (never for the other kinds).
    pub async fn cancelled(&self) {
        self.token.cancelled().await
    }
}

/// Runs `attempt` until it succeeds, fails for good, or `stop` says so
/// (then the last transient error is returned); every retry is counted.
pub async fn retry<T, F, Fut>(
    what: &str,
    metrics: &Metrics,
    stop: &RetryPolicy,
    mut attempt: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut backoff = Backoff::with(Duration::from_millis(500), stop.max_delay);
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(e) if !e.is_transient() => return Err(e),
            Err(e) => {
                let delay = backoff.next_delay();
                let now = tokio::time::Instant::now();
                if stop.deadline().is_some_and(|d| now + delay > d) {
                    return Err(e);
                }
                metrics.retried();
                tracing::warn!(what, error = %e, retry_in_ms = delay.as_millis() as u64, "An S3 request failed; retrying.");
                // A shutdown cuts the wait short: one more try, then the grace period rules.
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.cancelled(), if stop.deadline().is_none() => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let mut b = Backoff::new();
        let ms: Vec<u128> = (0..9).map(|_| b.next_base().as_millis()).collect();
        assert_eq!(
            ms,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
    }

    #[test]
    fn jitter_stays_within_a_fifth() {
        for _ in 0..200 {
            let d = Backoff::with(Duration::from_secs(10), Duration::from_secs(10)).next_delay();
            assert!(
                d >= Duration::from_secs(8) && d <= Duration::from_secs(12),
                "{d:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_errors_only() {
        let metrics = Metrics::default();
        let unreachable = || StoreError::Unreachable {
            endpoint: "e".into(),
            bucket: "b".into(),
            reason: "refused".into(),
        };
        let mut calls = 0;
        let ok = retry("put", &metrics, &RetryPolicy::forever(), || {
            calls += 1;
            let result = if calls < 3 {
                Err(unreachable())
            } else {
                Ok(calls)
            };
            async move { result }
        })
        .await;
        assert_eq!(ok.unwrap(), 3);
        assert_eq!(metrics.snapshot().retries, 2);
        let fatal = retry("put", &metrics, &RetryPolicy::forever(), || async {
            Err::<(), _>(StoreError::NoBucket {
                endpoint: "e".into(),
                bucket: "b".into(),
            })
        })
        .await;
        assert!(matches!(fatal, Err(StoreError::NoBucket { .. })));
        assert_eq!(
            metrics.snapshot().retries,
            2,
            "a fatal error is not retried"
        );
        let soon = RetryPolicy::for_at_most(Duration::from_secs(2));
        let gave_up = retry("put", &metrics, &soon, || async {
            Err::<(), _>(unreachable())
        })
        .await;
        assert!(matches!(gave_up, Err(StoreError::Unreachable { .. })));
        let token = CancellationToken::new();
        let shutdown = RetryPolicy::until_shutdown(token.clone(), Duration::from_secs(3));
        assert_eq!(shutdown.deadline(), None);
        token.cancel();
        let ended = retry("put", &metrics, &shutdown, || async {
            Err::<(), _>(unreachable())
        })
        .await;
        assert!(
            ended.is_err(),
            "a shutdown ends the retries after its grace"
        );
    }
}
