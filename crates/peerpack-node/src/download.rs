//! Downloading archives from the peers that hold them, verifying every piece.
//!
//! 1. Providers come from the DHT's provider records and from the peers known to hold the
//!    archive (announcers). This node itself, and peers scoring under the node's threshold,
//!    are left out; the rest are ordered by score.
//! 2. The archive's outline is asked of the best provider that answers; it must merge to the
//!    content id and match the record's size, or that provider is penalised and dropped.
//! 3. A partial file from an earlier attempt is read back and each piece checked against the
//!    outline: verified pieces are kept, the rest fetched.
//! 4. Pieces are requested from every provider at once, at most [`WINDOW`] in flight per
//!    provider, the free slot of the best-scoring provider first. Each piece is checked against
//!    the outline before it is written. A provider that sends a bad piece is penalised and
//!    dropped for this download; one that fails, refuses or stalls [`MAX_FAILURES`] times is
//!    dropped; its pieces go back to the queue. When nothing is left to hand out, pieces still
//!    in flight are also asked of idle providers (end game), and the first good copy wins.
//! 5. The finished file is moved into the blob store and provided to the network.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use peerpack_core::ContentId;
use peerpack_core::outline::{Outline, piece_count, piece_range};
use peerpack_net::blob::{BlobRequest, BlobResponse};
use peerpack_net::p2p::PeerId;
use peerpack_net::protocol::provider_key;
use serde_bytes::ByteBuf;

use crate::error::Error;
use crate::node::Inner;

/// Pieces in flight per provider.
pub const WINDOW: usize = 8;
/// Pieces in flight per download.
pub const MAX_IN_FLIGHT: usize = 32;
/// A request unanswered this long counts as a failure.
pub const STALL: Duration = Duration::from_secs(20);
/// Failures after which a provider is dropped for the download.
pub const MAX_FAILURES: u32 = 3;
/// Bytes written between background flushes of a download to disk.
pub const SYNC_EVERY: u64 = 8 * 1024 * 1024;
/// How long the DHT is asked for providers.
pub const PROVIDER_LOOKUP: Duration = Duration::from_secs(10);

/// Live figures of a download, for progress displays.
#[derive(Debug, Default)]
pub struct Progress {
    /// Archive size.
    pub total: AtomicU64,
    /// Bytes verified so far (resumed ones included).
    pub done: AtomicU64,
    /// Providers that delivered at least one piece.
    pub sources: AtomicU64,
}

/// What a fetch did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Fetched {
    /// The archive.
    pub content_id: ContentId,
    /// Its size.
    pub size: u64,
    /// Peers that delivered verified pieces, most bytes first.
    pub sources: Vec<String>,
    /// Bytes received from peers in this fetch.
    pub fetched_bytes: u64,
    /// Bytes found verified in a partial file from an earlier attempt.
    pub resumed_bytes: u64,
    /// Whether the archive was already in the blob store.
    pub cached: bool,
}

struct Source {
    peer: PeerId,
    in_flight: usize,
    failures: u32,
    dropped: Option<String>,
    bytes: u64,
}

enum Step {
    Response {
        source: usize,
        piece: u64,
        started: Instant,
        result: Result<Result<BlobResponse, peerpack_net::Error>, tokio::time::error::Elapsed>,
    },
    Checked {
        source: usize,
        piece: u64,
        ms: f64,
        len: u64,
        result: Result<bool, String>,
    },
}

/// Fetch the archive `id` of `size` bytes into the blob store, unless it is there already.
#[tracing::instrument(skip(inner, progress), fields(%id, size))]
pub async fn fetch(
    inner: &Arc<Inner>,
    id: ContentId,
    size: u64,
    progress: Arc<Progress>,
) -> Result<Fetched, Error> {
    // One fetch per archive at a time; a second caller waits and then finds it stored.
    let gate = {
        let mut map = inner.fetching.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id).or_default().clone()
    };
    let _turn = gate.lock().await;
    let result = fetch_once(inner, id, size, &progress).await;
    // Drop the gate unless someone else is waiting on it.
    {
        let mut map = inner.fetching.lock().unwrap_or_else(|p| p.into_inner());
        let ours = map.get(&id).is_some_and(|g| Arc::ptr_eq(g, &gate));
        if ours && Arc::strong_count(&gate) <= 2 {
            map.remove(&id);
        }
    }
    result
}

