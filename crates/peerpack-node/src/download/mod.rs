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
//!
//! The choices of step 4 are made by a [`schedule::Scheduler`], which does no I/O and keeps no
//! clock; the loop here sends what it asks for and tells it what came back. Providers, their
//! outline and penalties are in `sources.rs`, the partial file in `partial.rs`.

mod partial;
pub mod schedule;
mod sources;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
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

use crate::context::Context;
use crate::error::Error;
use partial::{open_partial, piece_len, write_at};
use schedule::{Arrival, Fault, Request, Scheduler, Status, Verdict, no_answer};
pub use schedule::{MAX_FAILURES, MAX_IN_FLIGHT, STALL, WINDOW};
use sources::{Lookup, Source, connect, get_outline, penalise, providers};

/// Bytes written between background flushes of a download to disk.
pub const SYNC_EVERY: u64 = 8 * 1024 * 1024;
/// How long the DHT is asked for providers.
pub const PROVIDER_LOOKUP: Duration = Duration::from_secs(10);

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

/// A request or a check that ended.
enum Step {
    Response {
        req: Request,
        started: Instant,
        result: Result<Result<BlobResponse, peerpack_net::Error>, tokio::time::error::Elapsed>,
    },
    Checked {
        req: Request,
        ms: f64,
        len: u64,
        result: Result<bool, String>,
    },
}

/// Fetch the archive `id` of `size` bytes into the blob store, unless it is there already.
#[tracing::instrument(skip(inner, progress), fields(%id, size = size, cached, result))]
pub async fn fetch(
    inner: &Arc<Context>,
    id: ContentId,
    size: u64,
    progress: Arc<Progress>,
) -> Result<Fetched, Error> {
    // One fetch per archive at a time; a second caller waits and then finds it stored.
    let gate = {
        let mut map = peerpack_core::sync::lock(&inner.transfers.fetching);
        map.entry(id).or_default().clone()
    };
    let _turn = gate.lock().await;
    let started = std::time::Instant::now();
    // An archive already here (fetched by the caller before us) is no download to count.
    let here = inner.catalogue.blobs.contains(&id);
    let result = fetch_once(inner, id, size, &progress).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => crate::telemetry::error_kind(e),
    };
    tracing::Span::current()
        .record("cached", here)
        .record("result", outcome);
    if !here {
        inner.metrics.download(outcome, size, started.elapsed());
    }
    // Drop the gate unless someone else is waiting on it.
    {
        let mut map = peerpack_core::sync::lock(&inner.transfers.fetching);
        let ours = map.get(&id).is_some_and(|g| Arc::ptr_eq(g, &gate));
        if ours && Arc::strong_count(&gate) <= 2 {
            map.remove(&id);
        }
    }
    result
}

