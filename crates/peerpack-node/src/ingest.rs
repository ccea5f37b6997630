//! Everything that arrives from other peers goes through here: gossip announcements, DHT
//! writes, sync pages and DHT reads. Each record is decoded and its signature verified, then
//! the store decides: the name's owner's records enter the catalogue, other keys' valid records
//! are kept as claims, and stale or equivocating ones are dropped. Only bad bytes (malformed,
//! forged, or not what was asked for) cost the sending peer reputation: an honest peer may
//! relay a valid record that merely conflicts with this node's choices.

use std::sync::Arc;

use peerpack_core::record::RecordError;
use peerpack_core::{CuratorList, IndexRecord, PackageName, PackageRecord, PublicKey, Version};
use peerpack_net::p2p::PeerId;
use peerpack_net::p2p::kad::Record;
use peerpack_net::{MessageAcceptance, protocol};
use peerpack_store::{Inserted, db};

use crate::context::Context;
use crate::error::Error;

/// Outcome of storing a batch of records from one peer.
#[derive(Debug, Default, Clone, Copy)]
pub struct Batch {
    /// Records that changed the catalogue.
    pub changed: usize,
    /// Valid records already known.
    pub known: usize,
    /// Valid records older than the one held: not stored, not forwarded, not credited.
    pub stale: usize,
    /// Valid records by a key that does not own the name here, kept as claims.
    pub disputed: usize,
    /// Valid records refused because they conflict with what this node holds (a changed
    /// version, an equivocation). Not the sender's fault.
    pub conflicting: usize,
    /// Bad bytes: malformed or forged records.
    pub invalid: usize,
}

/// How a record reached this node: the `via` of `peerpack.records.refused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A gossip announcement.
    Gossip,
    /// A catalogue sync page.
    Sync,
    /// A peer asked this node to hold it in the DHT.
    Dht,
    /// This node read it from the DHT (a lookup).
    Lookup,
}

impl Via {
    /// The attribute value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gossip => "gossip",
            Self::Sync => "sync",
            Self::Dht => "dht",
            Self::Lookup => "lookup",
        }
    }
}

/// Count and trace a record this node did not take.
fn refused(
    inner: &Context,
    via: Via,
    reason: &'static str,
    from: Option<PeerId>,
    detail: &dyn std::fmt::Display,
) {
    inner
        .metrics
        .record_refused(via.name(), reason, from, detail);
}

/// How a store refusal counts: bad bytes, or a valid record this node will not take.
fn refusal(inner: &Context, batch: &mut Batch, via: Via, from: Option<PeerId>, e: &RecordError) {
    if e.is_invalid_data() {
        refused(inner, via, "invalid", from, e);
        batch.invalid += 1;
    } else {
        refused(inner, via, "conflict", from, e);
        batch.conflicting += 1;
    }
}

