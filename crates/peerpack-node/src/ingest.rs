//! Everything that arrives from other peers goes through here: gossip announcements, DHT
//! writes, sync pages and DHT reads. Each record is decoded, its signature verified and its
//! name ownership checked before it is stored; the peer that sent an invalid one loses
//! reputation.

use std::sync::Arc;
use std::time::Duration;

use peerpack_core::record::RecordError;
use peerpack_core::{IndexRecord, PackageName, PackageRecord, Version};
use peerpack_net::p2p::PeerId;
use peerpack_net::p2p::kad::Record;
use peerpack_net::{MessageAcceptance, protocol};
use peerpack_store::db;

use crate::error::Error;
use crate::node::Inner;

/// How long a DHT lookup may take before the node answers with what it has.
pub const DHT_TIMEOUT: Duration = Duration::from_secs(10);

/// Outcome of storing a batch of records from one peer.
#[derive(Debug, Default, Clone, Copy)]
pub struct Batch {
    /// Records that changed the catalogue.
    pub changed: usize,
    /// Valid records already known (or stale).
    pub known: usize,
    /// Refused records.
    pub invalid: usize,
}

/// Decode, verify and store encoded package records sent by `from`, crediting or penalising it.
pub async fn records(
    inner: &Arc<Inner>,
    encoded: Vec<Vec<u8>>,
    from: Option<PeerId>,
) -> Result<Batch, Error> {
    let mut batch = Batch::default();
    let mut valid = Vec::with_capacity(encoded.len());
    for bytes in &encoded {
        match PackageRecord::decode_verified(bytes) {
            Ok(r) => valid.push(r),
            Err(e) => {
                tracing::info!(peer = ?from, error = %e, "refused a record");
                batch.invalid += 1;
            }
        }
    }
    if !valid.is_empty() {
        let results = inner
            .with_store(move |s| Ok(s.insert_records(&valid)?))
            .await?;
        for r in results {
            match r {
                Ok(i) if i.changed() => batch.changed += 1,
                Ok(_) => batch.known += 1,
                Err(db::Error::Refused(e)) => {
                    tracing::info!(peer = ?from, error = %e, "refused a record");
                    batch.invalid += 1;
                }
                Err(e) => return Err(Error::Internal(e.to_string())),
            }
        }
    }
    if let Some(peer) = from {
        inner.with_peers(|b| {
            b.valid(peer, (batch.changed + batch.known) as i64);
            for _ in 0..batch.invalid {
                b.invalid(peer);
            }
        });
    }
    Ok(batch)
}

/// Validate a gossip announcement and decide whether gossipsub forwards it.
pub async fn announcement(
    inner: &Arc<Inner>,
    data: Vec<u8>,
    source: PeerId,
    origin: Option<PeerId>,
) -> MessageAcceptance {
    let content_id = PackageRecord::decode(&data).ok().map(|r| r.content_id);
    match records(inner, vec![data], Some(source)).await {
        Ok(b) if b.invalid > 0 => MessageAcceptance::Reject,
        Ok(_) => {
            if let (Some(origin), Some(id)) = (origin, content_id) {
                let origin = origin.to_string();
                let _ = inner
                    .with_store(move |s| Ok(s.db.add_provider(&id, &origin)?))
                    .await;
            }
            // Valid, whether or not this node already had it (a DHT put often arrives first):
            // forward it. Gossipsub's duplicate cache keeps it from looping.
            MessageAcceptance::Accept
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not process an announcement");
            MessageAcceptance::Ignore
        }
    }
}

/// What a DHT key names.
enum DhtKey {
    Index(PackageName),
    Record(PackageName, Version),
}

fn parse_key(key: &[u8]) -> Option<DhtKey> {
    let text = std::str::from_utf8(key).ok()?;
    let rest = text.strip_prefix("/peerpack/pkg/")?;
    match rest.split_once('/') {
        None => PackageName::new(rest).ok().map(DhtKey::Index),
        Some((name, version)) => Some(DhtKey::Record(
            PackageName::new(name).ok()?,
            Version::parse(version).ok()?,
        )),
    }
}

