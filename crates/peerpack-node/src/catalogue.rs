//! The catalogue: the store (SQLite, search index, blobs, record cache) and what the node
//! keeps in memory beside it (the names in dispute, the archives flagged unsafe). One part of
//! the node's [`Context`](crate::context::Context); it knows nothing of the services.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use peerpack_core::sync::lock;
use peerpack_core::{ContentId, PackageName};
use peerpack_net::protocol;
use peerpack_store::{Db, NameState, Store};

use crate::error::Error;

/// How long the indexer waits after a batched write before it commits, so that the writes
/// of a burst share one commit.
pub const INDEX_BATCH: std::time::Duration = std::time::Duration::from_millis(20);

/// Batched writes that left the search index behind, and how many of them a catch-up has
/// since applied: a catch-up reads `deferred` under the store lock with the changes it
/// applies, and raises `indexed` to it once committed. So `indexed < deferred` while a write
/// that returned is not searchable yet; reading them takes no lock.
#[derive(Debug, Default)]
struct IndexLag {
    deferred: AtomicU64,
    indexed: AtomicU64,
}

impl IndexLag {
    fn behind(&self) -> bool {
        self.indexed.load(Ordering::Acquire) < self.deferred.load(Ordering::Acquire)
    }
}

/// The store and its in-memory companions.
pub struct Catalogue {
    store: Arc<Mutex<Store>>,
    /// The search index, searched without taking the store lock.
    pub(crate) index: Arc<peerpack_store::SearchIndex>,
    /// The blob store (files are immutable once in place: readers need no store lock).
    pub(crate) blobs: peerpack_store::BlobStore,
    /// The record cache, read without the store lock.
    pub(crate) records: Arc<peerpack_store::RecordCache>,
    /// Names in dispute, for marking search results without a store look-up.
    disputes: Mutex<Disputes>,
    /// Content ids of archives flagged unsafe (as text), hidden from search.
    unsafe_archives: Mutex<HashSet<String>>,
    /// Whether any mirror rule exists: only then are new versions noted for the mirror task.
    pub(crate) mirroring: std::sync::atomic::AtomicBool,
    /// Names with versions new to the catalogue, for the mirror task.
    added: Mutex<BTreeSet<PackageName>>,
    added_notify: tokio::sync::Notify,
    /// Woken when a write left the search index behind ([`Catalogue::with_store_batched`]).
    index_due: Arc<tokio::sync::Notify>,
    /// How far the search index lags the catalogue: see [`IndexLag`].
    lag: Arc<IndexLag>,
    /// The network, once started: told to forget its cached DHT copies of changed names.
    net: std::sync::OnceLock<peerpack_net::NetHandle>,
    /// Where store lock waits and refusals are recorded, once the node's metrics exist.
    metrics: std::sync::OnceLock<crate::telemetry::NodeMetrics>,
}

impl Catalogue {
    /// "did you mean A or B?" for an unknown `name`, from the names the index knows; none
    /// when no name is near.
    pub async fn did_you_mean(&self, name: &str) -> Option<String> {
        if let Err(e) = self.index_current().await {
            tracing::debug!(error = %e, "search index did not catch up before a name suggestion");
        }
        let (index, n) = (self.index.clone(), name.to_owned());
        let names =
            crate::telemetry::blocking("index.similar_names", move || index.similar_names(&n, 3))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
        match names.as_slice() {
            [] => None,
            [one] => Some(format!("did you mean {one}?")),
            [rest @ .., last] => Some(format!("did you mean {} or {last}?", rest.join(", "))),
        }
    }

    /// Note names that gained versions, for the mirror task; nothing while nothing is
    /// mirrored.
    pub(crate) fn note_added(&self, names: impl IntoIterator<Item = PackageName>) {
        if !self.mirroring.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let mut added = lock(&self.added);
        let before = added.len();
        added.extend(names);
        if added.len() > before {
            self.added_notify.notify_one();
        }
    }

