//! Who owns a name, and who else claims it.
//!
//! A node decides a name's owner from what it trusts, in this order:
//! 1. an owner the user pinned (`peerpack trust NAME KEY`);
//! 2. an owner vouched for by a curator the operator trusts (the first such curator in the
//!    configuration's order that lists the name);
//! 3. the owner this node recorded first (trust on first use);
//! 4. otherwise, if several keys were seen claiming the name at once, it is **contested**, and
//!    it has no owner until the user or a curator chooses.
//!
//! Never "the highest sequence number wins" across keys: anyone can sign a high number.
//! `packages.owner` always holds the decided owner, and only the owner's records are in the
//! catalogue. A valid record signed by another key is kept as a *claim* (its key, sequence
//! number, versions, and the peers that served it): shown by `info`, never decisive.
//!
//! The `Db` methods that use these rules are in `owners` (curators, pins, claims) and
//! `records` (every insert).

use std::collections::BTreeSet;
use std::path::Path;

use peerpack_core::{PackageName, PublicKey, Version};
use rusqlite::{OptionalExtension, params};

use super::{Error, now, sqlite};

/// Most keys whose claims are kept for one name. When a name has this many, a new claim
/// replaces the least supported one (fewest serving peers, then least recently seen) if it is
/// supported at least as well; otherwise it is not kept.
pub const MAX_CLAIMANTS: usize = 8;
/// Most peers remembered for one claim.
pub const MAX_CLAIM_PEERS: usize = 8;
/// Most versions remembered for one claim.
pub const MAX_CLAIM_VERSIONS: usize = 64;

/// Why a key owns a name on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerSource {
    /// The user pinned it.
    Trusted,
    /// A trusted curator vouches for it.
    Curator(PublicKey),
    /// It was the first key this node saw publish the name.
    FirstSeen,
}

impl OwnerSource {
    /// `trusted`, `curator` or `first-seen`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Trusted => "trusted",
            Self::Curator(_) => "curator",
            Self::FirstSeen => "first-seen",
        }
    }
}

/// What this node holds about a name's ownership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameState {
    /// The name has an owner.
    Owned {
        /// The owner's key.
        owner: PublicKey,
        /// Why.
        source: OwnerSource,
    },
    /// Several keys claim it and nothing here decides: nothing installs under it.
    Contested,
    /// Nobody has claimed it here yet.
    Unknown,
}

impl NameState {
    /// The owner, if decided.
    pub fn owner(&self) -> Option<PublicKey> {
        match self {
            Self::Owned { owner, .. } => Some(*owner),
            _ => None,
        }
    }
}

/// A claim seen for a name by a key that is not its owner here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The claiming key.
    pub publisher: PublicKey,
    /// The highest index record sequence number seen from it (0 if none).
    pub seq: u64,
    /// Versions it claims, ascending.
    pub versions: Vec<Version>,
    /// Peers that served it.
    pub peers: Vec<String>,
    /// First seen, Unix seconds.
    pub first_seen: i64,
    /// Last seen, Unix seconds.
    pub last_seen: i64,
}

/// A claim as seen in one batch, before it is stored.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// Highest index seq in it (0 if only package records).
    pub seq: u64,
    /// Versions it names.
    pub versions: Vec<Version>,
    /// Peers that served it.
    pub peers: Vec<String>,
}

/// What an insert should do with a record signed by `key`.
pub(crate) enum Decision {
    /// `key` owns the name: store the record.
    Owner,
    /// Another key owns it, or the name is contested: keep the record as a claim.
    Claim,
}

pub(crate) fn key_of(path: &Path, name: &str, bytes: &[u8]) -> Result<PublicKey, Error> {
    <[u8; 32]>::try_from(bytes)
        .ok()
        .and_then(|b| PublicKey::from_bytes(&b).ok())
        .ok_or_else(|| Error::Corrupt {
            path: path.to_owned(),
            name: name.to_owned(),
            reason: "a stored key is not a valid ed25519 key".into(),
        })
}

fn one_key(
    conn: &rusqlite::Connection,
    path: &Path,
    sql: &str,
    params: impl rusqlite::Params,
    name: &str,
) -> Result<Option<PublicKey>, Error> {
    let bytes: Option<Vec<u8>> = conn
        .prepare_cached(sql)
        .and_then(|mut s| s.query_row(params, |r| r.get(0)).optional())
        .map_err(sqlite(path))?;
    bytes.map(|b| key_of(path, name, &b)).transpose()
}

