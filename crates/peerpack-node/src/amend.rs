//! What an owner says about versions already published: yanks and deprecations, carried in a
//! new signed index record (docs/PROTOCOL.md §5.2), stored, put in the DHT and gossiped.

use std::sync::Arc;

use peerpack_api::Amended;
use peerpack_core::record::IndexEntry;
use peerpack_core::{IndexRecord, PackageName, Version, VersionReq};
use peerpack_net::protocol;

use crate::context::Context;
use crate::error::Error;
use crate::names::parse_spec;

impl Context {
    /// Yank `NAME@VERSION` (or, with `undo`, take the yank back).
    #[tracing::instrument(skip(self, reason))]
    pub async fn yank(
        self: &Arc<Self>,
        spec: &str,
        reason: Option<String>,
        undo: bool,
    ) -> Result<Amended, Error> {
        let (name, version) = spec.split_once('@').unwrap_or((spec, ""));
        let name = parse_spec(name)?.0;
        let version = Version::parse(version.trim_start_matches('=')).map_err(|_| {
            Error::BadRequest(format!(
                "{spec:?}: name one exact version to yank, as {name}@1.2.0"
            ))
        })?;
        let new = if undo {
            None
        } else {
            Some(reason.unwrap_or_default())
        };
        self.amend(name, move |entries| {
            let e = entries
                .iter_mut()
                .find(|e| e.version == version)
                .ok_or_else(|| missing(&version.to_string()))?;
            Ok(if e.yanked == new {
                Vec::new()
            } else {
                e.yanked = new;
                vec![e.version.clone()]
            })
        })
        .await
    }

    /// Deprecate every version of `NAME`, or those matching `NAME@REQ`, with `message` (none
    /// takes the deprecation back).
    #[tracing::instrument(skip(self, message))]
    pub async fn deprecate(
        self: &Arc<Self>,
        spec: &str,
        message: Option<String>,
    ) -> Result<Amended, Error> {
        let (name, req) = parse_spec(spec)?;
        let req = req.unwrap_or(VersionReq::STAR);
        self.amend(name, move |entries| {
            let mut changed = Vec::new();
            let mut matched = false;
            for e in entries.iter_mut() {
                // `*` matches pre-releases too: a whole name is deprecated.
                if req == VersionReq::STAR || req.matches(&e.version) {
                    matched = true;
                    if e.deprecated != message {
                        e.deprecated.clone_from(&message);
                        changed.push(e.version.clone());
                    }
                }
            }
            if matched {
                Ok(changed)
            } else {
                Err(missing(&req.to_string()))
            }
        })
        .await
    }

    /// Change the entries of `name`'s index as `change` says (answering the versions it
    /// changed), sign it with the next `seq`, store it, put it in the DHT and gossip it. Only the
    /// name's owner can: the index is signed with this node's publisher key.
    async fn amend(
        self: &Arc<Self>,
        name: PackageName,
        change: impl FnOnce(&mut Vec<IndexEntry>) -> Result<Vec<Version>, Error> + Send + 'static,
    ) -> Result<Amended, Error> {
        // Sign on top of the newest index the network holds, not only this node's copy: the
        // key may publish from several machines.
        if let Err(e) = crate::lookup::lookup(self, &name).await {
            tracing::info!(%name, error = %e, "could not read the name's index before amending it");
        }
        let key = self.publisher.clone();
        let n = name.clone();
        let (index, changed) = self
            .catalogue
            .with_store(move |s| {
                let owner = s
                    .db
                    .owner(&n)?
                    .ok_or_else(|| Error::NotFound(format!("no package named {n} is known here")))?;
                if owner != key.public() {
                    return Err(Error::Conflict(format!(
                        "{n} is owned by {owner}; only its owner can yank or deprecate its versions (this node's key is {})",
                        key.public()
                    )));
                }
                let known = s.db.index_record(&n)?;
                let mut entries: Vec<IndexEntry> = match &known {
                    Some(i) => i.versions.clone(),
                    None => s
                        .db
                        .versions(&n)?
                        .iter()
                        .map(|r| IndexEntry::new(r.version().clone(), r.hash()))
                        .collect(),
                };
                let changed = change(&mut entries)?;
                if changed.is_empty()
                    && let Some(i) = known
                {
                    return Ok((i, changed));
                }
                let seq = known.map_or(1, |i| i.seq + 1);
                let index = IndexRecord::sign(n.clone(), entries, seq, now(), &key)
                    .map_err(|e| Error::BadRequest(e.to_string()))?;
                s.db.insert_index(&index)?;
                Ok((index, changed))
            })
            .await?;
        let bytes = index.encode();
        let announced_to = if changed.is_empty() {
            0
        } else {
            let (put, announced) = futures::join!(
                self.net
                    .put_record(protocol::index_key(&name), bytes.clone()),
                self.net
                    .announce_on(peerpack_net::protocol::Topic::Indexes, bytes),
            );
            if let Err(e) = put {
                tracing::warn!(error = %e, "DHT put of the amended index failed");
            }
            announced.unwrap_or_else(|e| {
                tracing::info!(error = %e, "amended index not gossiped; peers read it from the DHT");
                0
            })
        };
        tracing::info!(%name, seq = index.seq, changed = changed.len(), "amended the index");
        Ok(Amended {
            name: name.to_string(),
            versions: changed.iter().map(ToString::to_string).collect(),
            index_seq: index.seq,
            announced_to,
        })
    }
}

fn missing(what: &str) -> Error {
    Error::NotFound(format!("no published version matches {what}"))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
