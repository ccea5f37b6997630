//! The Kademlia record store: durable state behind a bounded cache.
//!
//! Kademlia calls its store synchronously from the event loop, so the store must answer
//! without waiting on anything slow. [`DhtStore`] keeps in memory only:
//! - a bounded LRU cache of records ([`RECORD_CACHE`] entries) and of provider lists
//!   ([`PROVIDER_CACHE`] keys);
//! - the set of keys this node provides itself (one per archive it holds).
//!
//! Everything else lives behind a [`DhtBacking`]: records are read from the node's catalogue
//! on a cache miss (a point read), and provider records other peers add are written through to
//! durable storage by the backing, which must not block (it queues writes). So memory does not
//! grow with the catalogue, and a restarted node still answers for the records and provider
//! records it held.
//!
//! Kademlia's own periodic jobs (replication, republication, provider re-announcement) iterate
//! the whole store from the event loop; they are switched off (see `behaviour.rs`) and the
//! node republishes on its own schedule instead. [`DhtStore::records`] therefore lists only
//! the cached records.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant, SystemTime};

use libp2p::kad::store::{Error as StoreError, RecordStore, Result as StoreResult};
use libp2p::kad::{ProviderRecord, Record, RecordKey};
use libp2p::{Multiaddr, PeerId};
use lru::LruCache;

/// Records kept in memory.
pub const RECORD_CACHE: usize = 4096;
/// Keys whose provider lists are kept in memory.
pub const PROVIDER_CACHE: usize = 4096;
/// Most provider records kept per key.
pub const MAX_PROVIDERS_PER_KEY: usize = 64;
/// Most provider records other peers added that a node keeps, by default
/// ([`DhtStore::new`]). Each peer is also held to a quota per hour, but one operator can run
/// many identities: this bounds what they can make the node store (about 200 bytes a row).
pub const DEFAULT_MAX_PROVIDER_RECORDS: u64 = 100_000;
/// Largest record value accepted.
pub const MAX_VALUE_BYTES: usize = crate::behaviour::KAD_MAX_PACKET;

/// A provider record as durable storage keeps it: the expiry is wall-clock time, so that it
/// means the same after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredProvider {
    /// The providing peer.
    pub provider: PeerId,
    /// Its addresses, as it announced them (already filtered by the address policy).
    pub addresses: Vec<Multiaddr>,
    /// When the record expires.
    pub expires: SystemTime,
}

/// Durable state behind the [`DhtStore`]. Called from the event loop: every method must answer
/// quickly. Reads are point reads; writes are queued.
pub trait DhtBacking: Send + 'static {
    /// The value held under `key`, if this node holds one (records the node accepted).
    fn record(&mut self, key: &[u8]) -> Option<Vec<u8>>;
    /// The unexpired provider records other peers added for `key`.
    fn providers(&mut self, key: &[u8]) -> Vec<StoredProvider>;
    /// Keep a provider record another peer added (replacing its earlier one for `key`).
    fn add_provider(&mut self, key: &[u8], record: StoredProvider);
    /// Forget `provider`'s record for `key`.
    fn remove_provider(&mut self, key: &[u8], provider: &PeerId);
    /// The keys this node provides itself (its archives), read once at start.
    fn provided(&mut self) -> Vec<Vec<u8>>;
    /// How many provider records from other peers are held, never fewer than there will be
    /// once queued writes are done.
    fn held(&mut self) -> u64;
}

/// A backing that keeps everything in memory, for a network without durable state (the
/// network crate's own tests and tools).
#[derive(Debug, Default)]
pub struct MemoryBacking {
    records: std::collections::HashMap<Vec<u8>, Vec<u8>>,
    providers: std::collections::HashMap<Vec<u8>, Vec<StoredProvider>>,
}

impl DhtBacking for MemoryBacking {
    fn record(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.records.get(key).cloned()
    }

    fn providers(&mut self, key: &[u8]) -> Vec<StoredProvider> {
        let now = SystemTime::now();
        self.providers
            .get(key)
            .map(|ps| ps.iter().filter(|p| p.expires > now).cloned().collect())
            .unwrap_or_default()
    }

    fn add_provider(&mut self, key: &[u8], record: StoredProvider) {
        let list = self.providers.entry(key.to_vec()).or_default();
        list.retain(|p| p.provider != record.provider);
        list.push(record);
    }

    fn remove_provider(&mut self, key: &[u8], provider: &PeerId) {
        if let Some(list) = self.providers.get_mut(key) {
            list.retain(|p| &p.provider != provider);
        }
    }