/// Decode, verify and store encoded package records sent by `from`, crediting or penalising it.
pub async fn records(
    inner: &Arc<Context>,
    encoded: Vec<Vec<u8>>,
    from: Option<PeerId>,
    via: Via,
) -> Result<Batch, Error> {
    let mut batch = Batch::default();
    let mut valid = Vec::with_capacity(encoded.len());
    let mut hashes = Vec::with_capacity(encoded.len());
    for bytes in &encoded {
        match PackageRecord::decode_verified(bytes) {
            Ok(r) => {
                valid.push(r);
                hashes.push(peerpack_core::RecordHash::of(bytes).0);
            }
            Err(e) => refusal(inner, &mut batch, via, from, &e),
        }
    }
    // Hashes of the valid records the store took or already had: what the sender may be
    // credited for, once per distinct record.
    let mut creditable = Vec::with_capacity(valid.len());
    let mut disputed_names = Vec::new();
    let mut added = Vec::new();
    if !valid.is_empty() {
        let sender = from.map(|p| p.to_string());
        let net = inner.net.clone();
        // What this changes reaches the search index with the next batch: a gossip hop
        // forwards without waiting for an index commit, and a burst of records shares one. A
        // search waits for that batch (`Catalogue::index_current`), so a record looked up for
        // the user is found at once.
        let (valid, results) = inner
            .catalogue
            .with_store_batched(move |s| {
                let results = s.insert_records(&valid, sender.as_deref())?;
                // The DHT copy this node holds of a replaced record must be the one it now
                // accepts; queued under the store lock, in commit order.
                for (record, result) in valid.iter().zip(&results) {
                    if matches!(result, Ok(Inserted::Replaced)) {
                        let _ = net.send_blocking(peerpack_net::Command::StoreRecord {
                            key: protocol::record_key(record.name(), record.version()),
                            value: record.encode(),
                        });
                    }
                }
                Ok((valid, results))
            })
            .await?;
        for ((record, result), hash) in valid.iter().zip(results).zip(&hashes) {
            if matches!(
                result,
                Ok(Inserted::New | Inserted::Replaced | Inserted::Unchanged)
            ) {
                creditable.push(*hash);
            }
            if matches!(result, Ok(Inserted::New)) {
                added.push(record.name().clone());
            }
            match result {
                Ok(i) if i.changed() => batch.changed += 1,
                Ok(Inserted::Disputed) => {
                    batch.disputed += 1;
                    disputed_names.push(record.name().clone());
                }
                Ok(Inserted::Stale) => {
                    refused(inner, via, "stale", from, &"older than the record held");
                    batch.stale += 1;
                }
                Ok(_) => batch.known += 1,
                Err(db::Error::Refused(e)) => refusal(inner, &mut batch, via, from, &e),
                Err(e) => return Err(e.into()),
            }
        }
    }
    if let Some(peer) = from {
        inner.peers.with(|b| {
            b.credit(peer, creditable);
            for _ in 0..batch.invalid {
                b.invalid(peer);
            }
        });
    }
    disputed_names.sort();
    disputed_names.dedup();
    inner.catalogue.refresh_names(disputed_names).await;
    inner.catalogue.note_added(added);
    Ok(batch)
}

/// Validate a gossip announcement and decide whether gossipsub forwards it.
pub async fn announcement(
    inner: &Arc<Context>,
    data: Vec<u8>,
    source: PeerId,
) -> MessageAcceptance {
    match records(inner, vec![data], Some(source), Via::Gossip).await {
        Ok(b) if b.invalid > 0 => MessageAcceptance::Reject,
        // Valid, but not for this node to pass on: another key's claim, or a conflict.
        // (or an older record than the one held: a replay)
        Ok(b) if b.disputed > 0 || b.conflicting > 0 || b.stale > 0 => MessageAcceptance::Ignore,
        // Valid, whether or not this node already had it (a DHT put often arrives first):
        // forward it. Gossipsub's duplicate cache keeps it from looping. Its author is not
        // taken for a provider: only ADD_PROVIDER or a delivery makes one.
        Ok(_) => MessageAcceptance::Accept,
        Err(e) => {
            tracing::warn!(error = %e, "could not process an announcement");
            MessageAcceptance::Ignore
        }
    }
}

/// Validate an owner's amended index (a yank or a deprecation) gossiped on its own topic,
/// exactly as if the peer had asked this node to hold it in the DHT.
pub async fn index_announcement(
    inner: &Arc<Context>,
    data: Vec<u8>,
    source: PeerId,
) -> MessageAcceptance {
    let index = match IndexRecord::decode(&data) {
        Ok(i) => i,
        Err(e) => {
            refused(inner, Via::Gossip, "invalid", Some(source), &e);
            inner.peers.with(|b| b.invalid(source));
            return MessageAcceptance::Reject;
        }
    };
    let record = Record::new(protocol::index_key(&index.name), data);
    match validate_dht_record(inner, source, &record).await {
        Ok(Verdict::Hold | Verdict::Held(_)) => {
            inner.peers.with(|b| b.valid(source, 1));
            MessageAcceptance::Accept
        }
        Ok(Verdict::Skip(reason, why)) => {
            refused(inner, Via::Gossip, reason, Some(source), &why);
            MessageAcceptance::Ignore
        }
        Ok(Verdict::Invalid(why)) => {
            refused(inner, Via::Gossip, "invalid", Some(source), &why);
            inner.peers.with(|b| b.invalid(source));
            MessageAcceptance::Reject
        }
        Ok(Verdict::Counted { invalid: true }) => {
            inner.peers.with(|b| b.invalid(source));
            MessageAcceptance::Reject
        }
        Ok(Verdict::Counted { invalid: false }) => MessageAcceptance::Ignore,
        Err(e) => {
            tracing::warn!(error = %e, "could not process a gossiped index");
            MessageAcceptance::Ignore
        }
    }
}

