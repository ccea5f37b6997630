//! Where a download's pieces come from: finding the providers, dialling them, asking them for
//! the outline, and applying the reputation penalty for what they do wrong.

use std::collections::HashSet;
use std::sync::Arc;

use peerpack_core::ContentId;
use peerpack_core::outline::Outline;
use peerpack_net::blob::{BlobRequest, BlobResponse};
use peerpack_net::p2p::PeerId;
use peerpack_net::protocol::provider_key;
use serde_bytes::ByteBuf;

use super::schedule::{Fault, STALL, Scheduler, Strike, no_answer};
use super::{Context, Error, PROVIDER_LOOKUP};

/// A provider of the archive, as the download loop sees it; the scheduler knows it by its
/// index among them.
pub(super) struct Source {
    pub(super) peer: PeerId,
    /// Bytes of verified pieces it delivered in this download.
    pub(super) bytes: u64,
}

/// Apply the reputation penalty for `fault` by `peer`, unless the scheduler did not count it
/// (the provider was dropped already, or the request had stalled already).
pub(super) fn penalise(inner: &Context, peer: PeerId, fault: &Fault, strike: &Strike) {
    if *strike == Strike::Ignored {
        return;
    }
    match fault {
        Fault::Bad(_) => inner.peers.with(|b| b.bad_data(peer)),
        Fault::Gone => inner.peers.with(|b| b.request_failed(peer)),
        Fault::Failed(reason) => {
            inner.peers.with(|b| b.request_failed(peer));
            tracing::debug!(%peer, %reason, "piece request failed");
        }
    }
}

/// A record younger than this may still lack its provider record.
const FRESH: u64 = 60;
/// How many more provider lookups a fresh record gets when the first finds none.
const FRESH_RETRIES: usize = 3;
/// The wait before each.
const FRESH_RETRY_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// Providers a download of `size` bytes wants before it starts: one per piece, at most 4
/// (more would not be asked at once).
fn wanted(size: u64) -> usize {
    usize::try_from(peerpack_core::outline::piece_count(size).min(4)).unwrap_or(4)
}

/// How [`providers`] asks the DHT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lookup {
    /// Not at all when the peers known to provide the archive, and that delivered archives
    /// to this node before, are enough; else until enough are found.
    Early,
    /// Until the query ends: every provider the closest peers know.
    Full,
}

async fn lookup_providers(inner: &Arc<Context>, id: ContentId, enough: usize) -> Vec<PeerId> {
    inner
        .net
        .get_providers_until(provider_key(&id), PROVIDER_LOOKUP, enough)
        .await
        .unwrap_or_else(|e| {
            tracing::debug!(error = %e, "provider lookup failed");
            Vec::new()
        })
}

/// Whether a record of the catalogue with this archive was published within [`FRESH`]
/// seconds of now (by its signed publication time, either side: a publisher that dates its record in the
/// future cannot make every install of it wait).
async fn fresh(inner: &Arc<Context>, id: ContentId) -> bool {
    let now = peerpack_store::db::now().max(0) as u64;
    inner
        .catalogue
        .with_store(move |s| Ok(s.db.records_with_content(&id)?))
        .await
        .is_ok_and(|records| {
            records
                .iter()
                .any(|r| r.published_at.abs_diff(now) <= FRESH)
        })
}

/// Candidate providers of the archive `id` of `size` bytes, best first, how many were skipped
/// for a low score, and whether the DHT was asked to its end (`false`: the peers known, or the
/// first the lookup found, were enough to start; when they all fail, ask again with
/// [`Lookup::Full`]).
pub(super) async fn providers(
    inner: &Arc<Context>,
    id: ContentId,
    size: u64,
    lookup: Lookup,
) -> Result<(Vec<Source>, usize, bool), Error> {
    let known = inner
        .catalogue
        .with_store(move |s| Ok(s.db.providers(&id)?))
        .await?;
    let min = inner.transfers.min_provider_score;
    let me = inner.peer_id.to_string();
    // Only peers that delivered archives before count: anyone can claim to provide
    // anything, and a claim alone must not spare the DHT lookup.
    let known_good = inner.peers.with(|b| {
        known
            .iter()
            .filter(|p| **p != me)
            .filter_map(|p| p.parse::<PeerId>().ok())
            .filter(|p| {
                b.get(p).is_some_and(|peer| peer.row.downloads_ok > 0) && b.score_of_peer(p) >= min
            })
            .count()
    });
    let want = wanted(size);
    let enough = match lookup {
        Lookup::Full => 0,
        Lookup::Early => want.saturating_sub(known_good),
    };
    let (mut found, mut complete) = if lookup == Lookup::Early && enough == 0 {
        // The peers known to provide it (they announced it to this node, or delivered it
        // before) are enough to start: no DHT query.
        (Vec::new(), false)
    } else {
        let found = lookup_providers(inner, id, enough).await;
        let complete = enough == 0 || found.len() < enough;
        (found, complete)
    };
    // A publisher announces first and provides in the background: for a package published
    // moments ago, the provider record may still be on its way. Ask again a few times.
    let mut retries = 0;
    while found.is_empty() && known.is_empty() && retries < FRESH_RETRIES && fresh(inner, id).await
    {
        tokio::time::sleep(FRESH_RETRY_WAIT).await;
        found = lookup_providers(inner, id, enough).await;
        complete = enough == 0 || found.len() < enough;
        retries += 1;
    }
    let mut peers: Vec<PeerId> = known
        .iter()
        .filter_map(|p| p.parse().ok())
        .chain(found)
        .filter(|p| *p != inner.peer_id)
        .collect();
    peers.sort();
    peers.dedup();
    let mut scored: Vec<(f64, PeerId)> = inner.peers.with(|b| {
        peers
            .into_iter()
            .map(|p| (b.score_of_peer(&p), p))
            .collect()
    });
    let before = scored.len();
    scored.retain(|(s, _)| *s >= inner.transfers.min_provider_score);
    let skipped = before - scored.len();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    Ok((
        scored
            .into_iter()
            .map(|(_, peer)| Source { peer, bytes: 0 })
            .collect(),
        skipped,
        complete,
    ))
}

