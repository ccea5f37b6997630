//! Reading the DHT: a name's index and versions ([`lookup`], [`fetch_version`]) and the
//! trusted curators' lists ([`fetch_curators`]). What is read is validated and stored by
//! [`crate::ingest`], exactly as if a peer had sent it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use peerpack_core::{CuratorList, IndexRecord, PackageName, PublicKey, Version};
use peerpack_net::p2p::PeerId;
use peerpack_net::protocol;
use peerpack_store::names::Seen;
use peerpack_store::{Inserted, NameState, db};

use crate::context::Context;
use crate::error::Error;
use crate::ingest;

/// How long a DHT lookup may take before the node answers with what it has.
pub const DHT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a DHT lookup of a name found.
#[derive(Debug)]
pub enum Lookup {
    /// The owner's records are now in the catalogue.
    Found,
    /// Nothing valid under the name.
    Missing,
    /// Several keys claim the name and nothing this node trusts decides between them.
    Contested(Vec<peerpack_store::Claim>),
}

/// Ask the DHT for every version of `name` and store what is valid. The owner is decided by
/// what this node trusts (see [`peerpack_store::names`]), never by the highest `seq` of
/// strangers: index records by other keys become claims, and with no owner yet, more than one
/// claimant makes the name contested.
#[tracing::instrument(skip(inner))]
pub async fn lookup(inner: &Arc<Context>, name: &PackageName) -> Result<Lookup, Error> {
    let mut by_key = read_index(inner, name).await?.claims;
    // Curators may settle what would otherwise be a contest: read their lists first.
    if by_key.len() > 1 && !inner.curators.is_empty() {
        fetch_curators(inner).await;
    }
    let claims: Vec<(PublicKey, Seen)> = by_key
        .iter()
        .map(|(key, (idx, peers))| {
            (
                *key,
                Seen {
                    seq: idx.seq,
                    versions: idx.versions.iter().map(|e| e.version.clone()).collect(),
                    peers: peers.iter().map(ToString::to_string).collect(),
                },
            )
        })
        .collect();
    let n = name.clone();
    let state = inner
        .catalogue
        .with_store(move |s| Ok(s.db.record_claims(&n, &claims)?))
        .await?;
    let index = match state {
        NameState::Contested => {
            inner.catalogue.refresh_names(vec![name.clone()]).await;
            let n = name.clone();
            let claims = inner
                .catalogue
                .with_store(move |s| Ok(s.db.claims(&n)?))
                .await?;
            return Ok(Lookup::Contested(claims));
        }
        NameState::Owned { owner, .. } => by_key.remove(&owner).map(|(i, _)| i),
        NameState::Unknown if by_key.len() == 1 => by_key.into_values().next().map(|(i, _)| i),
        NameState::Unknown => None,
    };
    inner.catalogue.refresh_names(vec![name.clone()]).await;
    let Some(index) = index else {
        return Ok(Lookup::Missing);
    };
    let (idx, net, key) = (index.clone(), inner.net.clone(), protocol::index_key(name));
    match inner
        .catalogue
        .with_store(move |s| {
            let result = s.db.insert_index(&idx);
            if matches!(result, Ok(Inserted::Replaced)) {
                // The DHT copy this node holds must be the one it now accepts.
                let _ = net.send_blocking(peerpack_net::Command::StoreRecord {
                    key,
                    value: idx.encode(),
                });
            }
            Ok(result)
        })
        .await?
    {
        Ok(Inserted::Disputed) => return Ok(Lookup::Missing),
        Ok(_) | Err(db::Error::Refused(_)) => {}
        Err(e) => return Err(e.into()),
    }
    // The newest versions only, a few DHT reads at a time: an index of 1024 versions must
    // not become 1024 queries at once. Older versions are read one by one when asked for
    // (`fetch_version`).
    use futures::StreamExt;
    let fetches = index
        .versions
        .iter()
        .rev()
        .take(MAX_LOOKUP_VERSIONS)
        .map(|entry| {
            let (inner, name, entry) = (inner.clone(), name.clone(), entry.clone());
            async move { read_version(&inner, &name, &entry).await }
        })
        .collect::<Vec<_>>();
    let found: Vec<Vec<u8>> = futures::stream::iter(fetches)
        .buffer_unordered(LOOKUP_CONCURRENCY)
        .filter_map(|v| async move { v })
        .collect()
        .await;
    let batch = ingest::records(inner, found, None, ingest::Via::Lookup).await?;
    tracing::info!(%name, versions = index.versions.len(), stored = batch.changed + batch.known, "DHT lookup");
    Ok(if batch.changed + batch.known > 0 {
        Lookup::Found
    } else {
        Lookup::Missing
    })
}