/// What became of a curator list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CuratorOutcome {
    /// Stored (or already held): the newest list seen from a curator this node trusts.
    /// `owners_changed`: the names whose owner it changed; their new owners' records are not
    /// in the catalogue yet (see [`crate::lookup::look_up_new_owners`]).
    Accepted {
        /// Names whose owner the list changed.
        owners_changed: Vec<PackageName>,
    },
    /// Valid, but from a curator this node does not trust, older than the list held, or
    /// equivocating.
    Ignored,
    /// Bad bytes.
    Invalid,
}

/// Decode, verify and store a curator list sent by `from`.
pub async fn curator_list(
    inner: &Arc<Context>,
    bytes: Vec<u8>,
    from: Option<PeerId>,
    counted: Option<(Via, Option<PeerId>)>,
) -> Result<CuratorOutcome, Error> {
    // Count and trace a refusal as having come `via` from that peer (the sender, or for a
    // lookup the peer that answered).
    let refused = |reason, detail: &dyn std::fmt::Display| {
        if let Some((via, peer)) = counted {
            refused(inner, via, reason, peer, detail);
        }
    };
    let list = match CuratorList::decode_verified(&bytes) {
        Ok(l) => l,
        Err(e) => {
            refused("invalid", &e);
            if let Some(peer) = from {
                inner.peers.with(|b| b.invalid(peer));
            }
            return Ok(CuratorOutcome::Invalid);
        }
    };
    // Only the lists of curators this node trusts are kept, held in the DHT store and
    // forwarded: anyone can make keys, and storing their lists would cost without bound.
    if !inner.curators.contains(&list.curator) {
        refused(
            "untrusted",
            &format_args!(
                "the list of {}, a curator this node does not trust",
                list.curator
            ),
        );
        return Ok(CuratorOutcome::Ignored);
    }
    let key = protocol::curator_key(&list.curator);
    let net = inner.net.clone();
    let outcome = inner
        .catalogue
        .with_store(move |s| match s.insert_curator_list(&list) {
            Ok((i, changed)) => {
                if i.changed() {
                    let _ =
                        net.send_blocking(peerpack_net::Command::StoreRecord { key, value: bytes });
                    crate::catalogue::replace_dht(&net, s, &changed)?;
                }
                Ok(Ok((i, changed)))
            }
            Err(peerpack_store::Error::Db(db::Error::Refused(e))) => Ok(Err(e)),
            Err(e) => Err(e.into()),
        })
        .await?;
    match outcome {
        Ok((i, changed)) if i.changed() || i == Inserted::Unchanged => {
            let owners_changed = if i.changed() {
                tracing::info!(peer = ?from, owners_changed = changed.len(), "stored a curator list");
                inner.catalogue.refresh_names(changed.clone()).await;
                changed
            } else {
                Vec::new()
            };
            if let Some(peer) = from {
                inner.peers.with(|b| b.valid(peer, 1));
            }
            Ok(CuratorOutcome::Accepted { owners_changed })
        }
        Ok(_) => {
            refused("stale", &"not newer than the curator's list held");
            Ok(CuratorOutcome::Ignored)
        }
        Err(e) if e.is_invalid_data() => {
            refused("invalid", &e);
            if let Some(peer) = from {
                inner.peers.with(|b| b.invalid(peer));
            }
            Ok(CuratorOutcome::Invalid)
        }
        Err(e) => {
            refused("conflict", &e);
            Ok(CuratorOutcome::Ignored)
        }
    }
}

