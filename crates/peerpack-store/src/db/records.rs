//! The catalogue's records: inserting verified package and index records, and reading them.
//!
//! Only verified records get in: every insert checks the signature again and enforces name
//! ownership (the rules in [`super::names`]), so no caller can store a forged record by
//! mistake.

use std::path::Path;

use peerpack_core::record::{IndexUpdate, RecordError};
use peerpack_core::{ContentId, IndexRecord, PackageName, PackageRecord, PublicKey, Version};
use rusqlite::params;

use super::names::{Decision, Seen, decide_for_insert, record_claim};
use super::{Db, Error, Inserted, blob, bump_summary, now, sqlite, to_i64};

const OWNER_SQL: &str = "SELECT owner FROM packages WHERE name = ?1";
const INDEX_RECORD_SQL: &str = "SELECT record FROM index_records WHERE name = ?1";
const VERSION_RECORD_SQL: &str = "SELECT record FROM versions WHERE name = ?1 AND version = ?2";

impl Db {
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

    /// The names `owner` owns here, in name order.
    pub fn names_of(&self, owner: &PublicKey) -> Result<Vec<PackageName>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name FROM packages WHERE owner = ?1 ORDER BY name")
            .map_err(self.sql_err())?;
        let rows = stmt
            .query_map([owner.as_bytes().as_slice()], |r| r.get::<_, String>(0))
            .map_err(self.sql_err())?;
        let mut out = Vec::new();
        for row in rows {
            let name = row.map_err(self.sql_err())?;
            out.push(PackageName::new(&name).map_err(|e| self.corrupt(&name, e))?);
        }
        Ok(out)
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

    /// The version of `name` that search shows: the highest release, or the highest
    /// pre-release when there is no release (what `install NAME` picks, see [`newer`]).
    pub fn latest(&self, name: &PackageName) -> Result<Option<PackageRecord>, Error> {
        Ok(self.versions(name)?.into_iter().reduce(|best, r| {
            if newer(r.version(), best.version()) {
                r
            } else {
                best
            }
        }))
    }

    /// The latest record of every package, in name order (what the search index holds).
    pub fn latest_records(&self) -> Result<Vec<PackageRecord>, Error> {
        let mut out: Vec<PackageRecord> = Vec::new();
        for record in self.records("SELECT name, record FROM versions ORDER BY name", [])? {
            match out.last_mut() {
                Some(last) if last.name() == record.name() => {
                    if newer(record.version(), last.version()) {
                        *last = record;
                    }
                }
                _ => out.push(record),
            }
        }
        Ok(out)
    }

    /// The packages with a version that depends on `name`: for each (at most `limit`, in name
    /// order), the newest such version and its requirement on `name`, and how many of its
    /// versions depend on it.
    pub fn dependents(&self, name: &str, limit: usize) -> Result<Vec<Dependent>, Error> {
        let err = self.sql_err();
        let mut st = self
            .conn()
            .prepare_cached(
                "SELECT name, version, requirement FROM dependencies WHERE dependency = ?1 ORDER BY name",
            )
            .map_err(err)?;
        let rows = st
            .query_map([name], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(err)?;
        let mut out: Vec<Dependent> = Vec::new();
        for row in rows {
            let (name, version, requirement) = row.map_err(err)?;
            let Ok(version) = version.parse::<Version>() else {
                continue;
            };
            let full = out.len() == limit;
            match out.last_mut() {
                Some(d) if d.name == name => {
                    d.versions += 1;
                    if newer(&version, &d.version) {
                        d.version = version;
                        d.requirement = requirement;
                    }
                }
                _ if full => break,
                _ => out.push(Dependent {
                    name,
                    version,
                    requirement,
                    versions: 1,
                }),
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

    /// Number of package versions known (the catalogue size).
    pub fn version_count(&self) -> Result<u64, Error> {
        // The catalogue summary counts the versions' records, kept with every write (and in
        // memory between writes): no scan of the table.
        Ok(self.summary()?.0)
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

/// A package that depends on another, as [`Db::dependents`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependent {
    /// Its name.
    pub name: String,
    /// Its newest version that depends on the other.
    pub version: Version,
    /// That version's requirement on the other.
    pub requirement: String,
    /// How many of its versions depend on the other.
    pub versions: usize,
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
    tx: &rusqlite::Connection,
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
    write_dependencies(tx, path, record)?;
    Ok(outcome)
}

/// Index the dependencies of `record`'s version (replacing what was indexed for it).
fn write_dependencies(
    tx: &rusqlite::Connection,
    path: &Path,
    record: &PackageRecord,
) -> Result<(), Error> {
    let err = sqlite(path);
    let name = record.name().as_str();
    let version = record.version().to_string();
    tx.prepare_cached("DELETE FROM dependencies WHERE name = ?1 AND version = ?2")
        .and_then(|mut st| st.execute(params![name, version]))
        .map_err(err)?;
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO dependencies (name, version, dependency, requirement) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(err)?;
    for (dep, req) in &record.manifest.dependencies {
        insert
            .execute(params![name, version, dep.as_str(), req.to_string()])
            .map_err(err)?;
    }
    Ok(())
}

/// Fill the `dependencies` table from every stored version's record (once, when a store that
/// predates it is opened).
pub(super) fn fill_dependencies(tx: &rusqlite::Connection, path: &Path) -> Result<(), Error> {
    let err = sqlite(path);
    let mut st = tx
        .prepare("SELECT name, record FROM versions")
        .map_err(err)?;
    let rows = st
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .map_err(err)?;
    for row in rows {
        let (name, bytes) = row.map_err(err)?;
        let record = PackageRecord::decode(&bytes).map_err(|e| Error::Corrupt {
            path: path.to_owned(),
            name,
            reason: e.to_string(),
        })?;
        write_dependencies(tx, path, &record)?;
    }
    Ok(())
}

/// Whether `a` is the better "latest" than `b`: any release beats any pre-release (a
/// requirement-less install never picks a pre-release while a release exists); otherwise the
/// higher version wins.
pub fn newer(a: &peerpack_core::Version, b: &peerpack_core::Version) -> bool {
    (a.pre.is_empty(), a) > (b.pre.is_empty(), b)
}

#[cfg(test)]
mod latest_tests {
    use super::newer;

    #[test]
    fn a_release_is_newer_than_any_pre_release() {
        let v = |s: &str| peerpack_core::Version::parse(s).unwrap();
        assert!(newer(&v("1.0.0"), &v("2.0.0-beta.1")));
        assert!(!newer(&v("2.0.0-beta.1"), &v("1.0.0")));
        assert!(newer(&v("1.1.0"), &v("1.0.0")));
        assert!(newer(&v("2.0.0-beta.2"), &v("2.0.0-beta.1")));
    }
}