/// Validate a record a peer asked us to hold in the DHT; store it (in the DHT store and the
/// catalogue) only if valid.
pub async fn inbound_dht_record(inner: &Arc<Inner>, source: PeerId, record: Record) {
    let verdict = validate_dht_record(inner, &record).await;
    match verdict {
        Ok(()) => {
            inner.with_peers(|b| b.valid(source, 1));
            let _ = inner
                .net
                .store_record(record.key.to_vec(), record.value)
                .await;
        }
        Err(e) => {
            tracing::info!(peer = %source, error = %e, "refused a DHT record");
            inner.with_peers(|b| b.invalid(source));
        }
    }
}

async fn validate_dht_record(inner: &Arc<Inner>, record: &Record) -> Result<(), Error> {
    match parse_key(record.key.as_ref()) {
        Some(DhtKey::Record(name, version)) => {
            let r = PackageRecord::decode_verified(&record.value).map_err(bad)?;
            r.check_key(&name, Some(&version)).map_err(bad)?;
            inner.with_store(move |s| Ok(s.insert_record(&r)?)).await?;
            Ok(())
        }
        Some(DhtKey::Index(name)) => {
            let idx = IndexRecord::decode_verified(&record.value).map_err(bad)?;
            if idx.name != name {
                return Err(bad(RecordError::WrongName {
                    expected: name,
                    found: idx.name,
                }));
            }
            inner
                .with_store(move |s| Ok(s.db.insert_index(&idx)?))
                .await?;
            Ok(())
        }
        None => Err(Error::BadRequest("not a peerpack DHT key".into())),
    }
}

fn bad(e: impl std::fmt::Display) -> Error {
    Error::BadRequest(e.to_string())
}

/// Ask the DHT for every version of `name`; store what is valid. Returns whether anything
/// was found.
#[tracing::instrument(skip(inner))]
pub async fn lookup(inner: &Arc<Inner>, name: &PackageName) -> Result<bool, Error> {
    let values = inner
        .net
        .get_record(protocol::index_key(name), DHT_TIMEOUT)
        .await?;
    let owner = {
        let n = name.clone();
        inner.with_store(move |s| Ok(s.db.owner(&n)?)).await?
    };
    let best = values
        .iter()
        .filter_map(|v| IndexRecord::decode_verified(v).ok())
        .filter(|i| &i.name == name && owner.is_none_or(|o| o == i.publisher))
        .max_by_key(|i| i.seq);
    let Some(index) = best else {
        return Ok(false);
    };
    let idx = index.clone();
    match inner
        .with_store(move |s| Ok(s.db.insert_index(&idx)?))
        .await
    {
        Ok(_) | Err(Error::Conflict(_)) => {}
        Err(e) => return Err(e),
    }
    let fetches = index.versions.iter().map(|entry| {
        let key = protocol::record_key(name, &entry.version);
        let inner = inner.clone();
        let expected = entry.record_hash;
        async move {
            let values = inner
                .net
                .get_record(key, DHT_TIMEOUT)
                .await
                .unwrap_or_default();
            values
                .into_iter()
                .find(|v| peerpack_core::RecordHash::of(v) == expected)
        }
    });
    let found: Vec<Vec<u8>> = futures::future::join_all(fetches)
        .await
        .into_iter()
        .flatten()
        .collect();
    let batch = records(inner, found, None).await?;
    tracing::info!(%name, versions = index.versions.len(), stored = batch.changed + batch.known, "DHT lookup");
    Ok(batch.changed + batch.known > 0)
}

/// Whether the catalogue already has `name`.
pub async fn known(inner: &Arc<Inner>, name: &PackageName) -> Result<bool, Error> {
    let n = name.clone();
    inner
        .with_store(move |s| Ok(s.db.latest(&n)?.is_some()))
        .await
}
