//! Request coalescing: concurrent misses for one cache key make one origin fetch. The first request becomes
//! the leader and fetches; the others wait (bounded) for its outcome and are answered from it.
//!
//! The leader holds a [`Flight`] guard. Dropping it without publishing (the fetch failed or was abandoned) wakes
//! the waiters with nothing, and they go to the origin themselves, so a lost leader never strands anyone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::ResultType;
use crate::cache::Entry;

/// What a leader's fetch produced, as the waiters see it.
#[derive(Clone)]
pub enum Outcome {
    /// A cacheable response, stored under the flight's key (or a variant of it).
    Stored(Arc<Entry>, ResultType),
    /// The response may not be shared (no-store, too large, Set-Cookie, Vary: *): fetch it yourself.
    NotShareable,
}

type Slot = watch::Receiver<Option<Outcome>>;

/// The flights in the air, by cache key.
#[derive(Default)]
pub struct Flights {
    inflight: Mutex<HashMap<String, Slot>>,
}

/// How a request takes part in a fetch.
pub enum Role {
    /// This request fetches; publish through the guard.
    Leader(Flight),
    /// Another request is fetching; wait on this.
    Follower(Waiter),
}

impl Flights {
    /// Joins the flight for `key`, starting one when there is none.
    pub fn join(self: &Arc<Self>, key: &str) -> Role {
        let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rx) = map.get(key) {
            return Role::Follower(Waiter { rx: rx.clone() });
        }
        let (tx, rx) = watch::channel(None);
        map.insert(key.to_owned(), rx);
        Role::Leader(Flight {
            flights: self.clone(),
            key: key.to_owned(),
            tx,
        })
    }

    /// Flights in the air (for tests and metrics).
    pub fn len(&self) -> usize {
        self.inflight.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// No flight in the air.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The leader's side: publish once; dropping ends the flight either way.
pub struct Flight {
    flights: Arc<Flights>,
    key: String,
    tx: watch::Sender<Option<Outcome>>,
}

impl Flight {
    /// Hands the outcome to every waiter.
    pub fn publish(self, outcome: Outcome) {
        let _ = self.tx.send(Some(outcome));
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        let mut map = self
            .flights
            .inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.remove(&self.key);
    }
}

/// A follower's side.
pub struct Waiter {
    rx: Slot,
}

impl Waiter {
    /// The leader's outcome, or None when it gave up or `limit` passed.
    pub async fn wait(mut self, limit: Duration) -> Option<Outcome> {
        let got = tokio::time::timeout(limit, self.rx.wait_for(|o| o.is_some())).await;
        match got {
            Ok(Ok(v)) => v.clone(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn entry() -> Arc<Entry> {
        Arc::new(Entry {
            status: http::StatusCode::OK,
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::from_static(b"x"),
            stored_at: SystemTime::now(),
            ttl: Duration::from_secs(1),
            origin_age: Duration::ZERO,
            stale_if_error: Duration::ZERO,
        })
    }

    #[tokio::test]
    async fn followers_get_the_leaders_outcome() {
        let flights = Arc::new(Flights::default());
        let Role::Leader(leader) = flights.join("k") else {
            panic!("first is leader")
        };
        let waiters: Vec<_> = (0..10)
            .map(|_| match flights.join("k") {
                Role::Follower(w) => tokio::spawn(w.wait(Duration::from_secs(5))),
                Role::Leader(_) => panic!("second leader"),
            })
            .collect();
        leader.publish(Outcome::Stored(entry(), ResultType::Miss));
        for w in waiters {
            assert!(matches!(w.await.unwrap(), Some(Outcome::Stored(..))));
        }
        assert!(flights.is_empty());
        assert!(matches!(flights.join("k"), Role::Leader(_)));
    }

    #[tokio::test]
    async fn a_dropped_leader_releases_waiters() {
        let flights = Arc::new(Flights::default());
        let leader = flights.join("k");
        let Role::Follower(w) = flights.join("k") else {
            panic!()
        };
        drop(leader);
        assert!(w.wait(Duration::from_secs(5)).await.is_none());
    }

    #[tokio::test]
    async fn waiting_is_bounded() {
        let flights = Arc::new(Flights::default());
        let _leader = flights.join("k");
        let Role::Follower(w) = flights.join("k") else {
            panic!()
        };
        assert!(w.wait(Duration::from_millis(50)).await.is_none());
    }
}