    fn provided(&mut self) -> Vec<Vec<u8>> {
        Vec::new()
    }

    fn held(&mut self) -> u64 {
        self.providers.values().map(|l| l.len() as u64).sum()
    }
}

impl MemoryBacking {
    /// Hold `value` under `key` (what a node's catalogue would hold).
    pub fn insert_record(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.records.insert(key, value);
    }
}

/// Counters of the store, for status and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DhtStoreStats {
    /// Record reads answered from the cache.
    pub record_hits: u64,
    /// Record reads that went to the backing.
    pub record_misses: u64,
    /// Provider reads answered from the cache.
    pub provider_hits: u64,
    /// Provider reads that went to the backing.
    pub provider_misses: u64,
    /// Keys this node provides.
    pub provided: u64,
    /// Provider records from other peers held.
    pub provider_records: u64,
    /// Most provider records from other peers kept.
    pub max_provider_records: u64,
}

/// The Kademlia record store of a node: see the module documentation.
///
/// Kademlia reads through `&self`; a read that misses the cache fills it, so the cache and the
/// backing sit in a `RefCell` (the store lives in the event loop only).
pub struct DhtStore {
    local: PeerId,
    provided: HashSet<RecordKey>,
    max_provider_records: u64,
    inner: RefCell<Inner>,
}

struct Inner {
    backing: Box<dyn DhtBacking>,
    records: LruCache<RecordKey, Record>,
    providers: LruCache<RecordKey, Vec<ProviderRecord>>,
    stats: DhtStoreStats,
}

impl std::fmt::Debug for DhtStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhtStore")
            .field("local", &self.local)
            .field("stats", &self.stats())
            .finish()
    }
}

/// `t` as an `Instant`, for Kademlia's expiry checks.
fn to_instant(t: SystemTime) -> Instant {
    let now_sys = SystemTime::now();
    let now = Instant::now();
    match t.duration_since(now_sys) {
        Ok(ahead) => now + ahead,
        Err(behind) => now
            .checked_sub(behind.duration())
            .unwrap_or_else(|| now.checked_sub(Duration::from_secs(1)).unwrap_or(now)),
    }
}

/// `t` as wall-clock time, for durable storage.
fn to_system(t: Instant) -> SystemTime {
    let now = Instant::now();
    let now_sys = SystemTime::now();
    match t.checked_duration_since(now) {
        Some(ahead) => now_sys + ahead,
        None => now_sys - now.duration_since(t),
    }
}

