//! The probe table: what the probers have learnt about each candidate
//! (rolling RTT window, whether it answers, lame-duck notices, its INFO),
//! shared with the election and the status reports. Every change for the
//! worse wakes the driver at once through [`Table::changed`].
//!
//! The election reads a candidate's RTT as the **lowest** of its window:
//! the path's own delay, to which queueing (in the network, or in a host
//! whose CPU is busy) only adds; an average took in every stall. The probe
//! timeout still follows the average ([`Table::average`]).

use super::candidates::CandidateServer;
use super::election::{Health, View};
use super::wire::Info;
use geolb_proto::client::{Candidate, ServerRef};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// What is known about one candidate.
#[derive(Debug)]
struct Entry {
    server: CandidateServer,
    samples: VecDeque<(Instant, Duration)>,
    up: bool,
    /// When its probe connection went down (cleared by a new one).
    down_since: Option<Instant>,
    unanswered_since: Option<Instant>,
    draining: bool,
    info: Info,
}

/// Probe results for every candidate, in `--server` order.
#[derive(Debug)]
pub struct Table {
    entries: Mutex<Vec<Entry>>,
    window: usize,
    fresh_for: Duration,
    own_region: String,
    /// Notified when a candidate gets worse (unresponsive, draining, down).
    pub changed: Notify,
    /// The elected candidate and the one under review (they set the
    /// probers' cadence).
    focus: watch::Sender<Focus>,
    bursts: watch::Sender<u64>,
    cadence: Cadence,
    pings: AtomicU64,
}

/// The candidates the probers of the others need not hurry for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Focus {
    /// The elected candidate.
    pub elected: Option<usize>,
    /// A candidate that seems better and is being measured again.
    pub reviewed: Option<usize>,
}

/// How often candidates are probed: `fast` while nothing is elected, for
/// the elected candidate (its silence is seen within `fast` + the probe
/// timeout) and for one under review (a better server must show it with
/// samples of the last `hold`), `idle` for the others, which the driver
/// probes at once with a burst ([`Table::burst`]) when it must choose where
/// to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    /// `--probe-interval`.
    pub fast: Duration,
    /// `--probe-idle-interval`.
    pub idle: Duration,
    /// `--hold`: the samples of this last stretch say whether a candidate is better.
    pub hold: Duration,
}

impl Table {
    /// A table for `servers`; the RTT is read from the last `window` samples, samples older
    /// than `fresh_for` do not count toward eligibility.
    pub fn new(
        servers: &[CandidateServer],
        own_region: &str,
        window: usize,
        fresh_for: Duration,
    ) -> Table {
        let entries = servers
            .iter()
            .map(|server| Entry {
                server: server.clone(),
                samples: VecDeque::new(),
                up: false,
                down_since: None,
                unanswered_since: None,
                draining: false,
                info: Info::default(),
            })
            .collect();
        Table {
            entries: Mutex::new(entries),
            window: window.max(1),
            fresh_for,
            own_region: own_region.to_string(),
            changed: Notify::new(),
            focus: watch::Sender::new(Focus::default()),
            bursts: watch::Sender::new(0),
            cadence: Cadence {
                fast: Duration::from_millis(200),
                idle: Duration::from_millis(200),
                hold: Duration::from_secs(5),
            },
            pings: AtomicU64::new(0),
        }
    }

    /// The table with `cadence` instead of every candidate at 200 ms.
    pub fn with_cadence(mut self, cadence: Cadence) -> Table {
        self.cadence = cadence;
        self
    }

    /// The driver elected candidate `i` (none: it has no server); a review ends.
    pub fn elect(&self, i: Option<usize>) {
        self.refocus(Focus {
            elected: i,
            reviewed: None,
        });
    }

    /// The driver reviews candidate `i` (none: no review).
    pub fn review(&self, i: Option<usize>) {
        let elected = self.focus.borrow().elected;
        self.refocus(Focus {
            elected,
            reviewed: i,
        });
    }

    /// The candidate under review, if any.
    pub fn reviewed(&self) -> Option<usize> {
        self.focus.borrow().reviewed
    }

    fn refocus(&self, focus: Focus) {
        self.focus.send_if_modified(|now| {
            let changed = *now != focus;
            *now = focus;
            changed
        });
    }

    /// Asks every prober for a PING now (one with a PING outstanding waits for it).
    pub fn burst(&self) {
        self.bursts.send_modify(|n| *n += 1);
    }

    /// Bursts asked for, for the probers.
    pub fn bursts(&self) -> watch::Receiver<u64> {
        self.bursts.subscribe()
    }

    /// Changes of the elected and reviewed candidates, for the probers.
    pub fn elections(&self) -> watch::Receiver<Focus> {
        self.focus.subscribe()
    }