/// How long connecting to one provider may take before it is asked anyway.
const CONNECT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Connect to the providers that are not connected, at the addresses the peer book has for
/// them, all at once, and wait (at most [`CONNECT_WAIT`] per address) until each is connected
/// or none of its addresses answers. A request sent while a dial is still under way (right
/// after a start, when the bootstrap dial has not finished) could otherwise fail at once.
pub(super) async fn connect(inner: &Arc<Context>, sources: &[Source]) {
    let connected: HashSet<PeerId> = inner
        .net
        .peers()
        .await
        .map(|v| v.into_iter().map(|p| p.peer_id).collect())
        .unwrap_or_default();
    let dials = sources
        .iter()
        .filter(|s| !connected.contains(&s.peer))
        .map(|s| {
            let addrs: Vec<peerpack_net::p2p::Multiaddr> = inner
                .peers
                .with(|b| {
                    b.get(&s.peer)
                        .map(|p| p.row.addresses.clone())
                        .unwrap_or_default()
                })
                .iter()
                .filter_map(|a| a.parse::<peerpack_net::p2p::Multiaddr>().ok())
                .map(|mut addr| {
                    if peerpack_net::peer_id_of(&addr).is_none() {
                        addr.push(peerpack_net::p2p::multiaddr::Protocol::P2p(s.peer));
                    }
                    addr
                })
                .collect();
            let net = inner.net.clone();
            async move {
                for addr in addrs {
                    if net.reconnect(addr, CONNECT_WAIT).await.is_ok() {
                        break;
                    }
                }
            }
        });
    futures::future::join_all(dials).await;
}

/// How long a provider found without asking the DHT to its end (known, or among the first
/// found) may take to answer the outline request before the next is asked. Such providers
/// may be mere claims; when they all fail, the download looks up every provider, which are
/// then given the full [`STALL`].
pub(super) const EARLY_OUTLINE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Ask the providers for the archive's outline, best first, until one serves an outline that
/// merges to `id` and matches `size`, giving each `wait` to answer. Every provider that fails
/// is charged with the fault in `schedule` (and penalised): one that served a wrong outline
/// or does not hold the archive is dropped; one that failed otherwise stays, with the failure
/// counted.
pub(super) async fn get_outline(
    inner: &Arc<Context>,
    id: ContentId,
    size: u64,
    sources: &[Source],
    schedule: &mut Scheduler,
    wait: std::time::Duration,
) -> Result<Outline, Error> {
    let mut reasons = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        let request = BlobRequest::Outline {
            content_id: ByteBuf::from(id.as_bytes().to_vec()),
        };
        let peer = s.peer;
        let result = tokio::time::timeout(wait, inner.net.fetch_chunk(peer, request)).await;
        let fault = match result {
            Ok(Ok(BlobResponse::Outline { total_size, values })) if total_size == size => {
                match Outline::new(&id, total_size, &values) {
                    Ok(o) => return Ok(o),
                    Err(_) => Fault::Bad("served an outline that does not match the content id"),
                }
            }
            Ok(Ok(BlobResponse::Outline { .. })) => {
                Fault::Bad("reported a size other than the signed record's")
            }
            Ok(Ok(BlobResponse::NotFound)) => Fault::Gone,
            Ok(Ok(BlobResponse::Refused(r))) => Fault::Failed(r),
            Ok(Ok(BlobResponse::Chunk { .. })) => {
                Fault::Bad("answered an outline request with data")
            }
            Ok(Err(e)) => Fault::Failed(e.to_string()),
            Err(_) if wait < STALL => {
                Fault::Failed(format!("no outline within {} s", wait.as_secs()))
            }
            Err(_) => Fault::Failed(no_answer()),
        };
        let reason = match &fault {
            Fault::Bad(w) => (*w).to_string(),
            Fault::Gone => super::schedule::GONE.into(),
            Fault::Failed(r) => r.clone(),
        };
        reasons.push(format!("{peer}: {reason}"));
        let strike = schedule.fault(i, fault.clone());
        penalise(inner, peer, &fault, &strike);
    }
    Err(Error::Unavailable(format!(
        "{id}: no provider served its outline ({})",
        reasons.join("; ")
    )))
}
