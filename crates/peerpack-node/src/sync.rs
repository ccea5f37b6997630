//! Catalogue sync: answering peers' requests and pulling a peer's catalogue.
//!
//! When a node pulls: on meeting a peerpack peer (its first Identify), unless it synced with
//! that peer in the last [`SYNC_AGAIN`]; and every minute, with the one connected peer it
//! synced with longest ago ([`anti_entropy`]). Syncing with every peer at every Identify and
//! every minute (what the node did before) cost a summary exchange per connected peer per
//! minute, and a full pull from each whose catalogue differed for a moment; in a network of a
//! hundred nodes those pulls, with the connections Kademlia opens and closes, kept two cores
//! busy.

use std::sync::Arc;

use peerpack_net::p2p::PeerId;
use peerpack_net::sync::{self, MAX_PAGE, SyncRequest, SyncResponse};
use peerpack_net::{NetHandle, ResponseChannel};
use serde_bytes::ByteBuf;

use crate::catalogue::Catalogue;
use crate::context::Context;
use crate::error::Error;
use crate::transfer::Transfers;

/// Sync requests answered at once, over all peers.
pub const MAX_SYNC_SERVING: usize = 16;
/// Sync requests answered at once for one peer.
pub const MAX_SYNC_SERVING_PER_PEER: usize = 2;
/// Sync requests one peer may make in a burst, and per second after it.
pub const SYNC_BURST: u32 = 64;
/// See [`SYNC_BURST`].
pub const SYNC_PER_SECOND: u32 = 32;
/// Most pages one pull asks a peer for (a million records at 256 a page).
pub const MAX_PULL_PAGES: u64 = 4096;
/// Meeting a peer again this soon after a sync with it brings no new sync.
pub const SYNC_AGAIN: std::time::Duration = std::time::Duration::from_secs(600);
/// Peers remembered as synced, at most (older entries are forgotten first).
const SYNCED_MAX: usize = 4096;

/// A peerpack peer was identified: sync with it unless that was done in the last
/// [`SYNC_AGAIN`].
pub async fn on_identified(inner: &Arc<Context>, peer: PeerId) {
    let due = note_sync(
        &mut peerpack_core::sync::lock(&inner.transfers.synced),
        peer,
        std::time::Instant::now(),
    );
    if due {
        with_peer(inner, peer).await;
    }
}

/// Whether a sync with `peer` is due now (none in the last [`SYNC_AGAIN`]); if so, note it in
/// `synced`, which holds at most [`SYNCED_MAX`] peers: past it, those synced longer ago than
/// [`SYNC_AGAIN`] are forgotten, and if that is not enough (a crowd of identities met within
/// minutes), the one synced longest ago.
fn note_sync(
    synced: &mut std::collections::HashMap<PeerId, std::time::Instant>,
    peer: PeerId,
    now: std::time::Instant,
) -> bool {
    if synced
        .get(&peer)
        .is_some_and(|t| now.duration_since(*t) < SYNC_AGAIN)
    {
        return false;
    }
    if synced.len() >= SYNCED_MAX && !synced.contains_key(&peer) {
        synced.retain(|_, t| now.duration_since(*t) < SYNC_AGAIN);
        if synced.len() >= SYNCED_MAX
            && let Some(oldest) = synced.iter().min_by_key(|(_, t)| **t).map(|(p, _)| *p)
        {
            synced.remove(&oldest);
        }
    }
    synced.insert(peer, now);
    true
}

/// Sync with the connected peerpack peer synced with longest ago; the periodic task calls it
/// every minute. A record that missed this node (an announcement lost while a connection was
/// down) arrives within minutes, at one summary exchange a minute whatever the number of
/// peers.
pub async fn anti_entropy(inner: &Arc<Context>) {
    let connected: std::collections::HashSet<PeerId> = inner.peers.with(|b| {
        b.all()
            .filter(|(_, p)| p.connected)
            .map(|(id, _)| *id)
            .collect()
    });
    let peer = {
        let mut synced = peerpack_core::sync::lock(&inner.transfers.synced);
        let oldest = synced
            .iter()
            .filter(|(p, _)| connected.contains(p))
            .min_by_key(|(_, t)| **t)
            .map(|(p, _)| *p);
        if let Some(p) = oldest {
            synced.insert(p, std::time::Instant::now());
        }
        oldest
    };
    if let Some(peer) = peer {
        with_peer(inner, peer).await;
    }
}

