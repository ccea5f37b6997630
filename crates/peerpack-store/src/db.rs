//! The SQLite store: packages and their owners, versions with their signed records, and index
//! records.
//!
//! WAL mode, `synchronous = NORMAL` (a committed transaction survives a killed process; a power
//! cut may lose the last few), foreign keys on. Migrations are the numbered files in
//! `migrations/`, applied in order inside one transaction each and tracked by
//! `PRAGMA user_version`.
//!
//! Only verified records get in: every insert checks the signature again and enforces name
//! ownership, so no caller can store a forged record by mistake.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use peerpack_core::record::{IndexUpdate, RecordError};
use peerpack_core::{ContentId, IndexRecord, PackageName, PackageRecord, PublicKey, Version};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::names::{Decision, Seen, decide_for_insert, record_claim};

const OWNER_SQL: &str = "SELECT owner FROM packages WHERE name = ?1";
const INDEX_RECORD_SQL: &str = "SELECT record FROM index_records WHERE name = ?1";
const VERSION_RECORD_SQL: &str = "SELECT record FROM versions WHERE name = ?1 AND version = ?2";

/// The schema migrations, in order. Migration `i` brings the schema to version `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_peers.sql"),
    include_str!("../migrations/0003_distribution.sql"),
    include_str!("../migrations/0004_names.sql"),
    include_str!("../migrations/0005_blocks.sql"),
    include_str!("../migrations/0006_unsafe.sql"),
    include_str!("../migrations/0007_summary.sql"),
];

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

    /// Decode the `(name, record)` rows that `sql` selects.
    fn records<P: rusqlite::Params>(
        &self,
        sql: &str,
        params: P,
    ) -> Result<Vec<PackageRecord>, Error> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(self.sql_err())?;
        let rows = stmt
            .query_map(params, |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(self.sql_err())?;
        let mut out = Vec::new();
        for row in rows {
            let (name, bytes) = row.map_err(self.sql_err())?;
            out.push(self.decode(&name, &bytes)?);
        }
        Ok(out)
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

    /// Insert a verified package record, enforcing name ownership.
    pub fn insert_record(&mut self, record: &PackageRecord) -> Result<Inserted, Error> {
        let mut results = self.insert_records(std::slice::from_ref(record), None)?;
        results.pop().unwrap_or(Ok(Inserted::Unchanged))
    }

    /// Insert many records, received from peer `from` if given, in one transaction. Each
    /// record gets its own result: a refused record does not stop the others. A record signed
    /// by a key that does not own its name here is kept as that key's claim
    /// ([`Inserted::Disputed`]). The outer error is for database failures.
    #[tracing::instrument(skip_all, fields(count = records.len()))]
    pub fn insert_records(
        &mut self,
        records: &[PackageRecord],
        from: Option<&str>,
    ) -> Result<Vec<Result<Inserted, Error>>, Error> {
        let curators = self.curators.clone();
        self.write(|tx, path| {
            let mut out = Vec::with_capacity(records.len());
            for r in records {
                let result = insert_one(tx, path, &curators, r, from);
                // A database failure fails the batch; a refusal is this record's answer.
                if let Err(e @ Error::Sqlite { .. }) = result {
                    return Err(e);
                }
                out.push(result);
            }
            Ok(out)
        })
    }

    /// Run `f` in one immediate (write-locking) transaction; commit if it returns `Ok`.
    pub(crate) fn write<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction<'_>, &Path) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let err = sqlite(&self.path);
        self.summary.set(None);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let out = f(&tx, &self.path)?;
        tx.commit().map_err(err)?;
        Ok(out)
    }

    /// Store a verified index record if it is newer than the known one and signed by the owner.
    pub fn insert_index(&mut self, index: &IndexRecord) -> Result<Inserted, Error> {
        self.insert_index_from(index, None)
    }

    /// Store a verified index record received from peer `from` if it is newer than the known
    /// one and signed by the owner. One signed by another key is kept as that key's claim
    /// ([`Inserted::Disputed`]).
    pub fn insert_index_from(
        &mut self,
        index: &IndexRecord,
        from: Option<&str>,
    ) -> Result<Inserted, Error> {
        index.verify()?;
        let curators = self.curators.clone();
        self.write(|tx, path| {
            if let Decision::Claim =
                decide_for_insert(tx, path, &curators, &index.name, &index.publisher)?
            {
                record_claim(
                    tx,
                    path,
                    &index.name,
                    &index.publisher,
                    &Seen {
                        seq: index.seq,
                        versions: index.versions.iter().map(|e| e.version.clone()).collect(),
                        peers: from.map(str::to_owned).into_iter().collect(),
                    },
                )?;
                return Ok(Inserted::Disputed);
            }
            let known = blob(tx, INDEX_RECORD_SQL, [index.name.as_str()]).map_err(sqlite(path))?;
            let outcome = match known {
                None => Inserted::New,
                Some(bytes) => {
                    let known = IndexRecord::decode(&bytes).map_err(|e| Error::Corrupt {
                        path: path.to_owned(),
                        name: index.name.to_string(),
                        reason: e.to_string(),
                    })?;
                    match known.check_successor(index)? {
                        IndexUpdate::Same => return Ok(Inserted::Unchanged),
                        IndexUpdate::Newer => Inserted::Replaced,
                    }
                }
            };
            tx.execute(
                "INSERT INTO index_records (name, seq, record, received_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET seq = excluded.seq, record = excluded.record,
                 received_at = excluded.received_at",
                params![
                    index.name.as_str(),
                    to_i64(index.seq),
                    index.encode(),
                    now()
                ],
            )
            .map_err(sqlite(path))?;
            Ok(outcome)
        })
    }

    /// The newest index record known for `name`.
    pub fn index_record(&self, name: &PackageName) -> Result<Option<IndexRecord>, Error> {
        let bytes = blob(&self.conn, INDEX_RECORD_SQL, [name.as_str()]).map_err(self.sql_err())?;
        bytes
            .map(|b| IndexRecord::decode(&b).map_err(|e| self.corrupt(name.as_str(), e)))
            .transpose()
    }

    fn corrupt(&self, name: &str, e: impl std::fmt::Display) -> Error {
        Error::Corrupt {
            path: self.path.clone(),
            name: name.to_owned(),
            reason: e.to_string(),
        }
    }

    /// The key that owns `name`, if any.
    pub fn owner(&self, name: &PackageName) -> Result<Option<PublicKey>, Error> {
        let bytes = blob(&self.conn, OWNER_SQL, [name.as_str()]).map_err(self.sql_err())?;
        bytes.map(|b| owner_key(&self.path, name, &b)).transpose()
    }

    /// The record for `name` at `version`.
    pub fn record(
        &self,
        name: &PackageName,
        version: &Version,
    ) -> Result<Option<PackageRecord>, Error> {
        let bytes = blob(
            &self.conn,
            VERSION_RECORD_SQL,
            params![name.as_str(), version.to_string()],
        )
        .map_err(self.sql_err())?;
        bytes.map(|b| self.decode(name.as_str(), &b)).transpose()
    }

    fn decode(&self, name: &str, bytes: &[u8]) -> Result<PackageRecord, Error> {
        PackageRecord::decode(bytes).map_err(|e| self.corrupt(name, e))
    }

    /// Every known version of `name`, highest first (semver precedence).
    pub fn versions(&self, name: &PackageName) -> Result<Vec<PackageRecord>, Error> {
        let mut out = self.records(
            "SELECT name, record FROM versions WHERE name = ?1",
            [name.as_str()],
        )?;
        out.sort_by(|a, b| b.version().cmp(a.version()));
        Ok(out)
    }

    /// The highest version of `name`.
    pub fn latest(&self, name: &PackageName) -> Result<Option<PackageRecord>, Error> {
        Ok(self.versions(name)?.into_iter().next())
    }

    /// The latest record of every package, in name order (what the search index holds).
    pub fn latest_records(&self) -> Result<Vec<PackageRecord>, Error> {
        let mut out: Vec<PackageRecord> = Vec::new();
        for record in self.records("SELECT name, record FROM versions ORDER BY name", [])? {
            match out.last_mut() {
                Some(last) if last.name() == record.name() => {
                    if record.version() > last.version() {
                        *last = record;
                    }
                }
                _ => out.push(record),
            }
        }
        Ok(out)
    }

    /// Records whose archive has `content_id`.
    pub fn records_with_content(
        &self,
        content_id: &ContentId,
    ) -> Result<Vec<PackageRecord>, Error> {
        self.records(
            "SELECT name, record FROM versions WHERE content_id = ?1",
            [content_id.as_bytes().as_slice()],
        )
    }

    /// Up to `limit` records after the `(name, version)` cursor, in (name, version) text order:
    /// the paging order of catalogue sync.
    pub fn records_after(
        &self,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<PackageRecord>, Error> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        match after {
            None => self.records(
                "SELECT name, record FROM versions ORDER BY name, version LIMIT ?1",
                [limit],
            ),
            Some((name, version)) => self.records(
                "SELECT name, record FROM versions WHERE (name, version) > (?1, ?2)
                 ORDER BY name, version LIMIT ?3",
                params![name, version, limit],
            ),
        }
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

    /// Save (insert or update) peer rows in one transaction.
    pub fn save_peers(&mut self, peers: &[crate::peers::PeerRow]) -> Result<(), Error> {
        self.write(|tx, path| crate::peers::save(tx, path, peers))
    }

    /// Every peer row.
    pub fn load_peers(&self) -> Result<Vec<crate::peers::PeerRow>, Error> {
        crate::peers::load(&self.conn, &self.path)
    }

    /// Whether a peer row exists.
    pub fn peer_known(&self, peer_id: &str) -> Result<bool, Error> {
        crate::peers::exists(&self.conn, &self.path, peer_id)
    }

    /// Remember that `peer_id` provides the archive `content_id`.
    pub fn add_provider(&mut self, content_id: &ContentId, peer_id: &str) -> Result<(), Error> {
        crate::peers::add_provider(&self.conn, &self.path, content_id, peer_id, now())
    }

    /// Peers known to provide `content_id`, most recently seen first.
    pub fn providers(&self, content_id: &ContentId) -> Result<Vec<String>, Error> {
        crate::peers::providers(&self.conn, &self.path, content_id)
    }

    /// Flag the archive of `record` as unsafe: it matches its content id, but the extractor
    /// refused it for `reason`.
    pub fn flag_unsafe(&mut self, record: &PackageRecord, reason: &str) -> Result<(), Error> {
        self.conn
            .execute(
                "INSERT INTO unsafe_archives (content_id, name, version, publisher, reason, flagged_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(content_id) DO NOTHING",
                params![
                    record.content_id.as_bytes().as_slice(),
                    record.name().as_str(),
                    record.version().to_string(),
                    record.publisher.as_bytes().as_slice(),
                    reason,
                    now()
                ],
            )
            .map_err(self.sql_err())?;
        Ok(())
    }

    /// Why the archive `id` was flagged unsafe, if it was.
    pub fn unsafe_reason(&self, id: &ContentId) -> Result<Option<String>, Error> {
        self.conn
            .prepare_cached("SELECT reason FROM unsafe_archives WHERE content_id = ?1")
            .and_then(|mut s| {
                s.query_row([id.as_bytes().as_slice()], |r| r.get(0))
                    .optional()
            })
            .map_err(self.sql_err())
    }

    /// Every archive flagged unsafe.
    pub fn unsafe_archives(&self) -> Result<Vec<ContentId>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT content_id FROM unsafe_archives")
            .map_err(self.sql_err())?;
        let rows = stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .map_err(self.sql_err())?;
        let mut out = Vec::new();
        for row in rows {
            let bytes = row.map_err(self.sql_err())?;
            if let Ok(b) = <[u8; 32]>::try_from(bytes.as_slice()) {
                out.push(ContentId::from_bytes(b));
            }
        }
        Ok(out)
    }

    /// How many unsafe archives `publisher` signed.
    pub fn unsafe_count(&self, publisher: &PublicKey) -> Result<u64, Error> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM unsafe_archives WHERE publisher = ?1",
                [publisher.as_bytes().as_slice()],
                |r| r.get(0),
            )
            .map_err(self.sql_err())?;
        Ok(n.max(0) as u64)
    }

    /// Number of package versions known (the catalogue size).
    pub fn version_count(&self) -> Result<u64, Error> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM versions", [], |r| r.get(0))
            .map_err(self.sql_err())?;
        Ok(n.max(0) as u64)
    }

    /// Number of package names with at least one version in the catalogue.
    pub fn package_count(&self) -> Result<u64, Error> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM packages p WHERE EXISTS (SELECT 1 FROM versions v WHERE v.name = p.name)",
                [],
                |r| r.get(0),
            )
            .map_err(self.sql_err())?;
        Ok(n.max(0) as u64)
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
    tx: &rusqlite::Transaction<'_>,
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