/// The newest index record of each key, with every peer that served one of that key's.
type Claims = BTreeMap<PublicKey, (IndexRecord, BTreeSet<PeerId>)>;

/// What a read of a name's index records found.
struct IndexRead {
    claims: Claims,
    /// Values that were not a valid index record of the name.
    invalid_values: usize,
}

/// Read `name`'s index records from the DHT (a whole query) and sort them by key. Each peer
/// that served a value that is not a valid index record of `name` is scored down, once per
/// such value.
async fn read_index(inner: &Context, name: &PackageName) -> Result<IndexRead, Error> {
    let found = inner
        .net
        .get_record_from(protocol::index_key(name), DHT_TIMEOUT)
        .await?;
    let mut by_key = Claims::new();
    let mut invalid_values = 0;
    for f in found {
        match IndexRecord::decode_verified(&f.value) {
            Ok(idx) if &idx.name == name => {
                let entry = by_key
                    .entry(idx.publisher)
                    .or_insert_with(|| (idx.clone(), BTreeSet::new()));
                if idx.seq > entry.0.seq {
                    entry.0 = idx;
                }
                entry.1.extend(f.peers);
            }
            _ => {
                invalid_values += 1;
                for peer in f.peers {
                    inner.peers.with(|b| b.invalid(peer));
                }
            }
        }
    }
    Ok(IndexRead {
        claims: by_key,
        invalid_values,
    })
}

/// What the DHT holds for `name` now, read afresh and stored nowhere (`peerpack dht name`).
/// Peers that serve invalid values are held to account as in [`lookup`].
pub async fn dht_name(inner: &Context, name: &PackageName) -> Result<peerpack_api::DhtName, Error> {
    let started = std::time::Instant::now();
    let read = read_index(inner, name).await?;
    let took_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut claims: Vec<peerpack_api::DhtClaim> = read
        .claims
        .into_iter()
        .map(|(key, (idx, peers))| peerpack_api::DhtClaim {
            publisher: key.to_string(),
            seq: idx.seq,
            versions: idx
                .versions
                .iter()
                .rev()
                .map(|e| e.version.to_string())
                .collect(),
            peers: peers.iter().map(ToString::to_string).collect(),
        })
        .collect();
    claims.sort_by(|a, b| b.seq.cmp(&a.seq).then(a.publisher.cmp(&b.publisher)));
    Ok(peerpack_api::DhtName {
        name: name.to_string(),
        claims,
        invalid: read.invalid_values,
        took_ms,
    })
}

