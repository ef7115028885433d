//! The event streams the pages follow (Server-Sent Events): at every
//! render tick (see [`super::plane`]) a stream renders its page's parts
//! and sends those that changed as `part` events (first line: the
//! element's id; the rest: its HTML).
//!
//! A slow browser cannot grow the dashboard's memory: a stream renders
//! only when the connection has taken the previous event (the response
//! body is pulled by the socket), and the tick is a `watch` value, so a
//! reader that falls behind skips to the newest state rather than queueing
//! the ones it missed.

use super::plane::Plane;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// One rendered part: the element id and its HTML.
pub type Part = (&'static str, String);

/// The stream of `render`'s parts at every tick of `plane`.
pub fn parts<F, Fut>(
    plane: &Arc<Plane>,
    render: F,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Vec<Part>> + Send,
{
    let ticks = plane.ticks();
    let state = (ticks, render, HashMap::<&'static str, u64>::new(), true);
    let stream =
        futures::stream::unfold(state, |(mut ticks, render, mut sent, first)| async move {
            if !first && ticks.changed().await.is_err() {
                return None;
            }
            ticks.borrow_and_update();
            let mut events = Vec::new();
            for (id, html) in render().await {
                let digest = fingerprint(&html);
                if sent.insert(id, digest) != Some(digest) {
                    events.push(Ok(Event::default()
                        .event("part")
                        .data(format!("{id}\n{html}"))));
                }
            }
            if first {
                events.insert(
                    0,
                    Ok(Event::default()
                        .retry(Duration::from_secs(1))
                        .comment("geolb")),
                );
            }
            Some((futures::stream::iter(events), (ticks, render, sent, false)))
        })
        .flatten();
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
}

fn fingerprint(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}
