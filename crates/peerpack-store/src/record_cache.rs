//! A hot in-memory cache of package records, in front of the database.
//!
//! It maps a package name to all its known versions (highest first), the shape `info` and
//! dependency resolution ask for. Two generations approximate LRU at O(1): hits in the old
//! generation move to the new one, and when the new one is full the old one is dropped.
//! Entries are filled only while the store is locked and invalidated by every insert that
//! changes a name, so a reader never sees versions older than the database.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use peerpack_core::{PackageName, PackageRecord};

/// The versions of one name, highest first.
pub type Versions = Arc<[PackageRecord]>;

/// Default number of names kept per generation.
pub const DEFAULT_CAPACITY: usize = 4096;

/// Hit and miss counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CacheStats {
    /// Lookups answered from memory.
    pub hits: u64,
    /// Lookups that went to the database.
    pub misses: u64,
    /// Names held now.
    pub entries: u64,
}

#[derive(Default)]
struct Generations {
    new: HashMap<PackageName, Versions>,
    old: HashMap<PackageName, Versions>,
}

/// The record cache.
pub struct RecordCache {
    generations: Mutex<Generations>,
    capacity: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for RecordCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordCache")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for RecordCache {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl RecordCache {
    /// A cache keeping up to about `capacity` names hot.
    pub fn new(capacity: usize) -> Self {
        Self {
            generations: Mutex::new(Generations::default()),
            capacity: capacity.max(1),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        peerpack_core::sync::lock(&self.generations)
    }

    /// The cached versions of `name`, counting a hit or a miss.
    pub fn get(&self, name: &PackageName) -> Option<Versions> {
        let mut g = self.lock();
        let found = match g.new.get(name) {
            Some(v) => Some(v.clone()),
            None => g.old.remove(name).inspect(|v| {
                let v = v.clone();
                Self::insert_new(&mut g, self.capacity, name.clone(), v);
            }),
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn insert_new(g: &mut Generations, capacity: usize, name: PackageName, v: Versions) {
        if g.new.len() >= capacity {
            g.old = std::mem::take(&mut g.new);
        }
        g.new.insert(name, v);
    }

    /// Remember the versions of `name`. Call only with the store locked.
    pub(crate) fn put(&self, name: PackageName, versions: Versions) {
        let mut g = self.lock();
        g.old.remove(&name);
        Self::insert_new(&mut g, self.capacity, name, versions);
    }

    /// Forget `name` (its versions changed).
    pub(crate) fn invalidate(&self, name: &PackageName) {
        let mut g = self.lock();
        g.new.remove(name);
        g.old.remove(name);
    }

    /// Counters and size.
    pub fn stats(&self) -> CacheStats {
        let g = self.lock();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: (g.new.len() + g.old.len()) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(i: usize) -> PackageName {
        format!("p{i}").parse().unwrap()
    }

    #[test]
    fn hot_names_survive_and_counters_count() {
        let cache = RecordCache::new(2);
        let empty: Versions = Arc::from(Vec::new());
        cache.put(name(0), empty.clone());
        cache.put(name(1), empty.clone());
        assert!(cache.get(&name(0)).is_some());
        // The third name turns the first generation old; a hit brings a name back.
        cache.put(name(2), empty.clone());
        assert!(cache.get(&name(1)).is_some());
        cache.put(name(3), empty.clone());
        cache.put(name(4), empty);
        assert!(cache.get(&name(1)).is_some(), "a recently used name stays");
        assert!(cache.get(&name(9)).is_none());
        cache.invalidate(&name(1));
        assert!(cache.get(&name(1)).is_none());
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses), (3, 2));
    }
}
