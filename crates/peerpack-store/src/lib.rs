//! peerpack's durable state.
//!
//! A node's data directory holds three things, all managed here:
//! - `peerpack.db`: the SQLite database, the single source of truth for records and owners;
//! - `index/`: the tantivy search index, derived from the database and rebuilt from it
//!   whenever it is missing, damaged or out of step;
//! - `blobs/`: the content-addressed archives.
//!
//! No networking happens here.
//!
//! # Layout
//! - [`db`]: SQLite (WAL, migrations tracked by `user_version`), name ownership, records,
//!   peers.
//! - [`names`] (in [`db`]): who owns a name (pinned, curated, first seen), claims by other
//!   keys, contested names.
//! - [`search`]: the tantivy index, BM25 ranking, category and tag filters.
//! - [`blobs`]: atomic, BLAKE3-verified blob files.
//! - [`unpacked`]: the installed archives, also kept unpacked beside their blobs, so that a
//!   reinstall places files instead of unpacking.
//! - [`cache`]: archive use times, installs and pins (what garbage collection keeps).
//! - [`peers`] (in [`db`]): peers met and the archives they provide.
//! - [`record_cache`]: the hot in-memory cache of package records.
//! - [`Store`]: the three together, keeping the index in step with the database.

pub mod blobs;
pub mod cache;
pub mod db;
pub mod dht;
pub mod mirrors;
pub mod record_cache;
pub mod search;
pub mod unpacked;

use std::path::{Path, PathBuf};

use peerpack_core::{PackageName, PackageRecord};

pub use blobs::BlobStore;
pub use db::{Db, Inserted};
pub use db::{names, peers};
pub use mirrors::Mirror;
pub use names::{Claim, NameState, OwnerSource};
pub use peers::PeerRow;
pub use record_cache::{CacheStats, RecordCache};
pub use search::{Hit, SearchIndex, SearchQuery};

/// Changes for the search index, read from the catalogue by [`Store::index_work`].
#[derive(Debug)]
#[must_use = "the index lacks these changes until they are applied"]
pub struct IndexWork {
    latest: Vec<PackageRecord>,
    gone: Vec<PackageName>,
    last: u64,
    names: usize,
}

impl IndexWork {
    /// Apply the changes to `index` and commit; answers how many names changed. Work read
    /// earlier than what the index already applied is skipped (a later read holds newer
    /// records), so concurrent catch-ups may apply in any order.
    pub fn apply(self, index: &SearchIndex) -> Result<usize, Error> {
        index.apply(&self.latest, &self.gone, self.last)?;
        Ok(self.names)
    }

    /// The last catalogue change it covers.
    pub fn last(&self) -> u64 {
        self.last
    }
}

/// File name of the database inside a data directory.
pub const DB_FILE: &str = "peerpack.db";

