//! Name ownership on a [`Db`]: the trusted curators and their lists, owners the user pinned,
//! claims by other keys and contested names. What decides is in [`super::names`].

use std::collections::BTreeSet;

use peerpack_core::{CuratorList, PackageName, PublicKey, Version};
use rusqlite::{OptionalExtension, params};

use super::names::{Claim, NameState, Seen, decide, key_of, reassign, record_claim, settle};
use super::{Db, Error, Inserted, now, sqlite};

impl Db {
    /// Set the curators the operator trusts, in priority order, and bring every name they
    /// vouch for in step with them.
    pub fn set_curators(&mut self, curators: Vec<PublicKey>) -> Result<Vec<PackageName>, Error> {
        self.curators = curators;
        self.settle_all()
    }

    /// The trusted curators, in priority order.
    pub fn curators(&self) -> &[PublicKey] {
        &self.curators
    }

    /// `name`'s ownership as this node decides it.
    pub fn name_state(&self, name: &PackageName) -> Result<NameState, Error> {
        decide(self.conn(), self.path(), &self.curators, name)
    }

    /// Claims to `name` by keys other than its owner, most recent first.
    pub fn claims(&self, name: &PackageName) -> Result<Vec<Claim>, Error> {
        let err = sqlite(self.path());
        let mut stmt = self
            .conn()
            .prepare_cached(
                "SELECT publisher, seq, versions, first_seen, last_seen FROM claims
                 WHERE name = ?1 ORDER BY last_seen DESC, publisher",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map([name.as_str()], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let (key, seq, versions, first_seen, last_seen) = row.map_err(err)?;
            let mut peers_stmt = self
                .conn()
                .prepare_cached(
                    "SELECT peer_id FROM claim_peers WHERE name = ?1 AND publisher = ?2
                     ORDER BY seen_at DESC, peer_id",
                )
                .map_err(err)?;
            let peers = peers_stmt
                .query_map(params![name.as_str(), key], |r| r.get::<_, String>(0))
                .map_err(err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(err)?;
            out.push(Claim {
                publisher: key_of(self.path(), name.as_str(), &key)?,
                seq: seq.max(0) as u64,
                versions: serde_json::from_str::<Vec<String>>(&versions)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|v| Version::parse(v).ok())
                    .collect(),
                peers,
                first_seen,
                last_seen,
            });
        }
        Ok(out)
    }

    /// Names that are contested here.
    pub fn contested_names(&self) -> Result<Vec<PackageName>, Error> {
        self.names("SELECT name FROM contested ORDER BY name")
    }

    /// Names that have an owner here and also claims by other keys.
    pub fn disputed_names(&self) -> Result<Vec<PackageName>, Error> {
        self.names(
            "SELECT DISTINCT c.name FROM claims c JOIN packages p ON p.name = c.name ORDER BY c.name",
        )
    }