/// Answer a sync request from `peer`. Each request takes a slot (bounded overall and per peer)
/// and a token of the peer's request rate; past either, the answer is `Error("busy: …")`.
#[tracing::instrument(name = "sync.serve", skip_all, fields(%peer, request = request.kind()))]
pub async fn answer(
    catalogue: &Catalogue,
    transfers: &Transfers,
    net: &NetHandle,
    peer: PeerId,
    request: SyncRequest,
    channel: ResponseChannel<SyncResponse>,
) {
    let busy = |why: &str| SyncResponse::Error(format!("busy: {why}; try again later"));
    let refuse = |reason, detail: &str| {
        if let Some(m) = catalogue.metrics() {
            m.request_refused("sync", reason, peer, &detail);
        }
    };
    if !transfers.sync_rate.allow(peer) {
        let why = "too many sync requests from this peer";
        refuse("rate", why);
        let _ = net.sync_respond(channel, busy(why)).await;
        return;
    }
    let Some(_slot) = transfers.sync_slots.try_take(peer) else {
        let why = "too many sync requests at once";
        refuse("busy", why);
        let _ = net.sync_respond(channel, busy(why)).await;
        return;
    };
    let response = match request {
        SyncRequest::Summary => {
            catalogue
                .with_store(|s| Ok(s.db.summary()?))
                .await
                .map(|(count, digest)| SyncResponse::Summary {
                    count,
                    digest: ByteBuf::from(digest.to_vec()),
                })
        }
        SyncRequest::Page { after, .. }
            if after
                .as_deref()
                .is_some_and(|c| sync::parse_cursor(c).is_none()) =>
        {
            let why = "the cursor is not <name>/<version>";
            refuse("malformed", why);
            Ok(SyncResponse::Error(why.into()))
        }
        SyncRequest::Page { after, limit } => {
            // One record more than the page may hold tells whether another page follows.
            let fetch = limit.clamp(1, MAX_PAGE) as usize + 1;
            catalogue
                .with_store(move |s| {
                    let cursor = after.as_deref().and_then(sync::parse_cursor);
                    Ok(s.db.records_after(cursor, fetch)?)
                })
                .await
                .map(|records| sync::page(&records, limit))
        }
    };
    let response = response.unwrap_or_else(|e| {
        tracing::warn!(%peer, error = %e, "could not answer a sync request");
        SyncResponse::Error("the node could not read its catalogue".into())
    });
    let _ = net.sync_respond(channel, response).await;
}

/// Pull `peer`'s catalogue if it differs from ours. One sync per peer at a time.
pub async fn with_peer(inner: &Arc<Context>, peer: PeerId) {
    let Some(_syncing) = Syncing::start(&inner.transfers.syncing, peer) else {
        return;
    };
    if let Err(e) = pull(inner, peer).await {
        tracing::debug!(%peer, error = %e, "catalogue sync failed");
    }
}

/// A sync with one peer under way. Dropping it, however the sync ends (an error, a panic, a
/// cancelled task), lets the next sync with that peer start.
struct Syncing<'a> {
    syncing: &'a std::sync::Mutex<std::collections::HashSet<PeerId>>,
    peer: PeerId,
}

impl<'a> Syncing<'a> {
    /// `None` when a sync with `peer` is already under way.
    fn start(
        syncing: &'a std::sync::Mutex<std::collections::HashSet<PeerId>>,
        peer: PeerId,
    ) -> Option<Self> {
        // The lock is released before a guard exists: a guard dropped while the set is
        // locked (as `then_some` would drop one it built for nothing) would lock it again on
        // the same thread and hang the runtime's worker.
        let fresh = peerpack_core::sync::lock(syncing).insert(peer);
        fresh.then(|| Self { syncing, peer })
    }
}

impl Drop for Syncing<'_> {
    fn drop(&mut self) {
        peerpack_core::sync::lock(self.syncing).remove(&self.peer);
    }
}