/// Who the DHT says provides `id` now (`peerpack dht providers`): the whole query, or up to
/// the first provider found.
pub async fn dht_providers(
    inner: &Context,
    id: &peerpack_core::ContentId,
    first: bool,
) -> Result<peerpack_api::DhtProviders, Error> {
    let started = std::time::Instant::now();
    let key = protocol::provider_key(id);
    // 0: the whole query.
    let enough = usize::from(first);
    let providers = inner
        .net
        .get_providers_until(key, DHT_TIMEOUT, enough)
        .await?;
    Ok(peerpack_api::DhtProviders {
        content_id: id.to_string(),
        providers: providers.iter().map(ToString::to_string).collect(),
        first,
        took_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}

/// Versions a lookup reads from the DHT, newest first.
pub const MAX_LOOKUP_VERSIONS: usize = 64;
/// DHT reads one lookup has under way at once.
pub const LOOKUP_CONCURRENCY: usize = 8;

/// Read the record of one index entry from the DHT: the value whose hash the index names.
async fn read_version(
    inner: &Arc<Context>,
    name: &PackageName,
    entry: &peerpack_core::record::IndexEntry,
) -> Option<Vec<u8>> {
    // The index names the record by its hash: the first value that matches it ends the query.
    inner
        .net
        .get_record_hashed(
            protocol::record_key(name, &entry.version),
            entry.record_hash.0,
            DHT_TIMEOUT,
        )
        .await
        .ok()
        .flatten()
}

/// Read one version of `name` from the DHT, as the owner's index record names it (for a
/// version older than a lookup reads). Returns whether it is now in the catalogue.
pub async fn fetch_version(
    inner: &Arc<Context>,
    name: &PackageName,
    version: &Version,
) -> Result<bool, Error> {
    let n = name.clone();
    let Some(index) = inner
        .catalogue
        .with_store(move |s| Ok(s.db.index_record(&n)?))
        .await?
    else {
        return Ok(false);
    };
    let Some(entry) = index.entry(version) else {
        return Ok(false);
    };
    let Some(bytes) = read_version(inner, name, entry).await else {
        return Ok(false);
    };
    let batch = ingest::records(inner, vec![bytes], None, ingest::Via::Lookup).await?;
    Ok(batch.changed + batch.known > 0)
}

/// Whether the catalogue already has `name`.
pub async fn known(inner: &Arc<Context>, name: &PackageName) -> Result<bool, Error> {
    let n = name.clone();
    inner
        .catalogue
        .with_store(move |s| Ok(s.db.latest(&n)?.is_some()))
        .await
}

/// After a curator changed the owner of `names`, fetch the new owners' records (a few names
/// at a time, in the background).
pub fn look_up_new_owners(inner: &Arc<Context>, names: Vec<PackageName>) {
    const MOST: usize = 32;
    if names.is_empty() {
        return;
    }
    let inner2 = inner.clone();
    inner.supervisor.spawn(async move {
        for name in names.into_iter().take(MOST) {
            if let Err(e) = lookup(&inner2, &name).await {
                tracing::info!(%name, error = %e, "could not look up a curated owner's records");
            }
        }
    });
}

/// Read every trusted curator's list from the DHT and store the newest valid one.
pub async fn fetch_curators(inner: &Arc<Context>) {
    for curator in &inner.curators {
        let found = match inner
            .net
            .get_record_from(protocol::curator_key(curator), DHT_TIMEOUT)
            .await
        {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(%curator, error = %e, "could not read a curator list");
                continue;
            }
        };
        // Oldest first, so each newer one replaces the last.
        let mut lists: Vec<(u64, Vec<u8>, Vec<peerpack_net::p2p::PeerId>)> = found
            .into_iter()
            .map(|f| {
                let seq = CuratorList::decode(&f.value).map_or(0, |l| l.seq);
                (seq, f.value, f.peers)
            })
            .collect();
        lists.sort_by_key(|(seq, _, _)| *seq);
        for (_, bytes, peers) in lists {
            let outcome = ingest::curator_list(
                inner,
                bytes,
                peers.first().copied(),
                Some((ingest::Via::Lookup, peers.first().copied())),
            )
            .await;
            if let Ok(ingest::CuratorOutcome::Accepted { owners_changed }) = &outcome {
                look_up_new_owners(inner, owners_changed.clone());
            }
            if let Err(e) = outcome {
                tracing::warn!(%curator, error = %e, "could not store a curator list");
            }
        }
    }
}