/// Decide `name`'s state from what is stored and the trusted `curators`.
pub(crate) fn decide(
    conn: &rusqlite::Connection,
    path: &Path,
    curators: &[PublicKey],
    name: &PackageName,
) -> Result<NameState, Error> {
    let n = name.as_str();
    if let Some(owner) = one_key(
        conn,
        path,
        "SELECT owner FROM trusted_owners WHERE name = ?1",
        [n],
        n,
    )? {
        return Ok(NameState::Owned {
            owner,
            source: OwnerSource::Trusted,
        });
    }
    for curator in curators {
        if let Some(owner) = one_key(
            conn,
            path,
            "SELECT owner FROM curator_entries WHERE curator = ?1 AND name = ?2",
            params![curator.as_bytes().as_slice(), n],
            n,
        )? {
            return Ok(NameState::Owned {
                owner,
                source: OwnerSource::Curator(*curator),
            });
        }
    }
    if let Some(owner) = one_key(
        conn,
        path,
        "SELECT owner FROM packages WHERE name = ?1",
        [n],
        n,
    )? {
        return Ok(NameState::Owned {
            owner,
            source: OwnerSource::FirstSeen,
        });
    }
    let contested: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM contested WHERE name = ?1")
        .and_then(|mut s| s.query_row([n], |r| r.get(0)).optional())
        .map_err(sqlite(path))?;
    Ok(if contested.is_some() {
        NameState::Contested
    } else {
        NameState::Unknown
    })
}

/// Decide whether a record for `name` signed by `key` belongs in the catalogue, recording
/// `key` as the owner on first use and keeping the catalogue in step with a trusted or curated
/// owner.
pub(crate) fn decide_for_insert(
    tx: &rusqlite::Connection,
    path: &Path,
    curators: &[PublicKey],
    name: &PackageName,
    key: &PublicKey,
) -> Result<Decision, Error> {
    match decide(tx, path, curators, name)? {
        NameState::Owned { owner, .. } if owner == *key => {
            // A trusted or curated owner may not be the recorded one yet.
            reassign(tx, path, name, key)?;
            Ok(Decision::Owner)
        }
        NameState::Owned { .. } | NameState::Contested => Ok(Decision::Claim),
        NameState::Unknown => {
            reassign(tx, path, name, key)?;
            Ok(Decision::Owner)
        }
    }
}

/// Make `owner` the recorded owner of `name`. The previous owner's records leave the
/// catalogue and are kept as its claim; the name is no longer contested. Returns whether the
/// recorded owner changed.
pub(crate) fn reassign(
    tx: &rusqlite::Connection,
    path: &Path,
    name: &PackageName,
    owner: &PublicKey,
) -> Result<bool, Error> {
    let err = sqlite(path);
    let n = name.as_str();
    let previous = one_key(
        tx,
        path,
        "SELECT owner FROM packages WHERE name = ?1",
        [n],
        n,
    )?;
    if previous == Some(*owner) {
        return Ok(false);
    }
    if let Some(old) = previous {
        let versions: Vec<Version> = {
            let mut stmt = tx
                .prepare_cached("SELECT version FROM versions WHERE name = ?1")
                .map_err(err)?;
            let rows = stmt
                .query_map([n], |r| r.get::<_, String>(0))
                .map_err(err)?;
            let mut out = Vec::new();
            for v in rows {
                if let Ok(v) = Version::parse(&v.map_err(err)?) {
                    out.push(v);
                }
            }
            out
        };
        let seq: Option<i64> = tx
            .query_row("SELECT seq FROM index_records WHERE name = ?1", [n], |r| {
                r.get(0)
            })
            .optional()
            .map_err(err)?;
        tx.execute("DELETE FROM index_records WHERE name = ?1", [n])
            .map_err(err)?;
        // The removed versions leave the catalogue summary in the same transaction.
        let hashes: Vec<Vec<u8>> = {
            let mut stmt = tx
                .prepare_cached("SELECT record_hash FROM versions WHERE name = ?1")
                .map_err(err)?;
            let rows = stmt
                .query_map([n], |r| r.get::<_, Vec<u8>>(0))
                .map_err(err)?;
            rows.collect::<Result<_, _>>().map_err(err)?
        };
        let slices: Vec<&[u8]> = hashes.iter().map(Vec::as_slice).collect();
        super::bump_summary(
            tx,
            path,
            -i64::try_from(hashes.len()).unwrap_or(i64::MAX),
            &slices,
        )?;
        tx.execute("DELETE FROM versions WHERE name = ?1", [n])
            .map_err(err)?;
        tx.execute(
            "UPDATE packages SET owner = ?2, first_seen = ?3 WHERE name = ?1",
            params![n, owner.as_bytes().as_slice(), now()],
        )
        .map_err(err)?;
        record_claim(
            tx,
            path,
            name,
            &old,
            &Seen {
                seq: seq.map_or(0, |s| s.max(0) as u64),
                versions,
                peers: Vec::new(),
            },
        )?;
    } else {
        tx.execute(
            "INSERT INTO packages (name, owner, first_seen) VALUES (?1, ?2, ?3)",
            params![n, owner.as_bytes().as_slice(), now()],
        )
        .map_err(err)?;
    }
    tx.execute("DELETE FROM contested WHERE name = ?1", [n])
        .map_err(err)?;
    tx.execute(
        "DELETE FROM claims WHERE name = ?1 AND publisher = ?2",
        params![n, owner.as_bytes().as_slice()],
    )
    .map_err(err)?;
    Ok(true)
}