/// The names `owner` owns in the store in `dir` (its first-seen owner), read without opening
/// the store for writing: safe beside a running node. An empty list when there is no store.
pub fn names_owned_by(dir: &Path, owner: &peerpack_core::PublicKey) -> Result<Vec<String>, Error> {
    let path = dir.join(DB_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let err = |source| {
        Error::Db(db::Error::Sqlite {
            path: path.clone(),
            source,
        })
    };
    let conn = rusqlite::Connection::open_with_flags(
        &path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(err)?;
    let mut stmt = conn
        .prepare("SELECT name FROM packages WHERE owner = ?1 ORDER BY name")
        .map_err(err)?;
    let names = stmt
        .query_map([owner.as_bytes().as_slice()], |r| r.get::<_, String>(0))
        .map_err(err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    Ok(names)
}
/// Directory of the search index inside a data directory.
pub const INDEX_DIR: &str = "index";
/// Directory of the blob store inside a data directory.
pub const BLOBS_DIR: &str = "blobs";

/// Errors of the store as a whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database.
    #[error(transparent)]
    Db(#[from] db::Error),
    /// The search index.
    #[error(transparent)]
    Search(#[from] search::Error),
    /// The blob store.
    #[error(transparent)]
    Blobs(#[from] blobs::Error),
    /// Another process holds the store.
    #[error(
        "the store in {} is in use by another peerpack process{} (a node running with this data directory?); stop it, or use another --data-dir",
        path.display(),
        holder.as_deref().map(|h| format!(" ({h})")).unwrap_or_default()
    )]
    InUse {
        /// The data directory.
        path: PathBuf,
        /// What the holder wrote into the lock file: its pid, and its API address once it
        /// serves one.
        holder: Option<String>,
    },
    /// The data directory itself.
    #[error("data directory {}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The database, search index and blob store of one data directory.
pub struct Store {
    /// The database.
    pub db: Db,
    /// The search index. Shared: searches need no lock on the store.
    pub index: std::sync::Arc<SearchIndex>,
    /// The blob store.
    pub blobs: BlobStore,
    /// The hot record cache. Shared: lookups that hit need no lock on the store.
    pub records: std::sync::Arc<RecordCache>,
    /// Names changed since [`Store::take_changed`] last ran (the node forgets its DHT copies).
    changed: std::sync::Mutex<Vec<PackageName>>,
    /// The last catalogue change whose names were noted: dropped from the record cache and
    /// queued for [`Store::take_changed`]. The index may lag behind it (see
    /// [`Store::defer_index`]).
    noted: std::sync::atomic::AtomicU64,
    /// While set, writes note their changes but leave the search index for a later
    /// [`Store::catch_up`], so that many writes share one index commit.
    pub defer_index: bool,
    /// [`LOCK_FILE`], locked for as long as the store is open.
    _lock: std::fs::File,
}

/// The file a store locks (an advisory, exclusive lock) so that one process at a time opens a
/// data directory's store.
pub const LOCK_FILE: &str = "store.lock";

/// Whether a process holds the store in `dir` open now, and if so who it says it is ("pid N,
/// API URL"). Asks the lock itself, not `node.json`: a file left by a dead process says
/// nothing.
pub fn holder(dir: &Path) -> Option<String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join(LOCK_FILE))
        .ok()?;
    match file.try_lock() {
        Ok(()) => None,
        Err(_) => Some(
            std::fs::read_to_string(dir.join(LOCK_FILE))
                .ok()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty() && t.len() < 512)
                .unwrap_or_else(|| "a running process".to_owned()),
        ),
    }
}

impl Store {
    /// Open the store in `dir`, creating what is missing. A search index that cannot be
    /// opened, or that disagrees with the database about how many packages there are, is
    /// rebuilt from the database.
    #[tracing::instrument(skip_all, fields(dir = %dir.display()))]
    pub fn open(dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_owned(),
            source,
        })?;
        // Two writers would each trust their own caches and index: one process at a time.
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(|source| Error::Io {
                path: dir.join(LOCK_FILE),
                source,
            })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(dir.join(LOCK_FILE))
                    .ok()
                    .map(|t| t.trim().to_owned())
                    .filter(|t| !t.is_empty() && t.len() < 512);
                return Err(Error::InUse {
                    path: dir.to_owned(),
                    holder,
                });
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(Error::Io {
                    path: dir.join(LOCK_FILE),
                    source,
                });
            }
        }
        // Say who holds it, for whoever is refused next (the lock is on the open file, not
        // its contents).
        Self::describe_holder(&lock, &format!("pid {}", std::process::id()));
        let db = Db::open(&dir.join(DB_FILE))?;
        let blobs = BlobStore::open(&dir.join(BLOBS_DIR))?;
        let index_dir = dir.join(INDEX_DIR);
        let index = match SearchIndex::open(&index_dir) {
            Ok(index) => index,
            Err(e) => {
                tracing::warn!(error = %e, "search index unusable; rebuilding it from the database");
                let _ = std::fs::remove_dir_all(&index_dir);
                SearchIndex::open(&index_dir)?
            }
        };
        let mut store = Self {
            db,
            index: std::sync::Arc::new(index),
            blobs,
            records: std::sync::Arc::new(RecordCache::default()),
            changed: std::sync::Mutex::default(),
            noted: std::sync::atomic::AtomicU64::new(0),
            defer_index: false,
            _lock: lock,
        };
        // Catch up with what the catalogue changed since the index's last commit (a crash
        // between the two commits); an index that cannot say, or that still disagrees about
        // the number of packages, is rebuilt. The index is derived data: one that cannot
        // catch up for any reason is thrown away and rebuilt from the database.
        if let Err(e) = store.index_at_open() {
            tracing::warn!(error = %e, "search index could not catch up; rebuilding it from the database");
            // Close the on-disk index (and its writer's lock) before removing it.
            drop(std::mem::replace(
                &mut store.index,
                std::sync::Arc::new(SearchIndex::in_memory()?),
            ));
            let _ = std::fs::remove_dir_all(&index_dir);
            store.index = std::sync::Arc::new(SearchIndex::open(&index_dir)?);
            store.rebuild_index()?;
        }
        Ok(store)
    }

    /// Bring the index up to date with the database at open (see [`Store::open`]).
    fn index_at_open(&self) -> Result<(), Error> {
        match self.index.applied() {
            Some(_) => {
                let applied = self.catch_up()?;
                if applied > 0 {
                    tracing::info!(names = applied, "search index caught up with the catalogue");
                }
                if self.index.len() != self.db.package_count()? {
                    tracing::warn!("search index disagrees with the catalogue; rebuilding it");
                    self.rebuild_index()?;
                }
            }
            None => {
                self.rebuild_index()?;
            }
        }
        Ok(())
    }

    /// Write `holder` (who has the store open) into the lock file, for the message of a
    /// process refused next. Best effort: the lock itself is what excludes.
    fn describe_holder(mut lock: &std::fs::File, holder: &str) {
        use std::io::{Seek, Write};
        let _ = lock
            .set_len(0)
            .and_then(|()| lock.seek(std::io::SeekFrom::Start(0)))
            .and_then(|_| lock.write_all(holder.as_bytes()));
    }

    /// Record, in the lock file, the API address the holder serves (see [`Error::InUse`]).
    pub fn announce_api(&self, api: &str) {
        Self::describe_holder(
            &self._lock,
            &format!("pid {}, API {api}", std::process::id()),
        );
    }

    /// Recreate the search index from the database.
    pub fn rebuild_index(&self) -> Result<usize, Error> {
        let last = self.db.last_search_change()?;
        let latest = self.db.latest_records()?;
        self.index.rebuild(&latest, Some(last))?;
        self.db.prune_search_changes(last)?;
        tracing::info!(packages = latest.len(), "rebuilt search index");
        Ok(latest.len())
    }

    /// Apply to the search index, and to the record cache, every catalogue change it has not
    /// applied yet. Answers how many names changed. Every write through the store calls it;
    /// so does [`Store::open`], for changes a crash kept from the index.
    ///
    /// With [`Store::defer_index`] set it only notes the changes ([`Store::note_changes`]),
    /// and answers 0.
    pub fn catch_up(&self) -> Result<usize, Error> {
        if self.defer_index {
            self.note_changes()?;
            return Ok(0);
        }
        let Some(work) = self.index_work()? else {
            return Ok(0);
        };
        let last = work.last();
        let names = work.apply(&self.index)?;
        self.db.prune_search_changes(last)?;
        Ok(names)
    }

    /// What the search index lacks of the catalogue: the latest record of every name changed
    /// since the index's last applied change (noting those changes, as
    /// [`Store::note_changes`] does). Answers `None` when the index is current, or after
    /// rebuilding an index whose position is unknown.
    ///
    /// Reading it needs the store; applying it ([`IndexWork::apply`]) needs only the index,
    /// so the commit and its fsyncs can run without holding up the store's other users.
    pub fn index_work(&self) -> Result<Option<IndexWork>, Error> {
        self.note_changes()?;
        let Some(applied) = self.index.applied() else {
            self.rebuild_index()?;
            return Ok(None);
        };
        let (names, last) = self.db.search_changes_after(applied)?;
        if names.is_empty() {
            return Ok(None);
        }
        // What earlier work applied is no longer needed.
        self.db.prune_search_changes(applied)?;
        let mut latest = Vec::new();
        let mut gone = Vec::new();
        for name in &names {
            let Ok(name) = PackageName::new(name) else {
                continue;
            };
            match self.db.latest(&name)? {
                Some(r) => latest.push(r),
                None => gone.push(name),
            }
        }
        Ok(Some(IndexWork {
            latest,
            gone,
            last,
            names: names.len(),
        }))
    }

    /// Note the catalogue changes not noted yet, whether or not the index has them: drop
    /// their names from the record cache (reads see the new records at once) and queue them
    /// for [`Store::take_changed`].
    pub fn note_changes(&self) -> Result<(), Error> {
        use std::sync::atomic::Ordering;
        let from = self
            .noted
            .load(Ordering::Acquire)
            .max(self.index.applied().unwrap_or(0));
        let (names, last) = self.db.search_changes_after(from)?;
        for name in &names {
            let Ok(name) = PackageName::new(name) else {
                continue;
            };
            self.records.invalidate(&name);
            peerpack_core::sync::lock(&self.changed).push(name);
        }
        self.noted.store(last, Ordering::Release);
        Ok(())
    }

    /// Whether the catalogue holds changes the search index has not applied yet (deferred by
    /// [`Store::defer_index`] and noted).
    pub fn index_behind(&self) -> bool {
        self.noted.load(std::sync::atomic::Ordering::Acquire) > self.index.applied().unwrap_or(0)
    }

    /// The names whose versions or index record changed since the last call.
    pub fn take_changed(&self) -> Vec<PackageName> {
        std::mem::take(&mut *peerpack_core::sync::lock(&self.changed))
    }

    /// Insert verified records (from peer `from`, if given) and update the search index for
    /// every name that changed. One result per record, in order.
    pub fn insert_records(
        &mut self,
        records: &[PackageRecord],
        from: Option<&str>,
    ) -> Result<Vec<Result<Inserted, db::Error>>, Error> {
        let results = self.db.insert_records(records, from)?;
        self.catch_up()?;
        Ok(results)
    }

    /// Every known version of `name`, highest first, through the record cache.
    pub fn versions(&self, name: &PackageName) -> Result<record_cache::Versions, Error> {
        if let Some(v) = self.records.get(name) {
            return Ok(v);
        }
        let versions: record_cache::Versions = self.db.versions(name)?.into();
        self.records.put(name.clone(), versions.clone());
        Ok(versions)
    }

    /// Insert one verified record (see [`Store::insert_records`]).
    pub fn insert_record(&mut self, record: &PackageRecord) -> Result<Inserted, Error> {
        let mut results = self.insert_records(std::slice::from_ref(record), None)?;
        Ok(results.pop().unwrap_or(Ok(Inserted::Unchanged))?)
    }

    /// Bring the record cache and the search index in step with the catalogue for `names`,
    /// whose owner changed: a name left with no version leaves the index.
    pub fn refresh(&self, names: &[PackageName]) -> Result<(), Error> {
        for name in names {
            self.records.invalidate(name);
        }
        self.catch_up()?;
        Ok(())
    }

    /// Pin `owner` as `name`'s owner (see [`Db::trust`]), keeping the index in step.
    pub fn trust(
        &mut self,
        name: &PackageName,
        owner: &peerpack_core::PublicKey,
    ) -> Result<bool, Error> {
        let changed = self.db.trust(name, owner)?;
        if changed {
            self.refresh(std::slice::from_ref(name))?;
        }
        Ok(changed)
    }

    /// Store a curator list (see [`Db::insert_curator_list`]), keeping the index in step.
    /// Returns what the insert did and the names whose owner changed.
    pub fn insert_curator_list(
        &mut self,
        list: &peerpack_core::CuratorList,
    ) -> Result<(Inserted, Vec<PackageName>), Error> {
        let (outcome, changed) = self.db.insert_curator_list(list)?;
        self.refresh(&changed)?;
        Ok((outcome, changed))
    }

    /// Set the trusted curators (see [`Db::set_curators`]), keeping the index in step.
    pub fn set_curators(&mut self, curators: Vec<peerpack_core::PublicKey>) -> Result<(), Error> {
        let changed = self.db.set_curators(curators)?;
        self.refresh(&changed)
    }

    /// Search the catalogue.
    pub fn search(&self, q: &SearchQuery) -> Result<Vec<Hit>, Error> {
        Ok(self.index.search(q)?)
    }
}
