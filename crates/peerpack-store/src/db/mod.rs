//! The SQLite store: the [`Db`] handle and what every part of it shares.
//!
//! WAL mode, `synchronous = NORMAL` (a committed transaction survives a killed process; a power
//! cut may lose the last few), foreign keys on. Migrations are the numbered files in
//! `migrations/`, applied in order inside one transaction each and tracked by
//! `PRAGMA user_version`.
//!
//! This module holds the handle, opening and migrating, write transactions, the shared
//! [`Error`] and [`Inserted`] types, small SQLite helpers and the catalogue summary. The parts
//! of the store build on it, and it uses none of them:
//! - [`names`]: the owner rules (who owns a name, who else claims it);
//! - `records`: inserting and reading package and index records, applying the owner rules;
//! - `owners`: curators, pinned owners, claims and contested names;
//! - [`peers`]: peers met and the archives they provide;
//! - `unsafe_archives`: archives the extractor refused.

pub mod names;
mod owners;
pub mod peers;
mod records;
pub use records::Dependent;
mod unsafe_archives;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use peerpack_core::PublicKey;
use peerpack_core::record::RecordError;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// The schema migrations, in order. Migration `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/0001_init.sql"),
    include_str!("../../migrations/0002_peers.sql"),
    include_str!("../../migrations/0003_distribution.sql"),
    include_str!("../../migrations/0004_names.sql"),
    include_str!("../../migrations/0005_blocks.sql"),
    include_str!("../../migrations/0006_unsafe.sql"),
    include_str!("../../migrations/0007_summary.sql"),
    include_str!("../../migrations/0008_mirrors.sql"),
    include_str!("../../migrations/0009_search_changes.sql"),
    include_str!("../../migrations/0010_dht_providers.sql"),
    include_str!("../../migrations/0011_dependencies.sql"),
];

/// The schema version that added the `dependencies` table, filled from the stored records
/// when a store older than it is opened.
const DEPENDENCIES_VERSION: i64 = 11;

/// Store errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// SQLite failed.
    #[error("database {}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The database was written by a newer peerpack.
    #[error("database {} has schema version {found}, newer than this peerpack supports ({supported}); upgrade peerpack", path.display())]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// The record was refused: bad signature, or signed by a key that does not own the name.
    #[error("record refused: {0}")]
    Refused(#[from] RecordError),
    /// A stored row does not decode; the database was changed outside peerpack.
    #[error("database {}: stored record for {name} is corrupt: {reason}", path.display())]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// The record's key.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// What inserting a package record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// A version the store did not know.
    New,
    /// A newer record (higher seq) for a known version replaced the old one.
    Replaced,
    /// The store already had exactly this record.
    Unchanged,
    /// The store has a newer record for this version; nothing changed.
    Stale,
    /// A valid record signed by a key that does not own the name here (or for a contested
    /// name): kept as that key's claim, not in the catalogue.
    Disputed,
}

impl Inserted {
    /// Whether the store changed.
    pub fn changed(self) -> bool {
        matches!(self, Self::New | Self::Replaced)
    }
}

/// Handle to the SQLite database. Not `Sync`: the node wraps it for sharing.
pub struct Db {
    conn: Connection,
    path: PathBuf,
    /// Curator keys the operator trusts, in priority order (see [`crate::names`]).
    pub(crate) curators: Vec<PublicKey>,
    /// The catalogue summary, kept between writes (the `catalogue_summary` row holds it
    /// durably, updated in every write's transaction).
    summary: std::cell::Cell<Option<(u64, [u8; 32])>>,
}

/// Now, in Unix seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> Error + Copy + '_ {
    move |source| Error::Sqlite {
        path: path.to_owned(),
        source,
    }
}

/// The single blob column of the row `sql` selects, if there is such a row.
fn blob<P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
) -> rusqlite::Result<Option<Vec<u8>>> {
    conn.prepare_cached(sql)?
        .query_row(params, |r| r.get(0))
        .optional()
}