async fn fetch_once(
    inner: &Arc<Context>,
    id: ContentId,
    size: u64,
    progress: &Arc<Progress>,
) -> Result<Fetched, Error> {
    progress.total.store(size, Ordering::Relaxed);
    // An archive found unsafe once is never fetched (or provided) again, whoever asks: an
    // install, a pin, a mirror or a verify.
    if let Some(reason) = inner
        .catalogue
        .with_store(move |s| Ok(s.db.unsafe_reason(&id)?))
        .await?
    {
        return Err(Error::UnsafeArchive(format!(
            "{id} is flagged unsafe and will not be fetched: {reason}"
        )));
    }
    if inner.catalogue.blobs.contains(&id) {
        progress.done.store(size, Ordering::Relaxed);
        let _ = inner
            .catalogue
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
    let mut complete = false;
    let mut result = run(inner, id, size, progress, Lookup::Early, &mut complete).await;
    // The providers known, or the first found, all failed: ask the DHT for every provider
    // and go on from the verified pieces kept.
    if let (Err(Error::Unavailable(reason)), false) = (&result, complete) {
        tracing::info!(%id, %reason, "the first providers failed; looking up every provider");
        result = run(inner, id, size, progress, Lookup::Full, &mut complete).await;
    }
    inner.transfers.counters.download_finished(result.is_ok());
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

/// Download from the providers [`providers`] finds with `lookup`; `complete` tells whether
/// they were every provider the DHT knows.
async fn run(
    inner: &Arc<Context>,
    id: ContentId,
    size: u64,
    progress: &Progress,
    lookup: Lookup,
    complete: &mut bool,
) -> Result<Fetched, Error> {
    let (mut sources, skipped, all) = providers(inner, id, size, lookup).await?;
    *complete = all;
    if sources.is_empty() {
        return Err(Error::Unavailable(if skipped > 0 {
            format!(
                "{id}: the {skipped} known provider(s) all score below the threshold of {:.2}; none was asked",
                inner.transfers.min_provider_score
            )
        } else {
            format!("{id}: no peer is known to provide this archive; is its publisher online?")
        }));
    }
    connect(inner, &sources).await;
    let mut schedule = Scheduler::new(piece_count(size), sources.len());
    let wait = if all {
        schedule::STALL
    } else {
        sources::EARLY_OUTLINE_WAIT
    };
    let outline = Arc::new(get_outline(inner, id, size, &sources, &mut schedule, wait).await?);

    // Resume: keep every piece of a partial file that checks out.
    let path = inner.catalogue.blobs.partial_path(&id);
    let (file, have) = {
        let outline = outline.clone();
        let p = path.clone();
        crate::telemetry::blocking("download.resume", move || open_partial(&p, &outline))
            .await
            .map_err(|e| Error::task("reading the partial download", e))?
            .map_err(|e| Error::io(path.display().to_string(), e))?
    };
    let file = Arc::new(file);
    let pieces = outline.pieces();
    let resumed_bytes: u64 = (0..pieces)
        .filter(|p| have[*p as usize])
        .map(|p| piece_len(size, p))
        .sum();
    progress.done.store(resumed_bytes, Ordering::Relaxed);
    schedule.resume(&have);
    let mut steps: FuturesUnordered<BoxFuture<'static, Step>> = FuturesUnordered::new();
    let mut fetched_bytes = 0u64;
    let mut used: HashSet<usize> = HashSet::new();
    // Written data is flushed to disk in the background as the download goes, so the final
    // fsync has little left to do.
    let mut unsynced = 0u64;
    let mut syncing: Option<tokio::task::JoinHandle<std::io::Result<()>>> = None;

    loop {
        // Requests unanswered for STALL are failures (each request future also gives up then).
        // The scheduler is given tokio's clock, the one the request timeouts run on.
        for stalled in schedule.expire(tokio::time::Instant::now().into_std()) {
            let peer = sources[stalled.request.provider].peer;
            penalise(inner, peer, &Fault::Failed(no_answer()), &stalled.strike);
        }
        if schedule.status() == Status::Complete {
            break;
        }
        // Hand out work: the best provider with a free slot takes the next piece.
        for req in schedule.next_requests(tokio::time::Instant::now().into_std()) {
            steps.push(request(inner, id, size, req, sources[req.provider].peer));
        }
        if let Status::Stopped { missing } = schedule.status() {
            tracing::debug!(missing = missing.len(), "no provider left");
            return Err(stopped(id, size, progress, &sources, &schedule));
        }
        let deadline = schedule.next_deadline();
        let step = tokio::select! {
            step = steps.next(), if !steps.is_empty() => step,
            () = sleep_until(deadline), if deadline.is_some() => None,
            else => return Err(stopped(id, size, progress, &sources, &schedule)),
        };
        match step {
            None => {}
            Some(Step::Response {
                req,
                started,
                result,
            }) => {
                let peer = sources[req.provider].peer;
                let expected = piece_range(size, req.piece);
                let outcome = match result {
                    Ok(Ok(BlobResponse::Chunk {
                        offset,
                        total_size,
                        data,
                    })) if offset == expected.start && total_size == size => Ok(data),
                    Ok(Ok(BlobResponse::Chunk { .. })) => {
                        Err(Fault::Bad("answered with another range or size"))
                    }
                    Ok(Ok(BlobResponse::NotFound)) => Err(Fault::Gone),
                    Ok(Ok(BlobResponse::Refused(reason))) => Err(Fault::Failed(reason)),
                    Ok(Ok(BlobResponse::Outline { .. })) => {
                        Err(Fault::Bad("answered a range request with an outline"))
                    }
                    Ok(Err(e)) => Err(Fault::Failed(e.to_string())),
                    Err(_) => Err(Fault::Failed(no_answer())),
                };
                match outcome {
                    Ok(data) => {
                        if schedule.arrived(req.ticket) == Arrival::Verify {
                            let ms = started.elapsed().as_secs_f64() * 1e3;
                            steps.push(check(
                                outline.clone(),
                                file.clone(),
                                req,
                                expected.start,
                                ms,
                                data,
                            ));
                        }
                    }
                    Err(fault) => {
                        let strike = schedule.failed(req.ticket, fault.clone());
                        penalise(inner, peer, &fault, &strike);
                    }
                }
            }
            Some(Step::Checked {
                req,
                ms,
                len,
                result,
            }) => {
                let (source, piece) = (req.provider, req.piece);
                let peer = sources[source].peer;
                match result.map(|good| schedule.verified(req.ticket, good)) {
                    Ok(Verdict::New) => {
                        fetched_bytes += len;
                        sources[source].bytes += len;
                        progress.done.fetch_add(len, Ordering::Relaxed);
                        if used.insert(source) {
                            progress.sources.fetch_add(1, Ordering::Relaxed);
                        }
                        inner.transfers.counters.bytes_downloaded(len);
                        unsynced += len;
                        if unsynced >= SYNC_EVERY
                            && syncing.as_ref().is_none_or(|t| t.is_finished())
                        {
                            unsynced = 0;
                            let f = file.clone();
                            syncing = Some(tokio::task::spawn_blocking(move || f.sync_data()));
                        }
                        inner.peers.with(|b| b.delivered(peer, len, ms));
                    }
                    Ok(Verdict::Duplicate) => inner.peers.with(|b| b.delivered(peer, len, ms)),
                    Ok(Verdict::Bad) => {
                        tracing::warn!(%peer, piece, "a provider served a piece that does not match the content id");
                        inner.peers.with(|b| b.bad_data(peer));
                    }
                    Ok(Verdict::Unknown) => {}
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
        let blobs = inner.catalogue.blobs.clone();
        crate::telemetry::blocking("download.adopt", move || {
            drop(file);
            blobs.adopt_partial(&id, &outline)
        })
        .await
        .map_err(|e| Error::task("storing the download", e))?
        .map_err(peerpack_store::Error::from)?;
    }
    // Remember who delivered: they are providers worth asking first next time.
    let delivered: Vec<String> = sources
        .iter()
        .filter(|s| s.bytes > 0)
        .map(|s| s.peer.to_string())
        .collect();
    inner
        .catalogue
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

/// Sleep until `deadline`, or for ever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

fn stopped(
    id: ContentId,
    size: u64,
    progress: &Progress,
    sources: &[Source],
    schedule: &Scheduler,
) -> Error {
    let why: Vec<String> = sources
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "{}: {}",
                s.peer,
                schedule.drop_reason(i).unwrap_or("no answer")
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
    inner: &Context,
    id: ContentId,
    size: u64,
    req: Request,
    peer: PeerId,
) -> BoxFuture<'static, Step> {
    let net = inner.net.clone();
    let range = piece_range(size, req.piece);
    let request = BlobRequest::Range {
        content_id: ByteBuf::from(id.as_bytes().to_vec()),
        offset: range.start,
        length: (range.end - range.start) as u32,
    };
    Box::pin(async move {
        let started = Instant::now();
        let result = tokio::time::timeout(STALL, net.fetch_chunk(peer, request)).await;
        Step::Response {
            req,
            started,
            result,
        }
    })
}

fn check(
    outline: Arc<Outline>,
    file: Arc<std::fs::File>,
    req: Request,
    offset: u64,
    ms: f64,
    data: ByteBuf,
) -> BoxFuture<'static, Step> {
    Box::pin(async move {
        let len = data.len() as u64;
        let result = tokio::task::spawn_blocking(move || {
            if !outline.check_piece(req.piece, &data) {
                return Ok(false);
            }
            write_at(&file, &data, offset)
                .map_err(|e| format!("writing a downloaded piece: {e}"))?;
            Ok(true)
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        Step::Checked {
            req,
            ms,
            len,
            result,
        }
    })
}

pub use crate::transfer::{Downloads, Progress, Tracked};
