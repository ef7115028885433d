//! The `rtt` client's standby: a connection kept open, unsubscribed, to the
//! best candidate outside its server's region.
//!
//! A region that dies takes all its servers, and all its clients need a
//! server elsewhere at the same moment. Connecting then is the slow part:
//! nats-server takes its new connections one at a time (measured here: 100
//! connections at once to one server, 63 ms to the last PONG; one alone,
//! 2.4 ms), so 100 clients of a killed region took 60 to 115 ms from
//! deciding to move to being connected in the next one, where 12 took 14 ms. A client with a standby in the
//! region it moves to only subscribes on it ([`crate::session::Link::on`]).
//!
//! - The standby follows the best eligible candidate of the other regions
//!   ([`target`]); one open in that candidate's region stays while its
//!   server is healthy, so near-equal servers do not make it churn.
//! - It is dropped when its server stops being healthy (a server in
//!   lame-duck mode that waits for its last client must not wait for it).
//! - It costs the server one idle connection, and no traffic: it holds no
//!   subscription until it is promoted.

use super::election::{best, Health, Policy, View};
use super::session::{self, LinkError, LinkEvent, LinkOptions, Tag, UNTAGGED};
use async_nats::connection::State;
use async_nats::Client;
use futures::FutureExt;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The candidate a standby should be on: the best eligible one outside the
/// region of `current` (`regions[i]` is candidate `i`'s region).
pub fn target(
    views: &[View],
    current: usize,
    regions: &[String],
    policy: &Policy,
) -> Option<usize> {
    let home = regions.get(current)?;
    let skip: Vec<usize> = (0..views.len())
        .filter(|&i| regions.get(i) == Some(home))
        .collect();
    best(views, policy, &skip)
}

/// An open standby connection.
pub struct Ready {
    /// Candidate index.
    pub index: usize,
    /// The connection.
    pub client: Client,
    /// Its events' tag: set it to the link's generation when promoting it.
    pub tag: Tag,
}

type Opening = JoinHandle<Result<(Client, Tag), LinkError>>;

/// The standby, open or being opened.
#[derive(Default)]
pub struct Standby {
    ready: Option<Ready>,
    opening: Option<(usize, Opening)>,
}

impl Standby {
    /// Keeps the standby on `want`'s region: an open one there stays while
    /// healthy; otherwise one is opened to `want` (`url` of `want`).
    pub fn keep(
        &mut self,
        want: Option<usize>,
        regions: &[String],
        views: &[View],
        open: impl FnOnce(usize) -> Opening,
    ) {
        self.collect();
        let healthy = |i: usize| views.get(i).is_some_and(|v| v.health == Health::Healthy);
        let same =
            |i: usize, j: usize| regions.get(i).is_some() && regions.get(i) == regions.get(j);
        if let Some(ready) = &self.ready {
            let fine = want.is_some_and(|w| same(ready.index, w))
                && healthy(ready.index)
                && ready.client.connection_state() == State::Connected;
            if !fine {
                self.ready = None;
            }
        }
        if let Some((index, _)) = &self.opening {
            if want != Some(*index) {
                self.opening = None;
            }
        }
        if let (None, None, Some(want)) = (&self.ready, &self.opening, want) {
            self.opening = Some((want, open(want)));
        }
    }

    /// Takes the open standby if it is on `to` or on a server of `to`'s
    /// region that `accept` takes instead, and still connected.
    pub fn take(&mut self, to: usize, accept: impl Fn(usize) -> bool) -> Option<Ready> {
        self.collect();
        let ready = self.ready.take()?;
        let usable = (ready.index == to || accept(ready.index))
            && ready.client.connection_state() == State::Connected;
        match usable {
            true => Some(ready),
            false => {
                self.ready = Some(ready);
                None
            }
        }
    }

    /// Moves a finished opening into `ready` (a failed one is forgotten).
    fn collect(&mut self) {
        let Some((index, handle)) = self.opening.take_if(|(_, h)| h.is_finished()) else {
            return;
        };
        if let Some(Ok(Ok((client, tag)))) = handle.now_or_never() {
            self.ready = Some(Ready { index, client, tag });
        }
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        if let Some((_, handle)) = &self.opening {
            handle.abort();
        }
    }
}

/// Opens a standby connection to `url` in the background.
pub fn open(
    url: String,
    options: LinkOptions,
    events: mpsc::UnboundedSender<LinkEvent>,
) -> Opening {
    tokio::spawn(async move {
        let tag: Tag = Arc::new(AtomicU64::new(UNTAGGED));
        let client = session::connect(&url, &options, tag.clone(), events).await?;
        Ok((client, tag))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn view(rtt_ms: f64, own_region: bool) -> View {
        View {
            own_region,
            rtt_ms: Some(rtt_ms),
            fresh: 5,
            health: Health::Healthy,
            answered_ago: Some(Duration::from_millis(100)),
            recent: Duration::from_millis(400),
            held: 5,
            held_rtt_ms: Some(rtt_ms),
        }
    }

    #[test]
    fn the_target_is_the_best_candidate_of_the_other_regions() {
        let policy = Policy {
            min_samples: 2,
            hysteresis_pct: 20.0,
            hysteresis_min_ms: 2.0,
            hold: Duration::from_secs(5),
        };
        let regions = ["lon", "lon", "ams", "ams", "dfw"].map(String::from);
        let mut views = [
            view(0.5, true),
            view(0.6, true),
            view(8.2, false),
            view(8.0, false),
            view(105.0, false),
        ];
        assert_eq!(target(&views, 0, &regions, &policy), Some(3));
        assert_eq!(
            target(&views, 3, &regions, &policy),
            Some(0),
            "from ams: lon"
        );
        views[2].health = Health::Down;
        views[3].health = Health::Unresponsive;
        assert_eq!(
            target(&views, 0, &regions, &policy),
            Some(4),
            "ams is down: dfw"
        );
        assert_eq!(target(&views, 9, &regions, &policy), None, "no such server");
    }
}
