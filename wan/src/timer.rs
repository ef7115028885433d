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
//!
//! Spinning buys precision with CPU, once a deadline: a lab of a thousand clients has
//! thousands of deadlines a second, and spun a whole core away. So the spinning of a
//! process (thread and tasks together) has a [`SpinBudget`]: past [`SPIN_BUDGET`] in a
//! [`SPIN_WINDOW`], deadlines are met by sleeping alone (tens of microseconds late,
//! never early) until the next window.

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

/// The spinning a process may do in a [`SPIN_WINDOW`] (5 % of one core).
pub const SPIN_BUDGET: Duration = Duration::from_millis(5);
/// The window of [`SPIN_BUDGET`].
pub const SPIN_WINDOW: Duration = Duration::from_millis(100);

/// Spinning done in the current window, against [`SPIN_BUDGET`].
#[derive(Debug)]
pub struct SpinBudget {
    window: Duration,
    budget: Duration,
    /// (the window's start, spun in it).
    spent: Mutex<(Instant, Duration)>,
}

impl SpinBudget {
    /// `budget` of spinning a `window`.
    pub fn new(budget: Duration, window: Duration) -> SpinBudget {
        SpinBudget {
            window,
            budget,
            spent: Mutex::new((Instant::now(), Duration::ZERO)),
        }
    }

    /// Whether spinning is allowed at `now` (a new window starts afresh).
    pub fn allows(&self, now: Instant) -> bool {
        let mut spent = self.spent.lock().unwrap();
        if now.saturating_duration_since(spent.0) >= self.window {
            *spent = (now, Duration::ZERO);
        }
        spent.1 < self.budget
    }

    /// Counts `spun` against the current window.
    pub fn spent(&self, spun: Duration) {
        self.spent.lock().unwrap().1 += spun;
    }
}

fn budget() -> &'static SpinBudget {
    static BUDGET: OnceLock<SpinBudget> = OnceLock::new();
    BUDGET.get_or_init(|| SpinBudget::new(SPIN_BUDGET, SPIN_WINDOW))
}

/// Spins until `deadline`, counting it against the budget.
fn spin_until(deadline: Instant) {
    let started = Instant::now();
    while Instant::now() < deadline {
        std::hint::spin_loop();
    }
    budget().spent(started.elapsed());
}

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
            // Woken early only while spinning was allowed: at most the lead.
            spin_until(self.deadline);
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
        let spin = budget().allows(now);
        // Out of budget, a task is woken at its deadline, not before: it must not spin.
        let lead = if spin { lead() } else { Duration::ZERO };
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
            Some(deadline) if !spin => {
                thread::park_timeout(deadline.saturating_duration_since(now))
            }
            Some(deadline) if deadline - now > SPIN => thread::park_timeout(deadline - now - SPIN),
            Some(deadline) => spin_until(deadline),
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

    #[test]
    fn the_spin_budget_runs_out_and_comes_back_each_window() {
        let budget = SpinBudget::new(Duration::from_millis(5), Duration::from_millis(100));
        let start = Instant::now();
        assert!(budget.allows(start));
        budget.spent(Duration::from_millis(4));
        assert!(budget.allows(start + Duration::from_millis(10)));
        budget.spent(Duration::from_millis(2));
        assert!(!budget.allows(start + Duration::from_millis(50)));
        assert!(
            budget.allows(start + Duration::from_millis(150)),
            "a new window"
        );
    }

    #[tokio::test]
    async fn past_deadlines_complete_at_once() {
        sleep_until(Instant::now() - Duration::from_millis(1)).await;
    }
}
