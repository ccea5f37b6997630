//! What keeps an archive in the blob store: use times, installs and pins.
//!
//! Garbage collection keeps every archive that this node published, that is installed in a
//! directory that still exists, or that is pinned; of the rest it removes the least recently
//! used until the store fits its quota.

use peerpack_core::{ContentId, PackageName, Version};
use rusqlite::{OptionalExtension, params};

use crate::db::{Db, Error, now};

/// One archive in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobUse {
    /// Its content id.
    pub content_id: ContentId,
    /// Its size in bytes.
    pub size: u64,
    /// When it was stored, Unix seconds.
    pub added_at: i64,
    /// When it was last published, installed or served, Unix seconds.
    pub last_used: i64,
}

/// One recorded installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Install {
    /// The directory it was extracted into.
    pub path: String,
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// The archive.
    pub content_id: ContentId,
    /// When, Unix seconds.
    pub installed_at: i64,
}

fn content_id(bytes: Vec<u8>) -> rusqlite::Result<ContentId> {
    <[u8; 32]>::try_from(bytes.as_slice())
        .map(ContentId::from_bytes)
        .map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, bytes.len() as i64))
}

impl Db {
    /// Note that the archive `id` of `size` bytes was used now (stored, served, installed).
    pub fn touch_blob(&mut self, id: &ContentId, size: u64) -> Result<(), Error> {
        let t = now();
        self.write(|tx, path| {
            tx.prepare_cached(
                "INSERT INTO blob_use (content_id, size, added_at, last_used) VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT(content_id) DO UPDATE SET last_used = excluded.last_used, size = excluded.size",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id.as_bytes().as_slice(),
                    i64::try_from(size).unwrap_or(i64::MAX),
                    t
                ])
            })
            .map_err(crate::db::sqlite(path))?;
            Ok(())
        })
    }

    /// Forget an archive's use row (after it was removed).
    pub fn forget_blob(&mut self, id: &ContentId) -> Result<(), Error> {
        self.write(|tx, path| {
            tx.execute(
                "DELETE FROM blob_use WHERE content_id = ?1",
                [id.as_bytes().as_slice()],
            )
            .map_err(crate::db::sqlite(path))?;
            Ok(())
        })
    }

    /// Every archive's use row, least recently used first.
    pub fn blob_uses(&self) -> Result<Vec<BlobUse>, Error> {
        let err = crate::db::sqlite(self.path());
        let mut stmt = self
            .conn()
            .prepare_cached(
                "SELECT content_id, size, added_at, last_used FROM blob_use
                 ORDER BY last_used, added_at, content_id",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(BlobUse {
                    content_id: content_id(r.get(0)?)?,
                    size: r.get::<_, i64>(1)?.max(0) as u64,
                    added_at: r.get(2)?,
                    last_used: r.get(3)?,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Record that `name@version` (archive `id`) was extracted into `path`.
    pub fn record_install(
        &mut self,
        path: &str,
        name: &PackageName,
        version: &Version,
        id: &ContentId,
    ) -> Result<(), Error> {
        let t = now();
        self.write(|tx, p| {
            tx.execute(
                "INSERT INTO installs (path, name, version, content_id, installed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(path) DO UPDATE SET name = excluded.name, version = excluded.version,
                    content_id = excluded.content_id, installed_at = excluded.installed_at",
                params![
                    path,
                    name.as_str(),
                    version.to_string(),
                    id.as_bytes().as_slice(),
                    t
                ],
            )
            .map_err(crate::db::sqlite(p))?;
            Ok(())
        })
    }

    /// Every recorded installation.
    pub fn installs(&self) -> Result<Vec<Install>, Error> {
        let err = crate::db::sqlite(self.path());
        let mut stmt = self
            .conn()
            .prepare_cached(
                "SELECT path, name, version, content_id, installed_at FROM installs ORDER BY path",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Install {
                    path: r.get(0)?,
                    name: r.get(1)?,
                    version: r.get(2)?,
                    content_id: content_id(r.get(3)?)?,
                    installed_at: r.get(4)?,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Forget the installation at `path` (its directory is gone).
    pub fn forget_install(&mut self, path: &str) -> Result<(), Error> {
        self.write(|tx, p| {
            tx.execute("DELETE FROM installs WHERE path = ?1", [path])
                .map_err(crate::db::sqlite(p))?;
            Ok(())
        })
    }

    /// Pin `name@version`: its archive survives garbage collection. Returns whether the pin is
    /// new.
    pub fn pin(&mut self, name: &PackageName, version: &Version) -> Result<bool, Error> {
        let t = now();
        self.write(|tx, p| {
            let n = tx
                .execute(
                    "INSERT INTO pins (name, version, pinned_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT(name, version) DO NOTHING",
                    params![name.as_str(), version.to_string(), t],
                )
                .map_err(crate::db::sqlite(p))?;
            Ok(n == 1)
        })
    }

    /// Remove a pin. Returns whether there was one.
    pub fn unpin(&mut self, name: &PackageName, version: &Version) -> Result<bool, Error> {
        self.write(|tx, p| {
            let n = tx
                .execute(
                    "DELETE FROM pins WHERE name = ?1 AND version = ?2",
                    params![name.as_str(), version.to_string()],
                )
                .map_err(crate::db::sqlite(p))?;
            Ok(n == 1)
        })
    }

    /// Every pin as `(name, version)`.
    pub fn pins(&self) -> Result<Vec<(String, String)>, Error> {
        let err = crate::db::sqlite(self.path());
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT name, version FROM pins ORDER BY name, version")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// The content ids of pinned versions whose records are known.
    pub fn pinned_content(&self) -> Result<Vec<ContentId>, Error> {
        let err = crate::db::sqlite(self.path());
        let mut stmt = self
            .conn()
            .prepare_cached(
                "SELECT v.content_id FROM pins p JOIN versions v
                   ON v.name = p.name AND v.version = p.version",
            )
            .map_err(err)?;
        let rows = stmt.query_map([], |r| content_id(r.get(0)?)).map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// The content ids of every version whose owner is `publisher` (what this node published).
    pub fn content_owned_by(
        &self,
        publisher: &peerpack_core::PublicKey,
    ) -> Result<Vec<ContentId>, Error> {
        let err = crate::db::sqlite(self.path());
        let mut stmt = self
            .conn()
            .prepare_cached(
                "SELECT v.content_id FROM versions v JOIN packages p ON p.name = v.name
                 WHERE p.owner = ?1",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([publisher.as_bytes().as_slice()], |r| content_id(r.get(0)?))
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// When the archive `id` was last used, if it is tracked.
    pub fn blob_last_used(&self, id: &ContentId) -> Result<Option<i64>, Error> {
        self.conn()
            .query_row(
                "SELECT last_used FROM blob_use WHERE content_id = ?1",
                [id.as_bytes().as_slice()],
                |r| r.get(0),
            )
            .optional()
            .map_err(crate::db::sqlite(self.path()))
    }
}