/// Validate a gossiped curator list and decide whether gossipsub forwards it. Also answers
/// the names whose owner the list changed.
pub async fn curator_announcement(
    inner: &Arc<Context>,
    data: Vec<u8>,
    source: PeerId,
) -> (MessageAcceptance, Vec<PackageName>) {
    match curator_list(inner, data, Some(source), Some((Via::Gossip, Some(source)))).await {
        Ok(CuratorOutcome::Accepted { owners_changed }) => {
            (MessageAcceptance::Accept, owners_changed)
        }
        Ok(CuratorOutcome::Ignored) => (MessageAcceptance::Ignore, Vec::new()),
        Ok(CuratorOutcome::Invalid) => (MessageAcceptance::Reject, Vec::new()),
        Err(e) => {
            tracing::warn!(error = %e, "could not process a curator list");
            (MessageAcceptance::Ignore, Vec::new())
        }
    }
}

/// Whether the store's answer means the record is held in the DHT store.
fn held(result: &Result<Inserted, db::Error>) -> bool {
    matches!(
        result,
        Ok(Inserted::New | Inserted::Replaced | Inserted::Unchanged)
    )
}

/// What a DHT key names.
pub(crate) enum DhtKey {
    Index(PackageName),
    Record(PackageName, Version),
    Curator(PublicKey),
}

pub(crate) fn parse_key(key: &[u8]) -> Option<DhtKey> {
    let text = std::str::from_utf8(key).ok()?;
    if let Some(hex) = text.strip_prefix("/peerpack/curator/") {
        return format!("ed25519:{hex}")
            .parse()
            .ok()
            .filter(|k| protocol::curator_key(k) == key)
            .map(DhtKey::Curator);
    }
    let rest = text.strip_prefix("/peerpack/pkg/")?;
    match rest.split_once('/') {
        None => PackageName::new(rest).ok().map(DhtKey::Index),
        Some((name, version)) => Some(DhtKey::Record(
            PackageName::new(name).ok()?,
            Version::parse(version).ok()?,
        )),
    }
}