/// SQLite stores signed 64-bit integers; sizes and times beyond that are clamped (they cannot
/// occur in practice, and the exact value stays in the signed record bytes).
fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Db {
    /// Open (creating if needed) the database at `path` and bring its schema up to date.
    #[tracing::instrument(skip_all, fields(path = %path.display()))]
    pub fn open(path: &Path) -> Result<Self, Error> {
        let err = sqlite(path);
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        let mut db = Self {
            conn,
            path: path.to_owned(),
            curators: Vec::new(),
            summary: std::cell::Cell::new(None),
        };
        db.migrate()?;
        db.ensure_summary()?;
        Ok(db)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    fn sql_err(&self) -> impl Fn(rusqlite::Error) -> Error + Copy + '_ {
        sqlite(&self.path)
    }

    fn migrate(&mut self) -> Result<(), Error> {
        let path = self.path.clone();
        let err = sqlite(&path);
        let current: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(err)?;
        let supported = MIGRATIONS.len() as i64;
        if current > supported {
            return Err(Error::SchemaTooNew {
                path,
                found: current,
                supported,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Exclusive)
                .map_err(err)?;
            tx.execute_batch(sql).map_err(err)?;
            if i as i64 + 1 == DEPENDENCIES_VERSION {
                records::fill_dependencies(&tx, &path)?;
            }
            tx.pragma_update(None, "user_version", i as i64 + 1)
                .map_err(err)?;
            tx.commit().map_err(err)?;
            tracing::info!(version = i + 1, "applied store migration");
        }
        Ok(())
    }

    /// The schema version in use.
    pub fn schema_version(&self) -> Result<i64, Error> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(self.sql_err())
    }

    /// Run `f` in one immediate (write-locking) transaction; commit if it returns `Ok`.
    /// Inside [`Db::atomically`] it runs in a savepoint of that transaction instead.
    pub(crate) fn write<T>(
        &mut self,
        f: impl FnOnce(&Connection, &Path) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let err = sqlite(&self.path);
        self.summary.set(None);
        if !self.conn.is_autocommit() {
            let sp = self.conn.savepoint().map_err(err)?;
            let out = f(&sp, &self.path)?;
            sp.commit().map_err(err)?;
            return Ok(out);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let out = f(&tx, &self.path)?;
        tx.commit().map_err(err)?;
        Ok(out)
    }

    /// Run `f`, and every write it makes, in one transaction: a crash or an error anywhere in
    /// `f` leaves none of them behind. Not reentrant.
    pub fn atomically<T, E: From<Error>>(
        &mut self,
        f: impl FnOnce(&mut Db) -> Result<T, E>,
    ) -> Result<T, E> {
        let path = self.path.clone();
        let err = sqlite(&path);
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| E::from(err(e)))?;
        let out = f(self);
        self.summary.set(None);
        match out {
            Ok(v) => {
                if let Err(e) = self.conn.execute_batch("COMMIT") {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    return Err(E::from(err(e)));
                }
                Ok(v)
            }
            Err(e) => {
                if !self.conn.is_autocommit() {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                Err(e)
            }
        }
    }

    /// The names whose versions changed after change number `after`, and the highest change
    /// number seen (`after` when nothing changed).
    pub fn search_changes_after(&self, after: u64) -> Result<(Vec<String>, u64), Error> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, name FROM search_changes WHERE seq > ?1 ORDER BY seq")
            .map_err(self.sql_err())?;
        let rows = stmt
            .query_map([to_i64(after)], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(self.sql_err())?;
        let mut last = after;
        let mut names = std::collections::BTreeSet::new();
        for row in rows {
            let (seq, name) = row.map_err(self.sql_err())?;
            last = last.max(u64::try_from(seq).unwrap_or(0));
            names.insert(name);
        }
        Ok((names.into_iter().collect(), last))
    }

    /// The highest change number ever given out (0 before the first).
    pub fn last_search_change(&self) -> Result<u64, Error> {
        let seq: Option<i64> = self
            .conn
            .prepare_cached("SELECT seq FROM sqlite_sequence WHERE name = 'search_changes'")
            .and_then(|mut s| s.query_row([], |r| r.get(0)).optional())
            .map_err(self.sql_err())?;
        Ok(seq.map_or(0, |s| u64::try_from(s).unwrap_or(0)))
    }

    /// Forget the changes up to `upto`, which the search index has applied.
    pub fn prune_search_changes(&self, upto: u64) -> Result<(), Error> {
        self.conn
            .prepare_cached("DELETE FROM search_changes WHERE seq <= ?1")
            .and_then(|mut s| s.execute([to_i64(upto)]))
            .map_err(self.sql_err())?;
        Ok(())
    }

    /// The number of records held and the XOR of their hashes: equal summaries mean (with
    /// overwhelming probability) equal catalogues. One row read; no scan.
    pub fn summary(&self) -> Result<(u64, [u8; 32]), Error> {
        if let Some(known) = self.summary.get() {
            return Ok(known);
        }
        let fresh = read_summary(&self.conn, &self.path)?;
        self.summary.set(Some(fresh));
        Ok(fresh)
    }

    /// Fill the summary row from `versions` if it is missing (a store from before it existed).
    fn ensure_summary(&mut self) -> Result<(), Error> {
        let present: Option<i64> = self
            .conn
            .query_row("SELECT 1 FROM catalogue_summary WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.sql_err())?;
        if present.is_none() {
            let (count, digest) = self.compute_summary()?;
            self.conn
                .execute(
                    "INSERT INTO catalogue_summary (id, count, digest) VALUES (1, ?1, ?2)",
                    params![to_i64(count), digest.as_slice()],
                )
                .map_err(self.sql_err())?;
        }
        Ok(())
    }

    /// The summary computed from every version (for the first fill, and for tests).
    pub fn compute_summary(&self) -> Result<(u64, [u8; 32]), Error> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT record_hash FROM versions")
            .map_err(self.sql_err())?;
        let rows = stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .map_err(self.sql_err())?;
        let mut digest = [0u8; 32];
        let mut count = 0u64;
        for row in rows {
            let hash = row.map_err(self.sql_err())?;
            for (d, h) in digest.iter_mut().zip(hash) {
                *d ^= h;
            }
            count += 1;
        }
        Ok((count, digest))
    }
}

fn read_summary(conn: &Connection, path: &Path) -> Result<(u64, [u8; 32]), Error> {
    let (count, digest): (i64, Vec<u8>) = conn
        .query_row(
            "SELECT count, digest FROM catalogue_summary WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(sqlite(path))?;
    let digest = <[u8; 32]>::try_from(digest.as_slice()).map_err(|_| Error::Corrupt {
        path: path.to_owned(),
        name: "catalogue summary".into(),
        reason: "the digest is not 32 bytes".into(),
    })?;
    Ok((count.max(0) as u64, digest))
}

/// Apply a change to the catalogue summary inside the write's transaction: `count_delta`
/// versions added (or removed), and `hashes` XORed into the digest.
pub(crate) fn bump_summary(
    tx: &Connection,
    path: &Path,
    count_delta: i64,
    hashes: &[&[u8]],
) -> Result<(), Error> {
    let (count, mut digest) = read_summary(tx, path)?;
    for h in hashes {
        for (d, b) in digest.iter_mut().zip(h.iter()) {
            *d ^= b;
        }
    }
    let count = (i64::try_from(count).unwrap_or(i64::MAX) + count_delta).max(0);
    tx.execute(
        "UPDATE catalogue_summary SET count = ?1, digest = ?2 WHERE id = 1",
        params![count, digest.as_slice()],
    )
    .map_err(sqlite(path))?;
    Ok(())
}