fn cache_size(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

impl Inner {
    /// The provider list of `key` from the cache, loading it from the backing on a miss.
    fn provider_list(&mut self, key: &RecordKey) -> &mut Vec<ProviderRecord> {
        if self.providers.contains(key) {
            self.stats.provider_hits += 1;
        } else {
            self.stats.provider_misses += 1;
            let loaded = self
                .backing
                .providers(key.as_ref())
                .into_iter()
                .map(|p| ProviderRecord {
                    key: key.clone(),
                    provider: p.provider,
                    expires: Some(to_instant(p.expires)),
                    addresses: p.addresses,
                })
                .collect();
            self.providers.put(key.clone(), loaded);
        }
        self.providers.get_or_insert_mut(key.clone(), Vec::new)
    }
}

impl DhtStore {
    /// A store for the node `local`, over `backing`, keeping at most `max_provider_records`
    /// provider records from other peers.
    pub fn new(local: PeerId, mut backing: Box<dyn DhtBacking>, max_provider_records: u64) -> Self {
        let provided: HashSet<RecordKey> = backing
            .provided()
            .into_iter()
            .map(RecordKey::from)
            .collect();
        Self {
            local,
            provided,
            max_provider_records,
            inner: RefCell::new(Inner {
                backing,
                records: LruCache::new(cache_size(RECORD_CACHE)),
                providers: LruCache::new(cache_size(PROVIDER_CACHE)),
                stats: DhtStoreStats::default(),
            }),
        }
    }

    /// The counters.
    pub fn stats(&self) -> DhtStoreStats {
        let mut inner = self.inner.borrow_mut();
        DhtStoreStats {
            provided: self.provided.len() as u64,
            provider_records: inner.backing.held(),
            max_provider_records: self.max_provider_records,
            ..inner.stats
        }
    }

    /// Forget the cached records under `exact` keys and under keys starting with one of
    /// `prefixes`: the node changed them in its catalogue, so the next read goes to the
    /// backing.
    pub fn forget(&mut self, exact: &[Vec<u8>], prefixes: &[Vec<u8>]) {
        let inner = self.inner.get_mut();
        for key in exact {
            inner.records.pop(&RecordKey::new(key));
        }
        if prefixes.is_empty() {
            return;
        }
        let stale: Vec<RecordKey> = inner
            .records
            .iter()
            .map(|(k, _)| k)
            .filter(|k| prefixes.iter().any(|p| k.as_ref().starts_with(p)))
            .cloned()
            .collect();
        for key in stale {
            inner.records.pop(&key);
        }
    }

    /// The keys this node provides itself.
    pub fn provided_keys(&self) -> impl Iterator<Item = &RecordKey> {
        self.provided.iter()
    }

    fn local_record(&self, key: &RecordKey) -> ProviderRecord {
        ProviderRecord {
            key: key.clone(),
            provider: self.local,
            expires: None,
            addresses: Vec::new(),
        }
    }
}

impl RecordStore for DhtStore {
    type RecordsIter<'a> = std::vec::IntoIter<Cow<'a, Record>>;
    type ProvidedIter<'a> = std::vec::IntoIter<Cow<'a, ProviderRecord>>;

    fn get(&self, k: &RecordKey) -> Option<Cow<'_, Record>> {
        let mut inner = self.inner.borrow_mut();
        if let Some(r) = inner.records.get(k) {
            let r = r.clone();
            inner.stats.record_hits += 1;
            return Some(Cow::Owned(r));
        }
        inner.stats.record_misses += 1;
        let value = inner.backing.record(k.as_ref())?;
        let record = Record::new(k.clone(), value);
        inner.records.put(k.clone(), record.clone());
        Some(Cow::Owned(record))
    }

    fn put(&mut self, r: Record) -> StoreResult<()> {
        if r.value.len() > MAX_VALUE_BYTES {
            return Err(StoreError::ValueTooLarge);
        }
        self.inner.get_mut().records.put(r.key.clone(), r);
        Ok(())
    }

    fn remove(&mut self, k: &RecordKey) {
        self.inner.get_mut().records.pop(k);
    }

    fn records(&self) -> Self::RecordsIter<'_> {
        self.inner
            .borrow()
            .records
            .iter()
            .map(|(_, r)| Cow::Owned(r.clone()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    fn add_provider(&mut self, record: ProviderRecord) -> StoreResult<()> {
        if record.provider == self.local {
            self.provided.insert(record.key);
            return Ok(());
        }
        let inner = self.inner.get_mut();
        let held = inner.backing.held();
        let list = inner.provider_list(&record.key);
        let key_full = list.len() >= MAX_PROVIDERS_PER_KEY;
        // A new record must fit under both bounds; a provider's new record for a key it
        // already provides replaces the old one, so it always fits.
        match list.iter_mut().find(|p| p.provider == record.provider) {
            Some(existing) => *existing = record.clone(),
            None if held >= self.max_provider_records => return Err(StoreError::MaxRecords),
            None if key_full => return Err(StoreError::MaxProvidedKeys),
            None => list.push(record.clone()),
        }
        let expires = record
            .expires
            .map(to_system)
            .unwrap_or_else(|| SystemTime::now() + DEFAULT_PROVIDER_TTL);
        inner.backing.add_provider(
            record.key.as_ref(),
            StoredProvider {
                provider: record.provider,
                addresses: record.addresses,
                expires,
            },
        );
        Ok(())
    }

    fn providers(&self, key: &RecordKey) -> Vec<ProviderRecord> {
        let mut out = self.inner.borrow_mut().provider_list(key).clone();
        if self.provided.contains(key) {
            out.push(self.local_record(key));
        }
        out
    }

    fn provided(&self) -> Self::ProvidedIter<'_> {
        self.provided
            .iter()
            .map(|k| Cow::Owned(self.local_record(k)))
            .collect::<Vec<_>>()
            .into_iter()
    }

    fn remove_provider(&mut self, k: &RecordKey, p: &PeerId) {
        if p == &self.local {
            self.provided.remove(k);
            return;
        }
        let inner = self.inner.get_mut();
        if let Some(list) = inner.providers.get_mut(k) {
            list.retain(|r| &r.provider != p);
        }
        inner.backing.remove_provider(k.as_ref(), p);
    }
}

/// How long a provider record without an expiry is kept (Kademlia's default record TTL for
/// providers).
pub const DEFAULT_PROVIDER_TTL: Duration = Duration::from_secs(48 * 3600);