async fn fetch_once(
    inner: &Arc<Inner>,
    id: ContentId,
    size: u64,
    progress: &Arc<Progress>,
) -> Result<Fetched, Error> {
    progress.total.store(size, Ordering::Relaxed);
    if inner.blobs.contains(&id) {
        progress.done.store(size, Ordering::Relaxed);
        let _ = inner
            .with_store(move |s| Ok(s.db.touch_blob(&id, size)?))
            .await;
        return Ok(Fetched {
            content_id: id,
            size,
            sources: Vec::new(),
            fetched_bytes: 0,
            resumed_bytes: 0,
            cached: true,
        });
    }
    let started = Instant::now();
    let result = run(inner, id, size, progress).await;
    inner.counters.download_finished(result.is_ok());
    if let Ok(f) = &result {
        tracing::info!(
            sources = f.sources.len(),
            fetched = f.fetched_bytes,
            resumed = f.resumed_bytes,
            ms = started.elapsed().as_millis() as u64,
            "archive downloaded"
        );
    }
    result
}

async fn run(
    inner: &Arc<Inner>,
    id: ContentId,
    size: u64,
    progress: &Progress,
) -> Result<Fetched, Error> {
    let (mut sources, skipped) = providers(inner, id).await?;
    if sources.is_empty() {
        return Err(Error::Unavailable(if skipped > 0 {
            format!(
                "{id}: the {skipped} known provider(s) all score below the threshold of {:.2}; none was asked",
                inner.min_provider_score
            )
        } else {
            format!("{id}: no peer is known to provide this archive; is its publisher online?")
        }));
    }
    connect(inner, &sources).await;
    let outline = Arc::new(get_outline(inner, id, size, &mut sources).await?);

    // Resume: keep every piece of a partial file that checks out.
    let path = inner.blobs.partial_path(&id);
    let (file, have) = {
        let outline = outline.clone();
        let p = path.clone();
        tokio::task::spawn_blocking(move || open_partial(&p, &outline))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(|e| Error::Internal(format!("{}: {e}", path.display())))?
    };
    let file = Arc::new(file);
    let pieces = outline.pieces();
    let mut have = have;
    let resumed_bytes: u64 = (0..pieces)
        .filter(|p| have[*p as usize])
        .map(|p| piece_len(size, p))
        .sum();
    progress.done.store(resumed_bytes, Ordering::Relaxed);
    let mut done_pieces = have.iter().filter(|h| **h).count() as u64;
    let mut queue: VecDeque<u64> = (0..pieces).filter(|p| !have[*p as usize]).collect();
    let mut pending = vec![0u32; pieces as usize];
    let mut holders: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut steps: FuturesUnordered<BoxFuture<'static, Step>> = FuturesUnordered::new();
    let mut fetched_bytes = 0u64;
    let mut used: HashSet<usize> = HashSet::new();
    // Written data is flushed to disk in the background as the download goes, so the final
    // fsync has little left to do.
    let mut unsynced = 0u64;
    let mut syncing: Option<tokio::task::JoinHandle<std::io::Result<()>>> = None;

    while done_pieces < pieces {
        // Hand out work: the best provider with a free slot takes the next piece.
        while steps.len() < MAX_IN_FLIGHT {
            let Some(s) = (0..sources.len())
                .find(|i| sources[*i].dropped.is_none() && sources[*i].in_flight < WINDOW)
            else {
                break;
            };
            let piece = match queue.pop_front() {
                Some(p) => p,
                None => match end_game_piece(&holders, &have, s) {
                    Some(p) => p,
                    None => break,
                },
            };
            sources[s].in_flight += 1;
            pending[piece as usize] += 1;
            holders.entry(piece).or_default().push(s);
            steps.push(request(inner, id, size, s, sources[s].peer, piece));
        }
        let Some(step) = steps.next().await else {
            return Err(stopped(id, size, progress, &sources));
        };
        match step {
            Step::Response {
                source,
                piece,
                started,
                result,
            } => {
                sources[source].in_flight -= 1;
                if let Some(h) = holders.get_mut(&piece) {
                    h.retain(|s| *s != source);
                }
                let peer = sources[source].peer;
                let expected = piece_range(size, piece);
                let outcome = match result {
                    Ok(Ok(BlobResponse::Chunk {
                        offset,
                        total_size,
                        data,
                    })) if offset == expected.start && total_size == size => Ok(data),
                    Ok(Ok(BlobResponse::Chunk { .. })) => {
                        Err(Failure::Bad("answered with another range or size"))
                    }
                    Ok(Ok(BlobResponse::NotFound)) => Err(Failure::Gone),
                    Ok(Ok(BlobResponse::Refused(reason))) => Err(Failure::Failed(reason)),
                    Ok(Ok(BlobResponse::Outline { .. })) => {
                        Err(Failure::Bad("answered a range request with an outline"))
                    }
                    Ok(Err(e)) => Err(Failure::Failed(e.to_string())),
                    Err(_) => Err(Failure::Failed(format!(
                        "no answer within {} s",
                        STALL.as_secs()
                    ))),
                };
                match outcome {
                    Ok(_) if sources[source].dropped.is_some() || have[piece as usize] => {
                        // Late or duplicate: not needed.
                        pending[piece as usize] -= 1;
                        requeue(&mut queue, &pending, &have, piece);
                    }
                    Ok(data) => {
                        let ms = started.elapsed().as_secs_f64() * 1e3;
                        steps.push(check(
                            outline.clone(),
                            file.clone(),
                            source,
                            piece,
                            expected.start,
                            ms,
                            data,
                        ));
                    }
                    Err(failure) => {
                        pending[piece as usize] -= 1;
                        requeue(&mut queue, &pending, &have, piece);
                        if sources[source].dropped.is_none() {
                            fail(inner, &mut sources[source], failure, peer);
                        }
                    }
                }
            }
            Step::Checked {
                source,
                piece,
                ms,
                len,
                result,
            } => {
                pending[piece as usize] -= 1;
                let peer = sources[source].peer;
                match result {
                    Ok(true) => {
                        if !have[piece as usize] {
                            have[piece as usize] = true;
                            done_pieces += 1;
                            fetched_bytes += len;
                            sources[source].bytes += len;
                            progress.done.fetch_add(len, Ordering::Relaxed);
                            if used.insert(source) {
                                progress.sources.fetch_add(1, Ordering::Relaxed);
                            }
                            inner.counters.bytes_downloaded(len);
                            unsynced += len;
                            if unsynced >= SYNC_EVERY
                                && syncing.as_ref().is_none_or(|t| t.is_finished())
                            {
                                unsynced = 0;
                                let f = file.clone();
                                syncing = Some(tokio::task::spawn_blocking(move || f.sync_data()));
                            }
                        }
                        inner.with_peers(|b| b.delivered(peer, len, ms));
                    }
                    Ok(false) => {
                        requeue(&mut queue, &pending, &have, piece);
                        tracing::warn!(%peer, piece, "a provider served a piece that does not match the content id");
                        inner.with_peers(|b| b.bad_data(peer));
                        sources[source].dropped =
                            Some("served bytes that do not match the content id".into());
                    }
                    Err(e) => return Err(Error::Internal(e)),
                }
            }
        }
    }

    // Every piece checked out: the file is the archive.
    if let Some(t) = syncing {
        let _ = t.await;
    }
    {
        let outline = outline.clone();
        let blobs = inner.blobs.clone();
        tokio::task::spawn_blocking(move || {
            drop(file);
            blobs.adopt_partial(&id, &outline)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::Internal(e.to_string()))?;
    }
    // Remember who delivered: they are providers worth asking first next time.
    let delivered: Vec<String> = sources
        .iter()
        .filter(|s| s.bytes > 0)
        .map(|s| s.peer.to_string())
        .collect();
    inner
        .with_store(move |s| {
            s.db.touch_blob(&id, size)?;
            for p in &delivered {
                s.db.add_provider(&id, p)?;
            }
            Ok(())
        })
        .await?;
    if let Err(e) = inner.net.start_providing(provider_key(&id)).await {
        tracing::warn!(error = %e, "could not provide a downloaded archive");
    }
    let mut by_bytes: Vec<&Source> = sources.iter().filter(|s| s.bytes > 0).collect();
    by_bytes.sort_by_key(|s| std::cmp::Reverse(s.bytes));
    Ok(Fetched {
        content_id: id,
        size,
        sources: by_bytes.iter().map(|s| s.peer.to_string()).collect(),
        fetched_bytes,
        resumed_bytes,
        cached: false,
    })
}

enum Failure {
    /// Verifiably wrong data.
    Bad(&'static str),
    /// The provider does not hold the archive.
    Gone,
    /// A refusal, a network error or a stall.
    Failed(String),
}

fn fail(inner: &Inner, source: &mut Source, failure: Failure, peer: PeerId) {
    match failure {
        Failure::Bad(what) => {
            inner.with_peers(|b| b.bad_data(peer));
            source.dropped = Some(what.into());
        }
        Failure::Gone => {
            inner.with_peers(|b| b.request_failed(peer));
            source.dropped = Some("does not hold the archive".into());
        }
        Failure::Failed(reason) => {
            inner.with_peers(|b| b.request_failed(peer));
            source.failures += 1;
            tracing::debug!(%peer, %reason, "piece request failed");
            if source.failures >= MAX_FAILURES {
                source.dropped = Some(reason);
            }
        }
    }
}

fn requeue(queue: &mut VecDeque<u64>, pending: &[u32], have: &[bool], piece: u64) {
    if !have[piece as usize] && pending[piece as usize] == 0 && !queue.contains(&piece) {
        queue.push_front(piece);
    }
}

/// In the end game, a piece in flight at exactly one other provider.
fn end_game_piece(holders: &HashMap<u64, Vec<usize>>, have: &[bool], source: usize) -> Option<u64> {
    holders
        .iter()
        .filter(|(p, h)| h.len() == 1 && h[0] != source && !have[**p as usize])
        .map(|(p, _)| *p)
        .min()
}

fn piece_len(size: u64, piece: u64) -> u64 {
    let r = piece_range(size, piece);
    r.end - r.start
}

fn stopped(id: ContentId, size: u64, progress: &Progress, sources: &[Source]) -> Error {
    let why: Vec<String> = sources
        .iter()
        .map(|s| {
            format!(
                "{}: {}",
                s.peer,
                s.dropped.as_deref().unwrap_or("no answer")
            )
        })
        .collect();
    Error::Unavailable(format!(
        "download of {id} stopped at {} of {size} bytes (kept for resuming): no provider left ({})",
        progress.done.load(Ordering::Relaxed),
        why.join("; ")
    ))
}

fn request(
    inner: &Inner,
    id: ContentId,
    size: u64,
    source: usize,
    peer: PeerId,
    piece: u64,
) -> BoxFuture<'static, Step> {
    let net = inner.net.clone();
    let range = piece_range(size, piece);
    let request = BlobRequest::Range {
        content_id: ByteBuf::from(id.as_bytes().to_vec()),
        offset: range.start,
        length: (range.end - range.start) as u32,
    };
    Box::pin(async move {
        let started = Instant::now();
        let result = tokio::time::timeout(STALL, net.fetch_chunk(peer, request)).await;
        Step::Response {
            source,
            piece,
            started,
            result,
        }
    })
}

fn check(
    outline: Arc<Outline>,
    file: Arc<std::fs::File>,
    source: usize,
    piece: u64,
    offset: u64,
    ms: f64,
    data: ByteBuf,
) -> BoxFuture<'static, Step> {
    Box::pin(async move {
        let len = data.len() as u64;
        let result = tokio::task::spawn_blocking(move || {
            if !outline.check_piece(piece, &data) {
                return Ok(false);
            }
            write_at(&file, &data, offset)
                .map_err(|e| format!("writing a downloaded piece: {e}"))?;
            Ok(true)
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        Step::Checked {
            source,
            piece,
            ms,
            len,
            result,
        }
    })
}

#[cfg(unix)]
fn write_at(file: &std::fs::File, data: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, data, offset)
}

#[cfg(unix)]
fn read_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn write_at(file: &std::fs::File, mut data: &[u8], mut offset: u64) -> std::io::Result<()> {
    while !data.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_write(file, data, offset)?;
        data = &data[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(windows)]
fn read_at(file: &std::fs::File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_read(file, buf, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

/// Open (creating) the partial file and check which pieces it already holds.
fn open_partial(
    path: &std::path::Path,
    outline: &Outline,
) -> std::io::Result<(std::fs::File, Vec<bool>)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let len = file.metadata()?.len();
    let pieces = piece_count(outline.size());
    let mut have = vec![false; pieces as usize];
    let mut buf = Vec::new();
    for p in 0..pieces {
        let r = piece_range(outline.size(), p);
        if r.end > len || r.end == r.start {
            continue;
        }
        buf.resize((r.end - r.start) as usize, 0);
        read_at(&file, &mut buf, r.start)?;
        have[p as usize] = outline.check_piece(p, &buf);
    }
    Ok((file, have))
}

/// Candidate providers, best first, and how many were skipped for a low score.
async fn providers(inner: &Arc<Inner>, id: ContentId) -> Result<(Vec<Source>, usize), Error> {
    let known = inner.with_store(move |s| Ok(s.db.providers(&id)?)).await?;
    let found = inner
        .net
        .get_providers(provider_key(&id), PROVIDER_LOOKUP)
        .await
        .unwrap_or_else(|e| {
            tracing::debug!(error = %e, "provider lookup failed");
            Vec::new()
        });
    let mut peers: Vec<PeerId> = known
        .iter()
        .filter_map(|p| p.parse().ok())
        .chain(found)
        .filter(|p| *p != inner.peer_id)
        .collect();
    peers.sort();
    peers.dedup();
    let mut scored: Vec<(f64, PeerId)> = inner.with_peers(|b| {
        peers
            .into_iter()
            .map(|p| (b.score_of_peer(&p), p))
            .collect()
    });
    let before = scored.len();
    scored.retain(|(s, _)| *s >= inner.min_provider_score);
    let skipped = before - scored.len();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    Ok((
        scored
            .into_iter()
            .map(|(_, peer)| Source {
                peer,
                in_flight: 0,
                failures: 0,
                dropped: None,
                bytes: 0,
            })
            .collect(),
        skipped,
    ))
}

/// Dial providers that are not connected, at the addresses the peer book has for them.
async fn connect(inner: &Arc<Inner>, sources: &[Source]) {
    let connected: HashSet<PeerId> = inner
        .net
        .peers()
        .await
        .map(|v| v.into_iter().map(|p| p.peer_id).collect())
        .unwrap_or_default();
    for s in sources.iter().filter(|s| !connected.contains(&s.peer)) {
        let addrs = inner.with_peers(|b| {
            b.get(&s.peer)
                .map(|p| p.row.addresses.clone())
                .unwrap_or_default()
        });
        for a in addrs {
            let Ok(mut addr) = a.parse::<peerpack_net::p2p::Multiaddr>() else {
                continue;
            };
            if !matches!(
                addr.iter().last(),
                Some(peerpack_net::p2p::multiaddr::Protocol::P2p(_))
            ) {
                addr.push(peerpack_net::p2p::multiaddr::Protocol::P2p(s.peer));
            }
            if inner.net.dial(addr).await.is_ok() {
                break;
            }
        }
    }
}

async fn get_outline(
    inner: &Arc<Inner>,
    id: ContentId,
    size: u64,
    sources: &mut [Source],
) -> Result<Outline, Error> {
    let mut reasons = Vec::new();
    for s in sources.iter_mut() {
        let request = BlobRequest::Outline {
            content_id: ByteBuf::from(id.as_bytes().to_vec()),
        };
        let peer = s.peer;
        let result = tokio::time::timeout(STALL, inner.net.fetch_chunk(peer, request)).await;
        let failure = match result {
            Ok(Ok(BlobResponse::Outline { total_size, values })) if total_size == size => {
                match Outline::new(&id, total_size, &values) {
                    Ok(o) => return Ok(o),
                    Err(_) => Failure::Bad("served an outline that does not match the content id"),
                }
            }
            Ok(Ok(BlobResponse::Outline { .. })) => {
                Failure::Bad("reported a size other than the signed record's")
            }
            Ok(Ok(BlobResponse::NotFound)) => Failure::Gone,
            Ok(Ok(BlobResponse::Refused(r))) => Failure::Failed(r),
            Ok(Ok(BlobResponse::Chunk { .. })) => {
                Failure::Bad("answered an outline request with data")
            }
            Ok(Err(e)) => Failure::Failed(e.to_string()),
            Err(_) => Failure::Failed(format!("no answer within {} s", STALL.as_secs())),
        };
        let reason = match &failure {
            Failure::Bad(w) => (*w).to_string(),
            Failure::Gone => "does not hold the archive".into(),
            Failure::Failed(r) => r.clone(),
        };
        reasons.push(format!("{peer}: {reason}"));
        fail(inner, s, failure, peer);
        // A failed outline request does not leave a provider usable for this download
        // unless it might answer next time; keep it only for transient failures.
        if s.dropped.is_none() {
            s.failures = s.failures.max(1);
        }
    }
    Err(Error::Unavailable(format!(
        "{id}: no provider served its outline ({})",
        reasons.join("; ")
    )))
}

/// Progress of every download under way, by content id.
#[derive(Debug, Default)]
pub struct Downloads {
    map: Mutex<HashMap<ContentId, Arc<Progress>>>,
}

impl Downloads {
    /// Register the download of `id`, `size` bytes, from now on; removed again when the guard
    /// drops. The size is known from the start, so that nobody reads a download under way as
    /// "0 of 0 bytes", that is, as finished.
    pub fn track(self: &Arc<Self>, id: ContentId, size: u64) -> (Arc<Progress>, Tracked) {
        let p = Arc::new(Progress {
            total: AtomicU64::new(size),
            ..Progress::default()
        });
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, p.clone());
        (
            p.clone(),
            Tracked {
                downloads: self.clone(),
                id,
                progress: p,
            },
        )
    }

    /// Every download under way: (id, total, done).
    pub fn snapshot(&self) -> Vec<(ContentId, u64, u64)> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(id, p)| {
                (
                    *id,
                    p.total.load(Ordering::Relaxed),
                    p.done.load(Ordering::Relaxed),
                )
            })
            .collect()
    }
}

