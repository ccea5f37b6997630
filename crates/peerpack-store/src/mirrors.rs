//! What this node mirrors: names, and owner keys whose every name it mirrors.

use peerpack_core::{ContentId, PackageName, PublicKey};
use rusqlite::{OptionalExtension, params};

use crate::db::{Db, Error, now, sqlite};

/// A mirror rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mirror {
    /// Every version of one name.
    Name(PackageName),
    /// Every version of every name this key owns here.
    Owner(PublicKey),
}

impl Db {
    /// Add a rule; false if it was there already.
    pub fn add_mirror(&mut self, rule: &Mirror) -> Result<bool, Error> {
        let t = now();
        self.write(|tx, p| {
            let n = match rule {
                Mirror::Name(n) => tx.execute(
                    "INSERT INTO mirror_names (name, added_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    params![n.as_str(), t],
                ),
                Mirror::Owner(k) => tx.execute(
                    "INSERT INTO mirror_owners (owner, added_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    params![k.as_bytes().as_slice(), t],
                ),
            }
            .map_err(sqlite(p))?;
            Ok(n == 1)
        })
    }

    /// Remove a rule; false if there was none.
    pub fn remove_mirror(&mut self, rule: &Mirror) -> Result<bool, Error> {
        self.write(|tx, p| {
            let n = match rule {
                Mirror::Name(n) => {
                    tx.execute("DELETE FROM mirror_names WHERE name = ?1", [n.as_str()])
                }
                Mirror::Owner(k) => tx.execute(
                    "DELETE FROM mirror_owners WHERE owner = ?1",
                    [k.as_bytes().as_slice()],
                ),
            }
            .map_err(sqlite(p))?;
            Ok(n == 1)
        })
    }

    /// Every rule, names first.
    pub fn mirrors(&self) -> Result<Vec<Mirror>, Error> {
        let err = sqlite(self.path());
        let mut out = Vec::new();
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT name FROM mirror_names ORDER BY name")
            .map_err(err)?;
        for name in stmt.query_map([], |r| r.get::<_, String>(0)).map_err(err)? {
            if let Ok(n) = PackageName::new(&name.map_err(err)?) {
                out.push(Mirror::Name(n));
            }
        }
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT owner FROM mirror_owners ORDER BY owner")
            .map_err(err)?;
        for owner in stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .map_err(err)?
        {
            let bytes: [u8; 32] = owner.map_err(err)?.try_into().map_err(|_| Error::Corrupt {
                path: self.path().to_owned(),
                name: "mirror_owners".into(),
                reason: "an owner key that is not 32 bytes".into(),
            })?;
            if let Ok(k) = PublicKey::from_bytes(&bytes) {
                out.push(Mirror::Owner(k));
            }
        }
        Ok(out)
    }

    /// Whether a version of `name` is mirrored here: the name is, or the key that owns it.
    pub fn is_mirrored(&self, name: &PackageName) -> Result<bool, Error> {
        let err = sqlite(self.path());
        let hit: Option<i64> = self
            .conn()
            .prepare_cached(
                "SELECT 1 WHERE EXISTS (SELECT 1 FROM mirror_names WHERE name = ?1)
                    OR EXISTS (SELECT 1 FROM mirror_owners m JOIN packages p
                               ON p.owner = m.owner WHERE p.name = ?1)",
            )
            .map_err(err)?
            .query_row([name.as_str()], |r| r.get(0))
            .optional()
            .map_err(err)?;
        Ok(hit.is_some())
    }

    /// The names a rule covers now.
    pub fn mirrored_names(&self, rule: &Mirror) -> Result<Vec<PackageName>, Error> {
        match rule {
            Mirror::Name(n) => Ok(vec![n.clone()]),
            Mirror::Owner(k) => {
                let err = sqlite(self.path());
                let mut stmt = self
                    .conn()
                    .prepare_cached("SELECT name FROM packages WHERE owner = ?1 ORDER BY name")
                    .map_err(err)?;
                let names = stmt
                    .query_map([k.as_bytes().as_slice()], |r| r.get::<_, String>(0))
                    .map_err(err)?
                    .filter_map(|n| n.ok().and_then(|n| PackageName::new(&n).ok()))
                    .collect();
                Ok(names)
            }
        }
    }

    /// The archives of every mirrored version whose record is known.
    pub fn mirrored_content(&self) -> Result<Vec<ContentId>, Error> {
        let err = sqlite(self.path());
        let mut stmt = self
            .conn()
            .prepare_cached(
                "SELECT v.content_id FROM versions v
                  WHERE v.name IN (SELECT name FROM mirror_names)
                     OR v.name IN (SELECT p.name FROM packages p
                                   JOIN mirror_owners m ON m.owner = p.owner)",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                let b: Vec<u8> = r.get(0)?;
                Ok(b)
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for b in rows {
            let b = b.map_err(err)?;
            if let Ok(a) = <[u8; 32]>::try_from(b.as_slice()) {
                out.push(ContentId::from_bytes(a));
            }
        }
        Ok(out)
    }
}