/// What to do with a record a peer asked us to hold in the DHT.
enum Verdict {
    /// This node's validation accepted exactly these bytes: they are held and served.
    Hold,
    /// Accepted, and held by the path that accepted it (a curator list), which changed the
    /// owners of these names.
    Held(Vec<PackageName>),
    /// Valid, but not what this node serves: `stale`, `claim` (another key's record for a
    /// name owned here), `conflict`; the reason, and the detail.
    Skip(&'static str, String),
    /// Bad bytes.
    Invalid(String),
    /// Not held, and already counted where it was refused (a curator list); bad bytes when
    /// `invalid`.
    Counted {
        /// Bad bytes: the sender pays for them.
        invalid: bool,
    },
}

/// Validate a record a peer asked us to hold in the DHT. Only what this node's own validation
/// accepts goes into the DHT store, so only that is ever served: never a stale, equivocating or
/// foreign-owner record. Answers the names whose owner the record changed (a curator list).
pub async fn inbound_dht_record(
    inner: &Arc<Context>,
    source: PeerId,
    record: Record,
) -> Vec<PackageName> {
    match validate_dht_record(inner, source, &record).await {
        Ok(Verdict::Hold) => inner.peers.with(|b| b.valid(source, 1)),
        Ok(Verdict::Held(owners_changed)) => {
            inner.peers.with(|b| b.valid(source, 1));
            return owners_changed;
        }
        Ok(Verdict::Skip(reason, why)) => refused(inner, Via::Dht, reason, Some(source), &why),
        Ok(Verdict::Invalid(why)) => {
            refused(inner, Via::Dht, "invalid", Some(source), &why);
            inner.peers.with(|b| b.invalid(source));
        }
        Ok(Verdict::Counted { invalid }) => {
            if invalid {
                inner.peers.with(|b| b.invalid(source));
            }
        }
        Err(e) => tracing::warn!(peer = %source, error = %e, "could not check a DHT record"),
    }
    Vec::new()
}

async fn validate_dht_record(
    inner: &Arc<Context>,
    source: PeerId,
    record: &Record,
) -> Result<Verdict, Error> {
    let from = Some(source.to_string());
    // Held (queued for the DHT store) under the store lock, right after the commit, so that a
    // newer record committed meanwhile cannot be overwritten by this one.
    let (key, value) = (record.key.to_vec(), record.value.clone());
    let hold = move |net: &peerpack_net::NetHandle, ok: bool| {
        if ok {
            let _ = net.send_blocking(peerpack_net::Command::StoreRecord { key, value });
        }
    };
    let stored = |r: Result<Inserted, db::Error>| -> Result<Verdict, Error> {
        Ok(match r {
            Ok(Inserted::New | Inserted::Replaced | Inserted::Unchanged) => Verdict::Hold,
            Ok(Inserted::Stale) => Verdict::Skip("stale", "older than the record held".into()),
            Ok(Inserted::Disputed) => Verdict::Skip(
                "claim",
                "signed by a key that does not own the name here".into(),
            ),
            Err(db::Error::Refused(e)) if e.is_invalid_data() => Verdict::Invalid(e.to_string()),
            Err(db::Error::Refused(e)) => Verdict::Skip("conflict", e.to_string()),
            Err(e) => return Err(e.into()),
        })
    };
    match parse_key(record.key.as_ref()) {
        Some(DhtKey::Record(name, version)) => {
            let r = match PackageRecord::decode_verified(&record.value)
                .and_then(|r| r.check_key(&name, Some(&version)).map(|()| r))
            {
                Ok(r) => r,
                Err(e) => return Ok(Verdict::Invalid(e.to_string())),
            };
            let net = inner.net.clone();
            let result = inner
                .catalogue
                .with_store_batched(move |s| {
                    let mut results =
                        s.insert_records(std::slice::from_ref(&r), from.as_deref())?;
                    let result = results.pop().unwrap_or(Ok(Inserted::Unchanged));
                    hold(&net, held(&result));
                    Ok(result)
                })
                .await?;
            if matches!(result, Ok(Inserted::Disputed)) {
                inner.catalogue.refresh_names(vec![name]).await;
            }
            stored(result)
        }
        Some(DhtKey::Index(name)) => {
            let idx = match IndexRecord::decode_verified(&record.value) {
                Ok(i) if i.name == name => i,
                Ok(i) => {
                    return Ok(Verdict::Invalid(
                        RecordError::WrongName {
                            expected: name.clone(),
                            found: i.name,
                        }
                        .to_string(),
                    ));
                }
                Err(e) => return Ok(Verdict::Invalid(e.to_string())),
            };
            let net = inner.net.clone();
            let result = inner
                .catalogue
                .with_store_batched(move |s| {
                    let result = s.db.insert_index_from(&idx, from.as_deref());
                    hold(&net, held(&result));
                    Ok(result)
                })
                .await?;
            if matches!(result, Ok(Inserted::Disputed)) {
                inner.catalogue.refresh_names(vec![name]).await;
            }
            stored(result)
        }
        Some(DhtKey::Curator(curator)) => {
            match CuratorList::decode_verified(&record.value) {
                Ok(l) if l.curator == curator => {}
                Ok(_) => {
                    return Ok(Verdict::Invalid(
                        "a curator list stored under another curator's key".into(),
                    ));
                }
                Err(e) => return Ok(Verdict::Invalid(e.to_string())),
            }
            // `curator_list` counts a refusal itself, with its precise reason; the sender is
            // credited or penalised by the caller.
            let counted = Some((Via::Dht, Some(source)));
            Ok(
                match curator_list(inner, record.value.clone(), None, counted).await? {
                    // `curator_list` holds an accepted list itself.
                    CuratorOutcome::Accepted { owners_changed } => Verdict::Held(owners_changed),
                    CuratorOutcome::Ignored => Verdict::Counted { invalid: false },
                    CuratorOutcome::Invalid => Verdict::Counted { invalid: true },
                },
            )
        }
        None => Ok(Verdict::Invalid("not a peerpack DHT key".into())),
    }
}