#[tracing::instrument(
    name = "sync.pull",
    skip(inner),
    fields(%peer, pages, learned, refused),
    err(level = tracing::Level::DEBUG)
)]
async fn pull(inner: &Arc<Context>, peer: PeerId) -> Result<(), Error> {
    let theirs = inner.net.sync(peer, SyncRequest::Summary).await?;
    let ours = inner.catalogue.with_store(|s| Ok(s.db.summary()?)).await?;
    let their_count = match theirs {
        SyncResponse::Summary { count, digest }
            if count == ours.0 && digest.as_slice() == ours.1 =>
        {
            return Ok(());
        }
        SyncResponse::Summary { count, .. } => count,
        // Busy, or cannot read its catalogue now: not the peer's fault.
        SyncResponse::Error(why) => {
            return Err(Error::Unavailable(format!("the peer did not sync: {why}")));
        }
        other => {
            inner.peers.with(|b| b.invalid(peer));
            return Err(Error::BadRequest(format!(
                "unexpected sync answer {other:?}"
            )));
        }
    };
    // A page holds at least one record, so an honest peer needs at most count + 1 pages.
    let budget = their_count.saturating_add(1).min(MAX_PULL_PAGES);
    let mut pages = 0u64;
    let mut after: Option<String> = None;
    let mut total = crate::ingest::Batch::default();
    loop {
        pages += 1;
        if pages > budget {
            inner.peers.with(|b| b.invalid(peer));
            return Err(Error::BadRequest(format!(
                "the peer's catalogue did not end within {budget} pages"
            )));
        }
        let page = inner
            .net
            .sync(
                peer,
                SyncRequest::Page {
                    after: after.clone(),
                    limit: MAX_PAGE,
                },
            )
            .await?;
        let (records, next) = match page {
            SyncResponse::Page { records, next } => (records, next),
            SyncResponse::Error(why) => {
                return Err(Error::Unavailable(format!(
                    "the peer stopped the sync: {why}"
                )));
            }
            SyncResponse::Summary { .. } => {
                inner.peers.with(|b| b.invalid(peer));
                return Err(Error::BadRequest(
                    "unexpected sync answer to a page request".into(),
                ));
            }
        };
        // A page holds 1 to MAX_PAGE records, or none when it is the last; its `next` moves
        // strictly forward. Anything else would let a peer keep us paging forever.
        let next_valid = match next.as_deref() {
            None => true,
            Some(n) => {
                !records.is_empty()
                    && sync::parse_cursor(n).is_some_and(|n| {
                        after
                            .as_deref()
                            .and_then(sync::parse_cursor)
                            .is_none_or(|a| n > a)
                    })
            }
        };
        if records.len() > MAX_PAGE as usize || !next_valid {
            inner.peers.with(|b| b.invalid(peer));
            return Err(Error::BadRequest(format!(
                "a sync page of {} records with the cursor {next:?} after {after:?}",
                records.len()
            )));
        }
        let batch = crate::ingest::records(
            inner,
            records.into_iter().map(ByteBuf::into_vec).collect(),
            Some(peer),
            crate::ingest::Via::Sync,
        )
        .await?;
        total.changed += batch.changed;
        total.invalid += batch.invalid;
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    tracing::Span::current()
        .record("pages", pages)
        .record("learned", total.changed)
        .record("refused", total.invalid);
    tracing::info!(%peer, learned = total.changed, refused = total.invalid, "catalogue sync done");
    Ok(())
}

#[cfg(test)]
mod syncing_tests {
    use super::*;

    // A second sync with a peer already syncing is refused, without touching the first (and
    // without locking the set twice on one thread, which hung nodes whose peer reconnected
    // while a sync with it was under way); once the first ends, the next may start.
    #[test]
    fn one_sync_per_peer_and_a_refused_one_neither_hangs_nor_frees_the_first() {
        // Leaked: a hung second start must not keep the test from failing.
        let set: &'static std::sync::Mutex<std::collections::HashSet<PeerId>> =
            Box::leak(Box::default());
        let peer = PeerId::random();
        let first = Syncing::start(set, peer).expect("the first sync starts");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let second = Syncing::start(set, peer);
            let _ = tx.send(second.is_none());
        });
        let answer = rx.recv_timeout(std::time::Duration::from_secs(10));
        if answer != Ok(true) {
            // The set may be locked for good: dropping `first` would hang this thread too.
            std::mem::forget(first);
            panic!("a second start must answer None at once, got {answer:?}");
        }
        assert!(
            set.lock().unwrap().contains(&peer),
            "the first still holds its place"
        );
        drop(first);
        assert!(Syncing::start(set, peer).is_some());
    }

    // A peer met again soon brings no second sync; a crowd of fresh identities, all met
    // within minutes, cannot grow the memory of syncs past its bound, and the newest is kept.
    #[test]
    fn syncs_are_remembered_within_a_bound_whatever_the_crowd() {
        let mut synced = std::collections::HashMap::new();
        let start = std::time::Instant::now();
        let peer = PeerId::random();
        assert!(note_sync(&mut synced, peer, start));
        assert!(!note_sync(&mut synced, peer, start + SYNC_AGAIN / 2));
        assert!(note_sync(&mut synced, peer, start + SYNC_AGAIN));
        let mut last = peer;
        for i in 0..SYNCED_MAX as u64 + 100 {
            last = PeerId::random();
            let at = start + SYNC_AGAIN + std::time::Duration::from_millis(i + 1);
            assert!(note_sync(&mut synced, last, at));
        }
        assert_eq!(synced.len(), SYNCED_MAX);
        assert!(synced.contains_key(&last));
        assert!(!synced.contains_key(&peer), "the oldest went first");
    }
}
