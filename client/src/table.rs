//! The probe table: what the probers have learnt about each candidate
//! (rolling RTT window, whether it answers, lame-duck notices, its INFO),
//! shared with the election and the status reports. Every change for the
//! worse wakes the driver at once through [`Table::changed`].

use super::candidates::CandidateServer;
use super::election::{Health, View};
use super::wire::Info;
use geolb_proto::client::{Candidate, ServerRef};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// What is known about one candidate.
#[derive(Debug)]
struct Entry {
    server: CandidateServer,
    samples: VecDeque<(Instant, Duration)>,
    up: bool,
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
}

impl Table {
    /// A table for `servers`; `window` samples are averaged, samples older
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
        }
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
            entry.samples.clear();
            was_up
        });
        if was_up {
            self.changed.notify_one();
        }
    }

    /// The rolling average RTT of candidate `i`.
    pub fn average(&self, i: usize) -> Option<Duration> {
        self.with(|e| average(&e[i].samples))
    }

    /// When candidate `i` stopped answering, if it did.
    pub fn unanswered_since(&self, i: usize) -> Option<Instant> {
        self.with(|e| e[i].unanswered_since)
    }

    /// The election's view of every candidate at `now`.
    pub fn views(&self, now: Instant) -> Vec<View> {
        self.with(|e| {
            e.iter()
                .map(|entry| View {
                    own_region: entry.server.region == self.own_region,
                    rtt_ms: average(&entry.samples).map(|d| d.as_secs_f64() * 1000.0),
                    fresh: entry
                        .samples
                        .iter()
                        .filter(|(at, _)| now.saturating_duration_since(*at) <= self.fresh_for)
                        .count() as u32,
                    health: health(entry),
                    answered_ago: entry
                        .samples
                        .back()
                        .map(|(at, _)| now.saturating_duration_since(*at)),
                })
                .collect()
        })
    }

    /// Every candidate, as reported.
    pub fn candidates(&self) -> Vec<Candidate> {
        self.with(|e| {
            e.iter()
                .map(|entry| Candidate {
                    url: entry.server.url.clone(),
                    region: entry.server.region.clone(),
                    rtt_ms: average(&entry.samples).map(|d| round3(d.as_secs_f64() * 1000.0)),
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

fn average(samples: &VecDeque<(Instant, Duration)>) -> Option<Duration> {
    match samples.len() {
        0 => None,
        n => Some(samples.iter().map(|(_, d)| *d).sum::<Duration>() / n as u32),
    }
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
            (Some(30.0), 3, Health::Healthy)
        );
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