    /// Wait for names noted by [`Catalogue::note_added`], and take them.
    pub(crate) async fn next_added(&self) -> BTreeSet<PackageName> {
        loop {
            let taken = std::mem::take(&mut *lock(&self.added));
            if !taken.is_empty() {
                return taken;
            }
            self.added_notify.notified().await;
        }
    }

    /// Wrap an open store, reading the names in dispute and the unsafe archives.
    pub fn new(store: Store) -> Result<Self, Error> {
        let disputes = Disputes::load(&store.db)?;
        let mirroring = !store.db.mirrors()?.is_empty();
        let unsafe_archives = store
            .db
            .unsafe_archives()?
            .iter()
            .map(ToString::to_string)
            .collect();
        Ok(Self {
            index: store.index.clone(),
            blobs: store.blobs.clone(),
            records: store.records.clone(),
            store: Arc::new(Mutex::new(store)),
            disputes: Mutex::new(disputes),
            unsafe_archives: Mutex::new(unsafe_archives),
            mirroring: std::sync::atomic::AtomicBool::new(mirroring),
            added: Mutex::default(),
            added_notify: tokio::sync::Notify::new(),
            index_due: Arc::default(),
            lag: Arc::default(),
            net: std::sync::OnceLock::new(),
            metrics: std::sync::OnceLock::new(),
        })
    }

    /// Tell `net` from now on which names the catalogue changed.
    pub(crate) fn attach_net(&self, net: peerpack_net::NetHandle) {
        let _ = self.net.set(net);
    }