    /// How often candidate `i` is probed now.
    pub fn interval(&self, i: usize) -> Duration {
        let focus = *self.focus.borrow();
        interval_of(&self.cadence, focus, i)
    }

    /// Counts one PING sent.
    pub fn pinged(&self) {
        self.pings.fetch_add(1, Ordering::Relaxed);
    }

    /// PINGs sent so far, to every candidate.
    pub fn pings(&self) -> u64 {
        self.pings.load(Ordering::Relaxed)
    }

    fn with<R>(&self, f: impl FnOnce(&mut Vec<Entry>) -> R) -> R {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut entries)
    }

    /// Number of candidates.
    pub fn len(&self) -> usize {
        self.with(|e| e.len())
    }

    /// Whether there are no candidates.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A probe connection got the server's INFO.
    pub fn connected(&self, i: usize, info: Info) {
        let draining = info.ldm;
        self.with(|e| {
            let entry = &mut e[i];
            entry.up = true;
            entry.down_since = None;
            entry.samples.clear();
            entry.unanswered_since = None;
            entry.draining = draining;
            entry.info = info;
        });
        if draining {
            self.changed.notify_one();
        }
    }

    /// A PONG came back in time.
    pub fn sample(&self, i: usize, rtt: Duration, at: Instant) {
        let window = self.window;
        self.with(|e| {
            let entry = &mut e[i];
            entry.unanswered_since = None;
            entry.samples.push_back((at, rtt));
            while entry.samples.len() > window {
                entry.samples.pop_front();
            }
        });
    }

    /// A PONG came back late: the server answers again, but the sample is not kept.
    pub fn answered_late(&self, i: usize) {
        self.with(|e| e[i].unanswered_since = None);
    }

    /// A PING sent at `since` went unanswered past the timeout.
    pub fn unanswered(&self, i: usize, since: Instant) {
        let first = self.with(|e| {
            let entry = &mut e[i];
            entry.samples.clear();
            let first = entry.unanswered_since.is_none();
            if first {
                entry.unanswered_since = Some(since);
            }
            first
        });
        if first {
            self.changed.notify_one();
        }
    }

    /// The server announced lame-duck mode in an async INFO.
    pub fn draining(&self, i: usize) {
        self.with(|e| e[i].draining = true);
        self.changed.notify_one();
    }

    /// The probe connection is gone (or could not be opened).
    pub fn down(&self, i: usize) {
        let was_up = self.with(|e| {
            let entry = &mut e[i];
            let was_up = entry.up;
            entry.up = false;
            if was_up {
                entry.down_since = Some(Instant::now());
            }
            entry.samples.clear();
            was_up
        });
        if was_up {
            self.changed.notify_one();
        }
    }

    /// The rolling average RTT of candidate `i` (what its probe timeout follows).
    pub fn average(&self, i: usize) -> Option<Duration> {
        let span = self.span();
        self.with(|e| average(young(&e[i].samples, Instant::now(), span)))
    }

    /// When candidate `i`'s probe connection went down, if it is down.
    pub fn down_since(&self, i: usize) -> Option<Instant> {
        self.with(|e| e[i].down_since)
    }

    /// When candidate `i` stopped answering, if it did.
    pub fn unanswered_since(&self, i: usize) -> Option<Instant> {
        self.with(|e| e[i].unanswered_since)
    }

    /// The election's view of every candidate at `now`. A candidate probed
    /// at `interval` counts samples younger than max(the election window,
    /// 2.5 x `interval`) as fresh, and is recent for 2 x `interval`.
    pub fn views(&self, now: Instant) -> Vec<View> {
        let focus = *self.focus.borrow();
        let span = self.span();
        self.with(|e| {
            (0..e.len())
                .map(|i| {
                    let entry = &e[i];
                    let interval = interval_of(&self.cadence, focus, i);
                    let held: Vec<Duration> = entry
                        .samples
                        .iter()
                        .filter(|(at, _)| now.saturating_duration_since(*at) <= self.cadence.hold)
                        .map(|(_, rtt)| *rtt)
                        .collect();
                    let fresh_for = self.fresh_for.max(interval.mul_f64(2.5));
                    View {
                        own_region: entry.server.region == self.own_region,
                        rtt_ms: lowest(young(&entry.samples, now, span)).map(as_ms),
                        fresh: entry
                            .samples
                            .iter()
                            .filter(|(at, _)| now.saturating_duration_since(*at) <= fresh_for)
                            .count() as u32,
                        health: health(entry),
                        answered_ago: entry
                            .samples
                            .back()
                            .map(|(at, _)| now.saturating_duration_since(*at)),
                        recent: interval * 2,
                        held: held.len() as u32,
                        held_rtt_ms: held.iter().min().copied().map(as_ms),
                    }
                })
                .collect()
        })
    }

    /// How far back the RTT window looks: `window` samples at the fast
    /// cadence, so that an idle candidate's RTT is its latest samples,
    /// not a window tens of seconds long.
    fn span(&self) -> Duration {
        self.cadence.fast * self.window as u32
    }

    /// Every candidate, as reported.
    pub fn candidates(&self) -> Vec<Candidate> {
        let (now, span) = (Instant::now(), self.span());
        self.with(|e| {
            e.iter()
                .map(|entry| Candidate {
                    url: entry.server.url.clone(),
                    region: entry.server.region.clone(),
                    rtt_ms: lowest(young(&entry.samples, now, span)).map(|d| round3(as_ms(d))),
                    samples: entry.samples.len() as u32,
                    healthy: health(entry) == Health::Healthy,
                })
                .collect()
        })
    }

    /// Candidate `i` as a server reference (name and cluster from its INFO).
    pub fn server_ref(&self, i: usize) -> ServerRef {
        self.with(|e| to_ref(&e[i]))
    }

    /// The candidate whose probe saw this server id, if any.
    pub fn find_server_id(&self, server_id: &str) -> Option<usize> {
        match server_id.is_empty() {
            true => None,
            false => self.with(|e| e.iter().position(|x| x.info.server_id == server_id)),
        }
    }
}

