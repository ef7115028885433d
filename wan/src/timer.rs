//! A precise timer shared by every link in the process.
//!
//! Tokio timers tick in whole milliseconds and round up, too coarse for a 0.25 ms
//! one-way delay. One lazily started thread keeps a min-heap of deadlines, parks until
//! [`SPIN`] before the earliest one (with a 1 ns timer slack), spins the rest, and wakes
//! the tasks whose deadline has passed.
//!
//! Waking a task takes time too (tens of microseconds, more after some idle time), so
//! the thread wakes each task a little early, by a running average of the wake-up
//! latencies it observed (at most [`MAX_LEAD`]); a task woken before its deadline spins
//! the few microseconds left.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long before a deadline the timer thread stops sleeping and spins.
pub const SPIN: Duration = Duration::from_micros(80);

/// The most a task is woken before its deadline.
pub const MAX_LEAD: Duration = Duration::from_micros(150);

/// The running average of wake-up latencies, in nanoseconds.
static LEAD_NS: AtomicU64 = AtomicU64::new(20_000);

fn lead() -> Duration {
    Duration::from_nanos(LEAD_NS.load(Ordering::Relaxed))
}

/// Folds one observed wake-up latency into the average (weight 1/8).
fn observe(latency: Duration) {
    let sample = latency.min(MAX_LEAD).as_nanos() as i64;
    let old = LEAD_NS.load(Ordering::Relaxed) as i64;
    LEAD_NS.store((old + (sample - old) / 8) as u64, Ordering::Relaxed);
}

/// Completes at `deadline`, with a precision of a few microseconds.
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        slot: None,
    }
}

/// The future returned by [`sleep_until`].
#[derive(Debug)]
pub struct Sleep {
    deadline: Instant,
    slot: Option<Arc<Slot>>,
}

#[derive(Debug)]
struct Slot {
    fired: AtomicBool,
    /// When the timer thread woke the task.
    fired_at: Mutex<Option<Instant>>,
    waker: Mutex<Waker>,
}

struct Entry {
    deadline: Instant,
    seq: u64,
    slot: Arc<Slot>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.deadline, self.seq) == (other.deadline, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.deadline, self.seq).cmp(&(other.deadline, other.seq))
    }
}

#[derive(Default)]
struct Heap {
    entries: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

struct Timer {
    heap: Mutex<Heap>,
    thread: Thread,
}

fn timer() -> &'static Timer {
    static TIMER: OnceLock<Timer> = OnceLock::new();
    TIMER.get_or_init(|| {
        let handle = thread::Builder::new()
            .name("geolb-wan-timer".into())
            .spawn(|| run(timer()))
            .expect("cannot start the WAN timer thread");
        Timer {
            heap: Mutex::default(),
            thread: handle.thread().clone(),
        }
    })
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(slot) = &self.slot {
            if !slot.fired.load(Ordering::Acquire) {
                slot.waker.lock().unwrap().clone_from(cx.waker());
                // The timer may have fired between the check and the waker update.
                if !slot.fired.load(Ordering::Acquire) {
                    return Poll::Pending;
                }
            }
            if let Some(fired_at) = slot.fired_at.lock().unwrap().take() {
                observe(fired_at.elapsed());
            }
            while Instant::now() < self.deadline {
                std::hint::spin_loop();
            }
            return Poll::Ready(());
        }
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        let slot = Arc::new(Slot {
            fired: AtomicBool::new(false),
            fired_at: Mutex::new(None),
            waker: Mutex::new(cx.waker().clone()),
        });
        self.slot = Some(slot.clone());
        let timer = timer();
        let mut heap = timer.heap.lock().unwrap();
        let earliest = heap
            .entries
            .peek()
            .is_none_or(|e| self.deadline < e.0.deadline);
        heap.seq += 1;
        let seq = heap.seq;
        heap.entries.push(Reverse(Entry {
            deadline: self.deadline,
            seq,
            slot,
        }));
        drop(heap);
        if earliest {
            timer.thread.unpark();
        }
        Poll::Pending
    }
}

/// The timer thread: fire what is due, then park or spin until the next deadline.
fn run(timer: &Timer) {
    // A 1 ns timer slack makes `park_timeout` wake within tens of microseconds.
    let _ = nix::sys::prctl::set_timerslack(1);
    let mut due = Vec::new();
    loop {
        let now = Instant::now();
        let lead = lead();
        let next = {
            let mut heap = timer.heap.lock().unwrap();
            while heap
                .entries
                .peek()
                .is_some_and(|e| e.0.deadline <= now + lead)
            {
                due.push(heap.entries.pop().unwrap().0.slot);
            }
            heap.entries.peek().map(|e| e.0.deadline - lead)
        };
        for slot in due.drain(..) {
            *slot.fired_at.lock().unwrap() = Some(now);
            slot.fired.store(true, Ordering::Release);
            slot.waker.lock().unwrap().wake_by_ref();
        }
        match next {
            None => thread::park(),
            Some(deadline) if deadline - now > SPIN => thread::park_timeout(deadline - now - SPIN),
            Some(deadline) => {
                while Instant::now() < deadline {
                    std::hint::spin_loop();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wakes_close_to_the_deadline() {
        let mut late = Vec::new();
        for i in 0..200u64 {
            let deadline = Instant::now() + Duration::from_micros(100 + (i % 13) * 77);
            sleep_until(deadline).await;
            late.push(deadline.elapsed());
        }
        late.sort();
        let median = late[late.len() / 2];
        println!("timer lateness: median {median:?}, p90 {:?}", late[180]);
        assert!(
            median < Duration::from_micros(150),
            "median lateness {median:?}"
        );
    }

    #[tokio::test]
    async fn past_deadlines_complete_at_once() {
        sleep_until(Instant::now() - Duration::from_millis(1)).await;
    }
}
