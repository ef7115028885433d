//! Answered command ids, so a repeated id is answered from memory and not
//! applied twice. A repeat that arrives while the first is still being
//! applied waits for the same answer. Bounded: the oldest ids are forgotten.

use geolb_proto::Reply;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use tokio::sync::watch;

/// The memory of command ids.
pub struct Memory {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    done: HashMap<String, Reply>,
    order: VecDeque<String>,
    in_flight: HashMap<String, watch::Receiver<Option<Reply>>>,
}

/// What the memory knows of an id.
pub enum Seen<'a> {
    /// Answered before: here is the answer.
    Done(Box<Reply>),
    /// Being applied now: wait for its answer.
    InFlight(InFlight),
    /// New: apply it, then [`Claim::complete`].
    New(Claim<'a>),
}

/// The right to apply a new command id.
pub struct Claim<'a> {
    memory: &'a Memory,
    id: String,
    tx: watch::Sender<Option<Reply>>,
}

/// A command id being applied by another request.
pub struct InFlight(watch::Receiver<Option<Reply>>);

impl Memory {
    /// A memory of at most `capacity` answered ids.
    pub fn new(capacity: usize) -> Memory {
        Memory {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Looks `id` up, claiming it when it is new.
    pub fn see(&self, id: &str) -> Seen<'_> {
        let mut inner = self.lock();
        if let Some(reply) = inner.done.get(id) {
            return Seen::Done(Box::new(reply.clone()));
        }
        if let Some(rx) = inner.in_flight.get(id) {
            return Seen::InFlight(InFlight(rx.clone()));
        }
        let (tx, rx) = watch::channel(None);
        inner.in_flight.insert(id.to_string(), rx);
        Seen::New(Claim {
            memory: self,
            id: id.to_string(),
            tx,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Claim<'_> {
    /// Stores the answer and hands it to every waiting repeat.
    pub fn complete(self, reply: Reply) {
        let mut inner = self.memory.lock();
        inner.in_flight.remove(&self.id);
        inner.done.insert(self.id.clone(), reply.clone());
        inner.order.push_back(self.id.clone());
        while inner.order.len() > self.memory.capacity {
            if let Some(old) = inner.order.pop_front() {
                inner.done.remove(&old);
            }
        }
        drop(inner);
        let _ = self.tx.send(Some(reply));
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        // A claim dropped without an answer (the request task died) frees the id.
        if self.tx.borrow().is_none() {
            self.memory.lock().in_flight.remove(&self.id);
        }
    }
}

impl InFlight {
    /// Waits for the first request's answer.
    pub async fn wait(mut self) -> Option<Reply> {
        let reply = self.0.wait_for(Option::is_some).await.ok()?;
        reply.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geolb_proto::{AgentStatus, Role};

    fn reply(id: &str) -> Reply {
        Reply::new(id, Ok(()), AgentStatus::example("a", "r", Role::Server))
    }

    #[tokio::test]
    async fn answers_repeats_from_memory() {
        let memory = Memory::new(2);
        let Seen::New(claim) = memory.see("a") else {
            panic!("a is new")
        };
        let Seen::InFlight(waiting) = memory.see("a") else {
            panic!("a is in flight")
        };
        claim.complete(reply("a"));
        assert_eq!(waiting.wait().await.unwrap().id, "a");
        assert!(matches!(memory.see("a"), Seen::Done(r) if r.id == "a"));
    }

    #[test]
    fn forgets_the_oldest() {
        let memory = Memory::new(2);
        for id in ["a", "b", "c"] {
            let Seen::New(claim) = memory.see(id) else {
                panic!("{id} is new")
            };
            claim.complete(reply(id));
        }
        assert!(matches!(memory.see("a"), Seen::New(_)));
        assert!(matches!(memory.see("c"), Seen::Done(_)));
    }

    #[test]
    fn a_dropped_claim_frees_the_id() {
        let memory = Memory::new(2);
        let Seen::New(claim) = memory.see("a") else {
            panic!()
        };
        drop(claim);
        assert!(matches!(memory.see("a"), Seen::New(_)));
    }
}