/// Parse a stored owner key.
fn owner_key(path: &Path, name: &PackageName, bytes: &[u8]) -> Result<PublicKey, Error> {
    <[u8; 32]>::try_from(bytes)
        .ok()
        .and_then(|b| PublicKey::from_bytes(&b).ok())
        .ok_or_else(|| Error::Corrupt {
            path: path.to_owned(),
            name: name.to_string(),
            reason: "the owner key is not a valid ed25519 key".into(),
        })
}

fn insert_one(
    tx: &rusqlite::Transaction<'_>,
    path: &Path,
    curators: &[PublicKey],
    record: &PackageRecord,
    from: Option<&str>,
) -> Result<Inserted, Error> {
    let err = sqlite(path);
    record.verify()?;
    if let Decision::Claim =
        decide_for_insert(tx, path, curators, record.name(), &record.publisher)?
    {
        record_claim(
            tx,
            path,
            record.name(),
            &record.publisher,
            &Seen {
                seq: 0,
                versions: vec![record.version().clone()],
                peers: from.map(str::to_owned).into_iter().collect(),
            },
        )?;
        return Ok(Inserted::Disputed);
    }
    let name = record.name().as_str();
    let version = record.version().to_string();
    let bytes = record.encode();
    let known = blob(tx, VERSION_RECORD_SQL, params![name, version]).map_err(err)?;
    let (outcome, replaced_hash) = match known {
        None => (Inserted::New, None),
        Some(old) if old == bytes => return Ok(Inserted::Unchanged),
        Some(old_bytes) => {
            let old = PackageRecord::decode(&old_bytes).map_err(|e| Error::Corrupt {
                path: path.to_owned(),
                name: name.to_owned(),
                reason: e.to_string(),
            })?;
            // A version is bound to its first content id, whatever the sequence number says.
            if old.content_id != record.content_id {
                return Err(Error::Refused(RecordError::VersionChanged(Box::new(
                    peerpack_core::record::VersionChange {
                        name: record.name().clone(),
                        version: record.version().clone(),
                        known: old.content_id,
                        offered: record.content_id,
                    },
                ))));
            }
            match record.seq.cmp(&old.seq) {
                std::cmp::Ordering::Less => return Ok(Inserted::Stale),
                std::cmp::Ordering::Equal => {
                    return Err(Error::Refused(RecordError::RecordEquivocation {
                        name: record.name().clone(),
                        version: record.version().clone(),
                        seq: record.seq,
                    }));
                }
                std::cmp::Ordering::Greater => (
                    Inserted::Replaced,
                    Some(peerpack_core::RecordHash::of(&old_bytes)),
                ),
            }
        }
    };
    let hash = record.hash();
    match &replaced_hash {
        None => bump_summary(tx, path, 1, &[hash.0.as_slice()])?,
        Some(old) => bump_summary(tx, path, 0, &[old.0.as_slice(), hash.0.as_slice()])?,
    }
    tx.execute(
        "INSERT INTO versions (name, version, content_id, archive_size, published_at, record_hash, record, received_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT(name, version) DO UPDATE SET content_id = excluded.content_id,
           archive_size = excluded.archive_size, published_at = excluded.published_at,
           record_hash = excluded.record_hash, record = excluded.record, received_at = excluded.received_at",
        params![
            name,
            version,
            record.content_id.as_bytes().as_slice(),
            to_i64(record.archive_size),
            to_i64(record.published_at),
            hash.0.as_slice(),
            bytes,
            now()
        ],
    )
    .map_err(err)?;
    Ok(outcome)
}