fn to_ref(entry: &Entry) -> ServerRef {
    ServerRef {
        url: entry.server.url.clone(),
        region: entry.server.region.clone(),
        name: entry.info.server_name.clone(),
        cluster: entry.info.cluster.clone(),
    }
}

fn health(entry: &Entry) -> Health {
    // A draining server stays draining once its probe connection closed
    // (the prober leaves at the notice), until a new connection says otherwise.
    match (entry.up, entry.draining, entry.unanswered_since) {
        (_, true, _) => Health::Draining,
        (false, false, _) => Health::Down,
        (true, false, Some(_)) => Health::Unresponsive,
        (true, false, None) => Health::Healthy,
    }
}

/// `fast` while nothing is elected, for the elected candidate and the one
/// under review; `idle` for the others.
fn interval_of(cadence: &Cadence, focus: Focus, i: usize) -> Duration {
    match focus.elected {
        Some(at) if at != i && focus.reviewed != Some(i) => cadence.idle,
        _ => cadence.fast,
    }
}

/// The samples younger than `span`, or the newest alone when none is (a
/// candidate probed every idle interval).
fn young(samples: &VecDeque<(Instant, Duration)>, now: Instant, span: Duration) -> Vec<Duration> {
    let young: Vec<Duration> = samples
        .iter()
        .filter(|(at, _)| now.saturating_duration_since(*at) <= span)
        .map(|(_, d)| *d)
        .collect();
    match young.is_empty() {
        true => samples.back().map(|(_, d)| *d).into_iter().collect(),
        false => young,
    }
}

/// The lowest RTT of `samples`.
fn lowest(samples: Vec<Duration>) -> Option<Duration> {
    samples.into_iter().min()
}

/// The average RTT of `samples`.
fn average(samples: Vec<Duration>) -> Option<Duration> {
    let n = samples.len() as u32;
    (n > 0).then(|| samples.iter().sum::<Duration>() / n)
}