    fn names(&self, sql: &str) -> Result<Vec<PackageName>, Error> {
        let err = sqlite(self.path());
        let mut stmt = self.conn().prepare_cached(sql).map_err(err)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let text = row.map_err(err)?;
            out.push(PackageName::new(&text).map_err(|e| Error::Corrupt {
                path: self.path().to_owned(),
                name: text.clone(),
                reason: e.to_string(),
            })?);
        }
        Ok(out)
    }

    /// Keep claims seen for `name` by keys that are not its owner (for example several index
    /// records from one DHT lookup). If the name has no owner and more than one key claims it,
    /// it becomes contested. Returns the name's state afterwards.
    pub fn record_claims(
        &mut self,
        name: &PackageName,
        claims: &[(PublicKey, Seen)],
    ) -> Result<NameState, Error> {
        let curators = self.curators.clone();
        self.write(|tx, path| {
            let state = decide(tx, path, &curators, name)?;
            let owner = state.owner();
            let mut others: Vec<&(PublicKey, Seen)> =
                claims.iter().filter(|(k, _)| Some(*k) != owner).collect();
            // Best supported first, so that a flood of one-peer keys cannot crowd out a claim
            // that many peers serve.
            others.sort_by_key(|(_, seen)| std::cmp::Reverse(seen.peers.len()));
            // One claimant of an unclaimed name is trusted on first use by the insert that
            // follows; nothing to keep.
            if state == NameState::Unknown && others.len() <= 1 {
                return Ok(state);
            }
            if state == NameState::Unknown && others.len() > 1 {
                tx.execute(
                    "INSERT INTO contested (name, since) VALUES (?1, ?2) ON CONFLICT(name) DO NOTHING",
                    params![name.as_str(), now()],
                )
                .map_err(sqlite(path))?;
            }
            for (key, seen) in others {
                record_claim(tx, path, name, key, seen)?;
            }
            decide(tx, path, &curators, name)
        })
    }

    /// Pin `owner` as `name`'s owner. Records of the previous owner leave the catalogue and
    /// are kept as its claim. Returns whether the recorded owner changed.
    pub fn trust(&mut self, name: &PackageName, owner: &PublicKey) -> Result<bool, Error> {
        self.write(|tx, path| {
            tx.execute(
                "INSERT INTO trusted_owners (name, owner, trusted_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, trusted_at = excluded.trusted_at",
                params![name.as_str(), owner.as_bytes().as_slice(), now()],
            )
            .map_err(sqlite(path))?;
            reassign(tx, path, name, owner)
        })
    }

    /// Remove the pin on `name`. The recorded owner stays, now as this node's first-seen
    /// owner, unless a trusted curator names another. Returns whether there was a pin.
    pub fn untrust(&mut self, name: &PackageName) -> Result<bool, Error> {
        let curators = self.curators.clone();
        self.write(|tx, path| {
            let n = tx
                .execute(
                    "DELETE FROM trusted_owners WHERE name = ?1",
                    [name.as_str()],
                )
                .map_err(sqlite(path))?;
            settle(tx, path, &curators, name)?;
            Ok(n > 0)
        })
    }

    /// Every pinned owner: (name, key, Unix seconds when pinned), in name order.
    pub fn trusted(&self) -> Result<Vec<(PackageName, PublicKey, i64)>, Error> {
        let err = sqlite(self.path());
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT name, owner, trusted_at FROM trusted_owners ORDER BY name")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let (name, key, at) = row.map_err(err)?;
            let key = key_of(self.path(), &name, &key)?;
            let name = PackageName::new(&name).map_err(|e| Error::Corrupt {
                path: self.path().to_owned(),
                name: name.clone(),
                reason: e.to_string(),
            })?;
            out.push((name, key, at));
        }
        Ok(out)
    }

    /// Make `owner` the owner of `name` if nothing here decides it yet (no owner, or a
    /// contest): what an install from a lock file does with the key the lock names. Returns
    /// the state afterwards.
    pub fn adopt_owner(
        &mut self,
        name: &PackageName,
        owner: &PublicKey,
    ) -> Result<NameState, Error> {
        let curators = self.curators.clone();
        self.write(|tx, path| {
            if matches!(
                decide(tx, path, &curators, name)?,
                NameState::Unknown | NameState::Contested
            ) {
                reassign(tx, path, name, owner)?;
            }
            decide(tx, path, &curators, name)
        })
    }

    /// Store a verified curator list if it is newer than the one held from its curator, and
    /// bring the names it (or its predecessor) lists in step. Returns what the insert did and
    /// the names whose recorded owner changed.
    pub fn insert_curator_list(
        &mut self,
        list: &CuratorList,
    ) -> Result<(Inserted, Vec<PackageName>), Error> {
        list.verify()?;
        let curators = self.curators.clone();
        self.write(|tx, path| {
            let err = sqlite(path);
            let c = list.curator.as_bytes().as_slice();
            let known: Option<Vec<u8>> = tx
                .query_row("SELECT record FROM curator_lists WHERE curator = ?1", [c], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(err)?;
            let mut names: BTreeSet<PackageName> = list.entries.keys().cloned().collect();
            let outcome = match known {
                None => Inserted::New,
                Some(bytes) if bytes == list.encode() => return Ok((Inserted::Unchanged, Vec::new())),
                Some(bytes) => {
                    let old = CuratorList::decode(&bytes).map_err(|e| Error::Corrupt {
                        path: path.to_owned(),
                        name: format!("curator list of {}", list.curator),
                        reason: e.to_string(),
                    })?;
                    if list.seq < old.seq {
                        return Ok((Inserted::Stale, Vec::new()));
                    }
                    if list.seq == old.seq {
                        return Err(Error::Refused(
                            peerpack_core::record::RecordError::CuratorEquivocation {
                                curator: list.curator,
                                seq: list.seq,
                            },
                        ));
                    }
                    names.extend(old.entries.keys().cloned());
                    Inserted::Replaced
                }
            };
            tx.execute(
                "INSERT INTO curator_lists (curator, seq, record, received_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(curator) DO UPDATE SET seq = excluded.seq, record = excluded.record,
                   received_at = excluded.received_at",
                params![c, i64::try_from(list.seq).unwrap_or(i64::MAX), list.encode(), now()],
            )
            .map_err(err)?;
            tx.execute("DELETE FROM curator_entries WHERE curator = ?1", [c])
                .map_err(err)?;
            for (name, owner) in &list.entries {
                tx.execute(
                    "INSERT INTO curator_entries (curator, name, owner) VALUES (?1, ?2, ?3)",
                    params![c, name.as_str(), owner.as_bytes().as_slice()],
                )
                .map_err(err)?;
            }
            let mut changed = Vec::new();
            for name in names {
                if settle(tx, path, &curators, &name)? {
                    changed.push(name);
                }
            }
            Ok((outcome, changed))
        })
    }

    /// The newest list held from `curator`.
    pub fn curator_list(&self, curator: &PublicKey) -> Result<Option<CuratorList>, Error> {
        let bytes: Option<Vec<u8>> = self
            .conn()
            .query_row(
                "SELECT record FROM curator_lists WHERE curator = ?1",
                [curator.as_bytes().as_slice()],
                |r| r.get(0),
            )
            .optional()
            .map_err(sqlite(self.path()))?;
        bytes
            .map(|b| {
                CuratorList::decode(&b).map_err(|e| Error::Corrupt {
                    path: self.path().to_owned(),
                    name: format!("curator list of {curator}"),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    /// Bring every name with a pinned owner or a curated one in step with it (after the
    /// trusted curators change). Returns the names whose recorded owner changed.
    fn settle_all(&mut self) -> Result<Vec<PackageName>, Error> {
        let curators = self.curators.clone();
        let names: BTreeSet<PackageName> = {
            let mut names: BTreeSet<PackageName> = self
                .names("SELECT name FROM trusted_owners UNION SELECT name FROM curator_entries")?
                .into_iter()
                .collect();
            names.extend(self.contested_names()?);
            names
        };
        self.write(|tx, path| {
            let mut changed = Vec::new();
            for name in names {
                if settle(tx, path, &curators, &name)? {
                    changed.push(name);
                }
            }
            Ok(changed)
        })
    }
}