/// Keep (or update) `key`'s claim to `name`. A name keeps at most [`MAX_CLAIMANTS`] claims.
pub(crate) fn record_claim(
    tx: &rusqlite::Connection,
    path: &Path,
    name: &PackageName,
    key: &PublicKey,
    seen: &Seen,
) -> Result<(), Error> {
    let err = sqlite(path);
    let n = name.as_str();
    let k = key.as_bytes().as_slice();
    let known: Option<(i64, String)> = tx
        .prepare_cached("SELECT seq, versions FROM claims WHERE name = ?1 AND publisher = ?2")
        .and_then(|mut s| {
            s.query_row(params![n, k], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(err)?;
    let (seq, mut versions) = match known {
        Some((seq, text)) => {
            let versions: BTreeSet<Version> = serde_json::from_str::<Vec<String>>(&text)
                .unwrap_or_default()
                .iter()
                .filter_map(|v| Version::parse(v).ok())
                .collect();
            (seq.max(0) as u64, versions)
        }
        None => {
            let count: i64 = tx
                .query_row("SELECT count(*) FROM claims WHERE name = ?1", [n], |r| {
                    r.get(0)
                })
                .map_err(err)?;
            if count as usize >= MAX_CLAIMANTS {
                // The least supported claim: fewest peers that served it, then oldest.
                let weakest: Option<(Vec<u8>, i64)> = tx
                    .query_row(
                        "SELECT c.publisher,
                           (SELECT count(*) FROM claim_peers p
                            WHERE p.name = c.name AND p.publisher = c.publisher) AS support
                         FROM claims c WHERE c.name = ?1
                         ORDER BY support ASC, c.last_seen ASC, c.first_seen ASC LIMIT 1",
                        [n],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                    .map_err(err)?;
                match weakest {
                    Some((weakest, support))
                        if seen.peers.len().min(MAX_CLAIM_PEERS) as i64 >= support =>
                    {
                        tx.execute(
                            "DELETE FROM claims WHERE name = ?1 AND publisher = ?2",
                            params![n, weakest],
                        )
                        .map_err(err)?;
                    }
                    _ => {
                        tracing::debug!(name = n, claimant = %key, "too many claimants; claim not kept");
                        return Ok(());
                    }
                }
            }
            (0, BTreeSet::new())
        }
    };
    versions.extend(seen.versions.iter().cloned());
    // Keep the highest versions when there are too many.
    let versions: Vec<String> = versions
        .iter()
        .rev()
        .take(MAX_CLAIM_VERSIONS)
        .rev()
        .map(ToString::to_string)
        .collect();
    let versions = serde_json::to_string(&versions).unwrap_or_else(|_| "[]".into());
    let seq = i64::try_from(seq.max(seen.seq)).unwrap_or(i64::MAX);
    let t = now();
    tx.execute(
        "INSERT INTO claims (name, publisher, seq, versions, first_seen, last_seen)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT(name, publisher) DO UPDATE SET seq = excluded.seq,
           versions = excluded.versions, last_seen = excluded.last_seen",
        params![n, k, seq, versions, t],
    )
    .map_err(err)?;
    for peer in &seen.peers {
        let peers: i64 = tx
            .query_row(
                "SELECT count(*) FROM claim_peers WHERE name = ?1 AND publisher = ?2 AND peer_id != ?3",
                params![n, k, peer],
                |r| r.get(0),
            )
            .map_err(err)?;
        if peers as usize >= MAX_CLAIM_PEERS {
            break;
        }
        tx.execute(
            "INSERT INTO claim_peers (name, publisher, peer_id, seen_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(name, publisher, peer_id) DO UPDATE SET seen_at = excluded.seen_at",
            params![n, k, peer, t],
        )
        .map_err(err)?;
    }
    Ok(())
}

/// Bring the recorded owner of `name` in step with a trusted or curated owner, if there is
/// one. Returns whether it changed.
pub(crate) fn settle(
    tx: &rusqlite::Connection,
    path: &Path,
    curators: &[PublicKey],
    name: &PackageName,
) -> Result<bool, Error> {
    match decide(tx, path, curators, name)? {
        NameState::Owned {
            owner,
            source: OwnerSource::Trusted | OwnerSource::Curator(_),
        } => reassign(tx, path, name, &owner),
        _ => Ok(false),
    }
}
