//! Admission of requests: a token bucket on the rate of commands and a cap
//! on the requests being answered at once, so a flood of commands is
//! answered `rate_limited` cheaply and never grows the agent without bound.
//! `status` never reaches the gate: it is read-only, never remembered and
//! answered inline in the service loop, one at a time, so polling it as
//! fast as the round trip allows is not a flood.

use geolb_proto::{ErrorKind, ReplyError};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Default commands per second.
pub const DEFAULT_RATE: u32 = 200;
/// Default burst above the rate.
pub const DEFAULT_BURST: u32 = 400;
/// Requests answered at once; more are refused `rate_limited`.
pub const MAX_IN_FLIGHT: usize = 64;

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug)]
pub struct Bucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: u32, burst: u32) -> Bucket {
        let burst = f64::from(burst.max(1));
        Bucket {
            rate: f64::from(rate.max(1)),
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes one token if there is one.
    pub fn take(&self) -> bool {
        self.take_at(Instant::now())
    }

    fn take_at(&self, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = *state;
        let refilled = now.saturating_duration_since(last).as_secs_f64() * self.rate;
        let tokens = (tokens + refilled).min(self.burst);
        let (tokens, ok) = if tokens >= 1.0 {
            (tokens - 1.0, true)
        } else {
            (tokens, false)
        };
        *state = (tokens, now.max(last));
        ok
    }
}

/// The rate limit and the in-flight cap of command requests.
#[derive(Debug)]
pub struct Gate {
    bucket: Bucket,
    rate: u32,
    burst: u32,
    in_flight: Arc<Semaphore>,
}

impl Gate {
    /// At most `rate` commands a second (bursts of `burst`), [`MAX_IN_FLIGHT`] at once.
    pub fn new(rate: u32, burst: u32) -> Gate {
        Gate {
            bucket: Bucket::new(rate, burst),
            rate,
            burst,
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        }
    }

    /// Admits one request, or says why not; hold the permit while answering it.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, ReplyError> {
        let permit = self.in_flight.clone().try_acquire_owned().map_err(|_| {
            ReplyError::new(
                ErrorKind::RateLimited,
                format!("{MAX_IN_FLIGHT} commands are being answered already; try again later"),
            )
        })?;
        if !self.bucket.take() {
            return Err(ReplyError::new(
                ErrorKind::RateLimited,
                format!(
                    "more than {} commands a second (bursts of {}); try again later",
                    self.rate, self.burst
                ),
            ));
        }
        Ok(permit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let bucket = Bucket::new(10, 5);
        let t0 = Instant::now();
        assert_eq!((0..10).filter(|_| bucket.take_at(t0)).count(), 5);
        assert!(!bucket.take_at(t0 + Duration::from_millis(50)));
        assert!(bucket.take_at(t0 + Duration::from_millis(110)));
        assert_eq!(
            (0..10)
                .filter(|_| bucket.take_at(t0 + Duration::from_secs(60)))
                .count(),
            5,
            "never more than the burst saved up"
        );
    }

    #[test]
    fn the_gate_caps_requests_in_flight() {
        let gate = Gate::new(1_000_000, 1_000_000);
        let held: Vec<_> = (0..MAX_IN_FLIGHT).map(|_| gate.admit().unwrap()).collect();
        assert_eq!(gate.admit().unwrap_err().kind, ErrorKind::RateLimited);
        drop(held);
        assert!(gate.admit().is_ok());
    }

    #[test]
    fn the_gate_applies_the_rate() {
        let gate = Gate::new(1, 1);
        assert!(gate.admit().is_ok());
        assert_eq!(gate.admit().unwrap_err().kind, ErrorKind::RateLimited);
    }
}
