//! Polling with backoff instead of sleeps, and timeouts that fail a test with a message.

use std::future::{Future, IntoFuture};
use std::panic::Location;
use std::time::{Duration, Instant};

/// Delays between polls: 10 ms, doubling up to 200 ms.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: Duration::from_millis(10),
        }
    }
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let now = self.next;
        self.next = (now * 2).min(Duration::from_millis(200));
        Some(now)
    }
}

/// Polls `f` with backoff until it returns `Some`; panics naming `what` after `timeout`.
#[track_caller]
pub fn wait_for<F, Fut, T>(what: &str, timeout: Duration, mut f: F) -> impl Future<Output = T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let caller = Location::caller();
    let what = what.to_string();
    async move {
        let deadline = Instant::now() + timeout;
        let mut backoff = Backoff::default();
        loop {
            if let Some(v) = f().await {
                return v;
            }
            if Instant::now() >= deadline {
                panic!("timed out after {timeout:?} waiting for {what} (at {caller})");
            }
            let delay = backoff.next().unwrap_or_default();
            tokio::time::sleep(delay.min(deadline - Instant::now())).await;
        }
    }
}

/// Blocking twin of [`wait_for`] for synchronous setup code (starting servers).
#[track_caller]
pub fn wait_for_blocking<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    let mut backoff = Backoff::default();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {timeout:?} waiting for {what} (at {})",
                Location::caller()
            );
        }
        let delay = backoff.next().unwrap_or_default();
        std::thread::sleep(delay.min(deadline - Instant::now()));
    }
}

/// Awaits `fut`, panicking with the duration and the caller's location if it takes longer.
#[track_caller]
pub fn with_timeout<F: IntoFuture>(dur: Duration, fut: F) -> impl Future<Output = F::Output> {
    let caller = Location::caller();
    async move {
        match tokio::time::timeout(dur, fut).await {
            Ok(v) => v,
            Err(_) => panic!("timed out after {dur:?} (at {caller})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let ms: Vec<u128> = Backoff::default().take(7).map(|d| d.as_millis()).collect();
        assert_eq!(ms, [10, 20, 40, 80, 160, 200, 200]);
    }

    #[tokio::test]
    async fn wait_for_returns_the_value() {
        let mut n = 0;
        let v = wait_for("n to reach 3", Duration::from_secs(5), || {
            n += 1;
            let r = (n >= 3).then_some(n);
            async move { r }
        })
        .await;
        assert_eq!(v, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for never")]
    async fn wait_for_panics_with_what() {
        wait_for::<_, _, ()>("never", Duration::from_millis(50), || async { None }).await;
    }

    #[tokio::test]
    #[should_panic(expected = "timed out after 10ms")]
    async fn with_timeout_panics() {
        with_timeout(Duration::from_millis(10), std::future::pending::<()>()).await;
    }
}