    /// Run `f` on the store in the blocking thread pool. The time spent waiting for the store
    /// lock is recorded apart (`peerpack.store.lock_wait`, by the calling module), and the
    /// work runs in a `store` span, a child of the caller's.
    #[track_caller]
    pub fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, Error> + Send + 'static,
    ) -> impl std::future::Future<Output = Result<T, Error>> + Send + 'static {
        self.store_call(f, false, std::panic::Location::caller())
    }

    /// [`Catalogue::with_store`] for writes that arrive from the network in numbers (gossip,
    /// sync pages, DHT records): what they change is in the database, the record cache and
    /// every read at once, but reaches the search index with the next batch
    /// ([`Catalogue::indexer`], within [`INDEX_BATCH`] plus a commit). A hop of gossip then
    /// waits for no index commit before it forwards, and a burst of records shares one.
    #[track_caller]
    pub fn with_store_batched<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, Error> + Send + 'static,
    ) -> impl std::future::Future<Output = Result<T, Error>> + Send + 'static {
        self.store_call(f, true, std::panic::Location::caller())
    }

    /// Bring the search index up to date whenever a batched write left it behind, at most
    /// once per [`INDEX_BATCH`]; until `stop`.
    pub async fn indexer(&self, stop: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = self.index_due.notified() => {}
            }
            tokio::time::sleep(INDEX_BATCH).await;
            // `with_store` catches the index up after its closure.
            if let Err(e) = self.with_store(|_| Ok(())).await {
                tracing::warn!(error = %e, "search index did not catch up with the catalogue");
            }
        }
    }

    /// Bring the search index up to date first if a batched write left it behind, so that
    /// a search sees every write that returned before it (read your writes). Costs nothing
    /// when the index is current.
    pub async fn index_current(&self) -> Result<(), Error> {
        if self.lag.behind() {
            self.with_store(|_| Ok(())).await?;
        }
        Ok(())
    }

    fn store_call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, Error> + Send + 'static,
        batched: bool,
        caller: &'static std::panic::Location<'static>,
    ) -> impl std::future::Future<Output = Result<T, Error>> + Send + 'static {
        let store = self.store.clone();
        let net = self.net.get().cloned();
        let wait_metric = self.metrics.get().cloned();
        let operation = caller_module(caller.file());
        let index_due = batched.then(|| self.index_due.clone());
        let lag = self.lag.clone();
        let span = tracing::info_span!("store", operation, lock_wait_us = tracing::field::Empty);
        async move {
            tokio::task::spawn_blocking(move || {
                let _entered = span.enter();
                let asked = std::time::Instant::now();
                let mut s = lock(&store);
                let waited = asked.elapsed();
                span.record("lock_wait_us", waited.as_micros() as u64);
                if let Some(m) = &wait_metric {
                    m.lock_wait(operation, waited);
                }
                // Store methods only note what they change; the index is brought up to date
                // below, its commit outside the lock.
                s.defer_index = true;
                let out = f(&mut s);
                // Whatever `f` changed reaches the record cache and every read now, and the
                // search index before this call returns (with the next batch, for a batched
                // write); a failure here is retried by the next write and at open.
                let work = if batched {
                    if let Err(e) = s.note_changes() {
                        tracing::warn!(error = %e, "catalogue changes not noted");
                    }
                    if s.index_behind() {
                        lag.deferred.fetch_add(1, Ordering::AcqRel);
                    }
                    None
                } else {
                    // Every deferred write so far happened under this lock, before this read.
                    let deferred = lag.deferred.load(Ordering::Acquire);
                    Some(s.index_work().map(|w| (w, deferred)))
                };
                s.defer_index = false;
                // Queued under the lock, so in commit order with the DHT copies that closures
                // store under it (`ingest`).
                let changed = s.take_changed();
                if let Some(net) = net.as_ref().filter(|_| !changed.is_empty()) {
                    forget_dht_copies(net, &changed);
                }
                let index = s.index.clone();
                // The commit's fsyncs (slow while other processes write) hold up no other
                // user of the store: only other index commits, which the index orders.
                drop(s);
                if let Some(work) = work {
                    let applied = work.and_then(|(w, deferred)| {
                        if let Some(w) = w {
                            w.apply(&index)?;
                        }
                        Ok(deferred)
                    });
                    match applied {
                        Ok(deferred) => {
                            lag.indexed.fetch_max(deferred, Ordering::AcqRel);
                        }
                        Err(e) => tracing::warn!(error = %e, "search index did not catch up with the catalogue"),
                    }
                }
                out
            })
            .await
            .inspect(|_| {
                if let Some(due) = &index_due {
                    due.notify_one();
                }
            })
            .map_err(|e| Error::task("store task", e))?
        }
    }

    /// Record store lock waits and refusals in `metrics` from now on.
    pub(crate) fn attach_metrics(&self, metrics: crate::telemetry::NodeMetrics) {
        let _ = self.metrics.set(metrics);
    }

    /// The node's metrics, once attached (they are, from the moment the node serves).
    pub(crate) fn metrics(&self) -> Option<&crate::telemetry::NodeMetrics> {
        self.metrics.get()
    }

    /// Run `f` on the names in dispute.
    pub fn with_disputes<T>(&self, f: impl FnOnce(&Disputes) -> T) -> T {
        f(&lock(&self.disputes))
    }

    /// Run `f` on the set of unsafe archives (content ids as text).
    pub fn with_unsafe<T>(&self, f: impl FnOnce(&HashSet<String>) -> T) -> T {
        f(&lock(&self.unsafe_archives))
    }

    /// Remember that the archive `id` is unsafe: search hides it from now on.
    pub fn flag_unsafe(&self, id: &ContentId) {
        lock(&self.unsafe_archives).insert(id.to_string());
    }

    /// Update the [`Disputes`] entries of `names` after the store changed them.
    pub async fn refresh_names(&self, names: Vec<PackageName>) {
        if names.is_empty() {
            return;
        }
        let updated = self
            .with_store(move |s| {
                let mut d = Disputes::default();
                d.update(&s.db, &names)?;
                Ok((names, d))
            })
            .await;
        match updated {
            Ok((names, fresh)) => {
                let mut d = lock(&self.disputes);
                for name in names {
                    let n = name.to_string();
                    d.contested.remove(&n);
                    d.disputed.remove(&n);
                    if fresh.contested.contains(&n) {
                        d.contested.insert(n);
                    } else if fresh.disputed.contains(&n) {
                        d.disputed.insert(n);
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not update the names in dispute"),
        }
    }

    /// Reload [`Disputes`] after the store changed them.
    pub async fn refresh_disputes(&self) {
        match self.with_store(|s| Disputes::load(&s.db)).await {
            Ok(d) => *lock(&self.disputes) = d,
            Err(e) => tracing::warn!(error = %e, "could not reload the names in dispute"),
        }
    }
}

/// Names in dispute, held in memory so search can mark them without touching the store.
#[derive(Debug, Default)]
pub struct Disputes {
    /// Names with no owner and several claimants.
    pub contested: BTreeSet<String>,
    /// Names with an owner and claims by other keys.
    pub disputed: BTreeSet<String>,
}

impl Disputes {
    /// Read them from the database.
    pub fn load(db: &Db) -> Result<Self, Error> {
        Ok(Self {
            contested: db
                .contested_names()?
                .into_iter()
                .map(|n| n.to_string())
                .collect(),
            disputed: db
                .disputed_names()?
                .into_iter()
                .map(|n| n.to_string())
                .collect(),
        })
    }
}

impl Disputes {
    /// Bring the entries of `names` in step with the database.
    pub fn update(&mut self, db: &Db, names: &[PackageName]) -> Result<(), Error> {
        for name in names {
            let state = db.name_state(name)?;
            let claimed = !db.claims(name)?.is_empty();
            let n = name.to_string();
            self.contested.remove(&n);
            self.disputed.remove(&n);
            match state {
                NameState::Contested => {
                    self.contested.insert(n);
                }
                NameState::Owned { .. } if claimed => {
                    self.disputed.insert(n);
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Make this node's DHT store hold exactly the catalogue's records for `names`, whose owner
/// changed: the previous owner's records are no longer served. Called with the store locked,
/// right after the change, so that the DHT store sees changes in the order they were committed.
pub fn replace_dht(
    net: &peerpack_net::NetHandle,
    s: &peerpack_store::Store,
    names: &[PackageName],
) -> Result<(), Error> {
    if names.is_empty() {
        return Ok(());
    }
    let mut exact = Vec::with_capacity(names.len());
    let mut prefixes = Vec::with_capacity(names.len());
    let mut records = Vec::new();
    for name in names {
        if let Some(idx) = s.db.index_record(name)? {
            records.push((protocol::index_key(name), idx.encode()));
        }
        for r in s.db.versions(name)? {
            records.push((protocol::record_key(name, r.version()), r.encode()));
        }
        let key = protocol::index_key(name);
        let mut prefix = key.clone();
        prefix.push(b'/');
        exact.push(key);
        prefixes.push(prefix);
    }
    net.send_blocking(peerpack_net::Command::ReplaceRecords {
        exact,
        prefixes,
        records,
    })?;
    Ok(())
}

/// Make the network forget its cached DHT copies of `names`' records (index and versions):
/// the catalogue changed them, and the next read goes to the store.
fn forget_dht_copies(net: &peerpack_net::NetHandle, names: &[PackageName]) {
    let mut exact = Vec::with_capacity(names.len());
    let mut prefixes = Vec::with_capacity(names.len());
    for name in names {
        let key = peerpack_net::protocol::index_key(name);
        let mut prefix = key.clone();
        prefix.push(b'/');
        exact.push(key);
        prefixes.push(prefix);
    }
    let _ = net.send_blocking(peerpack_net::Command::ReplaceRecords {
        exact,
        prefixes,
        records: Vec::new(),
    });
}

/// The module a source file holds (`crates/peerpack-node/src/install/plan.rs` → `install/plan`),
/// to name a store operation by its caller.
fn caller_module(file: &'static str) -> &'static str {
    let rel = file.rsplit_once("/src/").map_or(file, |(_, rel)| rel);
    rel.strip_suffix(".rs").unwrap_or(rel)
}