/// Removes a download from [`Downloads`] when dropped.
pub struct Tracked {
    downloads: Arc<Downloads>,
    id: ContentId,
    progress: Arc<Progress>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut map = self.downloads.map.lock().unwrap_or_else(|e| e.into_inner());
        // A second install of the same archive may have registered since; leave its entry.
        if map
            .get(&self.id)
            .is_some_and(|p| Arc::ptr_eq(p, &self.progress))
        {
            map.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tracked_download_shows_its_size_from_the_start() {
        let downloads = Arc::new(Downloads::default());
        let id = ContentId::of(b"archive");
        let (_p, _guard) = downloads.track(id, 16 << 20);
        assert_eq!(downloads.snapshot(), vec![(id, 16 << 20, 0)]);
    }

    #[test]
    fn the_first_guard_leaves_a_later_registration_of_the_same_archive() {
        let downloads = Arc::new(Downloads::default());
        let id = ContentId::of(b"archive");
        let (_, first) = downloads.track(id, 10);
        let (second_progress, second) = downloads.track(id, 10);
        second_progress.done.store(4, Ordering::Relaxed);
        drop(first);
        assert_eq!(downloads.snapshot(), vec![(id, 10, 4)]);
        drop(second);
        assert!(downloads.snapshot().is_empty());
    }
}
