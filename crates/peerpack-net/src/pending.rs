//! [`Pending`]: a table of the requests the event loop is waiting on, each with a deadline.
//!
//! Every request the loop starts for a caller (a DHT query, a sync or blob request, an
//! announcement waiting for subscribers) sits in one of these tables until libp2p answers it
//! or its deadline passes. The loop's tick takes the expired entries out with
//! [`Pending::expire`] and answers their callers, so none waits forever.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

/// Pending entries by key (a `kad::QueryId`, an `OutboundRequestId`, a counter), each with
/// its deadline. Sweeps return entries in the order they were inserted.
pub(crate) struct Pending<K, V> {
    entries: HashMap<K, Entry<V>>,
    /// The insertion number of the next entry.
    next: u64,
}

struct Entry<V> {
    value: V,
    deadline: Instant,
    order: u64,
}

impl<K, V> Default for Pending<K, V> {
    fn default() -> Self {
        Self {
            entries: HashMap::new(),
            next: 0,
        }
    }
}

impl<K: Eq + Hash, V> Pending<K, V> {
    /// Wait for `key` until `deadline`. An entry already under `key` is replaced (keys are
    /// libp2p's ids or counters, so that does not happen).
    pub(crate) fn insert(&mut self, key: K, value: V, deadline: Instant) {
        let order = self.next;
        self.next += 1;
        self.entries.insert(
            key,
            Entry {
                value,
                deadline,
                order,
            },
        );
    }

    /// The entry under `key`, to add to it.
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.entries.get_mut(key).map(|e| &mut e.value)
    }

    /// Take the entry under `key` out: it is being answered.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        self.entries.remove(key).map(|e| e.value)
    }

    /// Take out every entry whose deadline is `now` or earlier, oldest first.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<(K, V)> {
        let mut expired: Vec<_> = self.entries.extract_if(|_, e| e.deadline <= now).collect();
        expired.sort_by_key(|(_, e)| e.order);
        expired.into_iter().map(|(k, e)| (k, e.value)).collect()
    }

    /// Take out every entry with its deadline, oldest first (to retry them all).
    pub(crate) fn drain(&mut self) -> Vec<(K, V, Instant)> {
        let mut all: Vec<_> = self.entries.drain().collect();
        all.sort_by_key(|(_, e)| e.order);
        all.into_iter()
            .map(|(k, e)| (k, e.value, e.deadline))
            .collect()
    }

    /// Every value waiting.
    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.values().map(|e| &e.value)
    }

    /// How many entries are waiting.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn nothing_expires_before_its_deadline() {
        let now = Instant::now();
        let mut p = Pending::default();
        p.insert(1, "a", now + Duration::from_secs(10));
        p.insert(2, "b", now + Duration::from_secs(20));
        assert!(p.expire(now).is_empty());
        assert!(p.expire(now + Duration::from_millis(9_999)).is_empty());
        assert_eq!(p.len(), 2);
        assert_eq!(p.get_mut(&1), Some(&mut "a"));
    }

    #[test]
    fn entries_expire_at_their_deadline_oldest_first() {
        let now = Instant::now();
        let mut p = Pending::default();
        // Inserted in this order, with keys whose hash order is unrelated.
        for (k, secs) in [(30, 2), (10, 1), (20, 2), (40, 60)] {
            p.insert(k, k * 2, now + Duration::from_secs(secs));
        }
        // A deadline equal to `now` has passed.
        assert_eq!(
            p.expire(now + Duration::from_secs(2)),
            [(30, 60), (10, 20), (20, 40)]
        );
        assert_eq!(p.len(), 1);
        assert!(p.expire(now + Duration::from_secs(59)).is_empty());
        assert_eq!(p.expire(now + Duration::from_secs(61)), [(40, 80)]);
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn removed_entries_never_expire() {
        let now = Instant::now();
        let mut p = Pending::default();
        p.insert("q", 1, now);
        p.insert("r", 2, now);
        assert_eq!(p.remove(&"q"), Some(1));
        assert_eq!(p.remove(&"q"), None);
        assert_eq!(p.get_mut(&"q"), None);
        assert_eq!(p.expire(now + Duration::from_secs(1)), [("r", 2)]);
        assert_eq!(p.remove(&"r"), None);
    }

    #[test]
    fn get_mut_changes_the_entry_in_place() {
        let now = Instant::now();
        let mut p = Pending::default();
        p.insert(7, vec![1], now + Duration::from_secs(1));
        if let Some(v) = p.get_mut(&7) {
            v.push(2);
        }
        assert_eq!(p.remove(&7), Some(vec![1, 2]));
    }

    #[test]
    fn drain_returns_everything_in_insertion_order_with_deadlines() {
        let now = Instant::now();
        let mut p = Pending::default();
        let late = now + Duration::from_secs(5);
        p.insert(9, 'x', late);
        p.insert(3, 'y', now);
        assert_eq!(p.drain(), [(9, 'x', late), (3, 'y', now)]);
        assert_eq!(p.len(), 0);
        // Re-inserted entries keep their relative order.
        p.insert(3, 'y', now);
        p.insert(9, 'x', late);
        assert_eq!(p.drain(), [(3, 'y', now), (9, 'x', late)]);
    }
}