fn as_ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Rounds milliseconds to microseconds for reports.
pub fn round3(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Transport;
    use crate::candidates::parse_one;

    fn table() -> Table {
        let servers = [
            parse_one("a=h:1", Transport::Tcp).unwrap(),
            parse_one("b=h:2", Transport::Tcp).unwrap(),
        ];
        Table::new(&servers, "a", 3, Duration::from_secs(2))
    }

    #[test]
    fn the_elected_server_is_probed_fast_the_rest_at_idle() {
        let ms = Duration::from_millis;
        let servers = ["a=h:1", "a=h:2", "b=h:3"].map(|s| parse_one(s, Transport::Tcp).unwrap());
        let t = Table::new(&servers, "a", 3, Duration::from_secs(2)).with_cadence(Cadence {
            fast: ms(200),
            idle: ms(1000),
            hold: ms(1500),
        });
        let intervals = |t: &Table| (0..3).map(|i| t.interval(i)).collect::<Vec<_>>();
        let cases = [
            (None, [ms(200), ms(200), ms(200)]),
            (Some(0), [ms(200), ms(1000), ms(1000)]),
            (Some(2), [ms(1000), ms(1000), ms(200)]),
        ];
        for (elected, want) in cases {
            t.elect(elected);
            assert_eq!(intervals(&t), want, "elected {elected:?}");
        }
        // A candidate under review is probed fast until the next election.
        t.elect(Some(0));
        t.review(Some(2));
        assert_eq!(intervals(&t), [ms(200), ms(1000), ms(200)]);
        t.elect(Some(2));
        assert_eq!(
            (t.reviewed(), intervals(&t)),
            (None, vec![ms(1000), ms(1000), ms(200)])
        );
        // Idle candidates: two samples a second apart stay fresh (2.5 s), and
        // recent for 2 s.
        t.elect(Some(2));
        let t0 = Instant::now();
        t.connected(0, Info::default());
        t.sample(0, ms(8), t0);
        t.sample(0, ms(8), t0 + ms(1000));
        let v = t.views(t0 + ms(2400))[0];
        assert_eq!((v.fresh, v.recent), (2, ms(2000)));
        // Only the sample of the last 1.5 s counts as held.
        assert_eq!((v.held, v.held_rtt_ms), (1, Some(8.0)));
        // The average spans 3 samples at 200 ms: an idle candidate's is its
        // newest sample once the others are older than that.
        t.sample(0, ms(30), t0 + ms(2000));
        assert_eq!(t.views(t0 + ms(2100))[0].rtt_ms, Some(30.0));
        assert_eq!(t.views(t0 + ms(2500))[0].rtt_ms, Some(30.0));
        assert_eq!(t.views(t0)[2].recent, ms(400));
    }

    #[test]
    fn keeps_a_rolling_window_and_tracks_health() {
        let t = table();
        let t0 = Instant::now();
        assert_eq!(t.views(t0)[0].health, Health::Down);
        t.connected(0, Info::default());
        for ms in [10, 20, 30, 40] {
            t.sample(0, Duration::from_millis(ms), t0);
        }
        let v = &t.views(t0)[0];
        assert_eq!(
            (v.rtt_ms, v.fresh, v.health),
            (Some(20.0), 3, Health::Healthy),
            "the lowest of the last 3"
        );
        assert_eq!(t.average(0), Some(Duration::from_millis(30)));
        assert!(v.own_region && !t.views(t0)[1].own_region);
        assert_eq!(t.views(t0 + Duration::from_secs(3))[0].fresh, 0);
        t.unanswered(0, t0);
        assert_eq!(t.views(t0)[0].health, Health::Unresponsive);
        assert_eq!(t.unanswered_since(0), Some(t0));
        assert_eq!(t.views(t0)[0].rtt_ms, None);
        t.answered_late(0);
        assert_eq!(t.views(t0)[0].health, Health::Healthy);
        t.draining(0);
        assert_eq!(t.views(t0)[0].health, Health::Draining);
        assert!(!t.candidates()[0].healthy);
        t.down(0);
        assert_eq!(
            t.views(t0)[0].health,
            Health::Draining,
            "the prober left at the notice: still draining"
        );
        t.connected(0, Info::default());
        t.down(0);
        assert_eq!(t.views(t0)[0].health, Health::Down);
    }

    #[test]
    fn stalls_do_not_move_the_rtt_but_the_timeout_sees_them() {
        // A busy host: one probe in three waits 40 ms for the CPU.
        let servers = ["a=h:1", "b=h:2"].map(|s| parse_one(s, Transport::Tcp).unwrap());
        let t = Table::new(&servers, "a", 10, Duration::from_secs(2));
        let (t0, us) = (Instant::now(), Duration::from_micros);
        t.connected(0, Info::default());
        t.connected(1, Info::default());
        for k in 0..9 {
            let stall = if k % 3 == 0 { us(40_000) } else { us(0) };
            t.sample(0, us(500) + stall, t0);
            t.sample(1, us(8_000) + stall / 4, t0);
        }
        let v = t.views(t0);
        assert_eq!((v[0].rtt_ms, v[1].rtt_ms), (Some(0.5), Some(8.0)));
        assert_eq!((v[0].held_rtt_ms, v[1].held_rtt_ms), (Some(0.5), Some(8.0)));
        // The averages (13.8 and 11.3 ms) would have elected the other region.
        assert_eq!(t.average(0), Some(us(13_833) + Duration::from_nanos(333)));
        assert_eq!(t.average(1), Some(us(11_333) + Duration::from_nanos(333)));
    }

    #[test]
    fn finds_servers_by_id() {
        let t = table();
        let info = Info {
            server_id: "NB".into(),
            server_name: "b-1".into(),
            cluster: "b".into(),
            ldm: false,
        };
        t.connected(1, info);
        assert_eq!(t.find_server_id("NB"), Some(1));
        assert_eq!(t.find_server_id(""), None);
        assert_eq!(t.server_ref(1).name, "b-1");
    }
}
