//! Transfers: upload pacing and serving limits shared by everything the node serves, the
//! catalogue syncs under way, the downloads under way and the transfer counters. One part of
//! the node's [`Context`](crate::context::Context); it knows nothing of the services.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use peerpack_core::ContentId;
use peerpack_net::p2p::PeerId;

/// What the node transfers, and the limits it transfers under.
pub struct Transfers {
    /// Pacing of everything served.
    pub(crate) upload: RateLimiter,
    /// Blob requests being served.
    pub(crate) serving: ServeSlots,
    /// Sync requests being answered.
    pub(crate) sync_slots: ServeSlots,
    /// Each peer's sync request rate.
    pub(crate) sync_rate: RequestRate,
    /// Peers whose catalogue is being pulled now.
    pub(crate) syncing: Mutex<HashSet<PeerId>>,
    /// Peerpack peers met, and when a sync with each last started.
    pub(crate) synced: Mutex<HashMap<PeerId, std::time::Instant>>,
    /// One gate per archive being fetched.
    pub(crate) fetching: Mutex<HashMap<ContentId, Arc<tokio::sync::Mutex<()>>>>,
    /// Downloads under way.
    pub(crate) downloads: Arc<Downloads>,
    /// Transfer counters.
    pub(crate) counters: Counters,
    /// Installs under way, which a client may cancel.
    pub installs: Arc<Installs>,
    /// Providers scoring below this are not asked for archives.
    pub(crate) min_provider_score: f64,
}

impl Transfers {
    /// Transfers paced at `upload_limit` bytes per second (none: unlimited), answering sync
    /// requests within `sync_slots` at `sync_rate`, and downloading from providers scoring at
    /// least `min_provider_score`.
    pub fn new(
        upload_limit: Option<u64>,
        sync_slots: ServeSlots,
        sync_rate: RequestRate,
        min_provider_score: f64,
    ) -> Self {
        Self {
            upload: RateLimiter::new(upload_limit),
            serving: ServeSlots::default(),
            sync_slots,
            sync_rate,
            syncing: Mutex::default(),
            synced: Mutex::default(),
            fetching: Mutex::default(),
            downloads: Arc::default(),
            counters: Counters::default(),
            installs: Arc::default(),
            min_provider_score,
        }
    }
}

/// Installs under way, by id, with the token that cancels each.
#[derive(Debug, Default)]
pub struct Installs {
    next: AtomicU64,
    running: Mutex<HashMap<u64, tokio_util::sync::CancellationToken>>,
}

impl Installs {
    /// Register an install cancelled by `token`; it is known by the answered ticket's id until
    /// the ticket is dropped. Dropping the ticket before [`InstallTicket::finish`] cancels the
    /// install: its client went away.
    pub fn register(self: &Arc<Self>, token: tokio_util::sync::CancellationToken) -> InstallTicket {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        peerpack_core::sync::lock(&self.running).insert(id, token.clone());
        InstallTicket {
            id,
            installs: Arc::clone(self),
            token,
            finished: false,
        }
    }

    /// Cancel install `id`; false if no such install runs.
    pub fn cancel(&self, id: u64) -> bool {
        match peerpack_core::sync::lock(&self.running).get(&id) {
            Some(t) => {
                t.cancel();
                true
            }
            None => false,
        }
    }
}

/// An install's registration; see [`Installs::register`].
#[derive(Debug)]
pub struct InstallTicket {
    /// The id a client cancels it by.
    pub id: u64,
    installs: Arc<Installs>,
    token: tokio_util::sync::CancellationToken,
    finished: bool,
}

impl InstallTicket {
    /// The install answered: dropping the ticket no longer cancels it.
    pub fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for InstallTicket {
    fn drop(&mut self) {
        if !self.finished {
            self.token.cancel();
        }
        peerpack_core::sync::lock(&self.installs.running).remove(&self.id);
    }
}

/// Transfer counters since start.
#[derive(Debug, Default)]
pub struct Counters {
    uploaded: std::sync::atomic::AtomicU64,
    downloaded: std::sync::atomic::AtomicU64,
    downloads_ok: std::sync::atomic::AtomicU64,
    downloads_failed: std::sync::atomic::AtomicU64,
    /// (when, bytes uploaded, bytes downloaded), one a second for the last [`RATE_WINDOW`].
    samples: std::sync::Mutex<std::collections::VecDeque<(std::time::Instant, u64, u64)>>,
}

/// The window transfer rates are measured over.
pub const RATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

impl Counters {
    /// Note the byte counters now (the node does, every second), for [`Counters::rates`].
    pub fn sample(&self) {
        let (up, down, _, _) = self.snapshot();
        let now = std::time::Instant::now();
        let mut samples = peerpack_core::sync::lock(&self.samples);
        samples.push_back((now, up, down));
        // Keep one sample at least a window old, so a rate always spans the whole window.
        while samples
            .get(1)
            .is_some_and(|(t, _, _)| now.duration_since(*t) >= RATE_WINDOW)
        {
            samples.pop_front();
        }
    }

    /// Bytes per second uploaded and downloaded over about the last [`RATE_WINDOW`]: from the
    /// oldest sample kept to the counters now. Zero before the first sample.
    pub fn rates(&self) -> (f64, f64) {
        let (up, down, _, _) = self.snapshot();
        let samples = peerpack_core::sync::lock(&self.samples);
        match samples.front() {
            Some((t, up0, down0)) => {
                let secs = t.elapsed().as_secs_f64();
                if secs <= 0.0 {
                    return (0.0, 0.0);
                }
                (
                    up.saturating_sub(*up0) as f64 / secs,
                    down.saturating_sub(*down0) as f64 / secs,
                )
            }
            None => (0.0, 0.0),
        }
    }

    pub(crate) fn bytes_uploaded(&self, n: u64) {
        self.uploaded
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn bytes_downloaded(&self, n: u64) {
        self.downloaded
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn download_finished(&self, ok: bool) {
        let c = if ok {
            &self.downloads_ok
        } else {
            &self.downloads_failed
        };
        c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// (bytes uploaded, bytes downloaded, downloads finished, downloads failed).
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.uploaded.load(Relaxed),
            self.downloaded.load(Relaxed),
            self.downloads_ok.load(Relaxed),
            self.downloads_failed.load(Relaxed),
        )
    }
}

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
        peerpack_core::sync::lock(&self.map).insert(id, p.clone());
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
        peerpack_core::sync::lock(&self.map)
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
        let mut map = peerpack_core::sync::lock(&self.downloads.map);
        // A second install of the same archive may have registered since; leave its entry.
        if map
            .get(&self.id)
            .is_some_and(|p| Arc::ptr_eq(p, &self.progress))
        {
            map.remove(&self.id);
        }
    }
}

/// Requests served at once, over all peers.
pub const MAX_SERVING: usize = 64;
/// Requests served at once to one peer.
pub const MAX_SERVING_PER_PEER: usize = 16;

/// Paces outgoing bytes to a rate (bytes per second; 0 is unlimited), over all peers.
///
/// Each send reserves its bytes on a virtual clock and waits until their slot: the long-run
/// rate is exact and no send waits longer than the bytes queued ahead of it.
#[derive(Debug, Default)]
pub struct RateLimiter {
    rate: AtomicU64,
    next_free: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// A limiter at `rate` bytes per second (`None`: unlimited).
    pub fn new(rate: Option<u64>) -> Self {
        Self {
            rate: AtomicU64::new(rate.unwrap_or(0)),
            next_free: Mutex::new(None),
        }
    }

    /// Change the rate (`None`: unlimited).
    pub fn set_rate(&self, rate: Option<u64>) {
        self.rate.store(rate.unwrap_or(0), Ordering::Relaxed);
    }

    /// The rate, if limited.
    pub fn rate(&self) -> Option<u64> {
        Some(self.rate.load(Ordering::Relaxed)).filter(|r| *r > 0)
    }

    /// Wait until `bytes` may be sent.
    pub async fn acquire(&self, bytes: u64) {
        let Some(rate) = self.rate() else { return };
        let cost = Duration::from_secs_f64(bytes as f64 / rate as f64);
        let until = {
            let mut next = peerpack_core::sync::lock(&self.next_free);
            let now = Instant::now();
            let start = next.filter(|t| *t > now).unwrap_or(now);
            let until = start + cost;
            *next = Some(until);
            until
        };
        tokio::time::sleep_until(until.into()).await;
    }
}

/// Counts requests being served, overall and per peer.
#[derive(Debug)]
pub struct ServeSlots {
    inner: Mutex<(usize, HashMap<PeerId, usize>)>,
    total: usize,
    per_peer: usize,
}

impl Default for ServeSlots {
    /// The limits of blob serving: [`MAX_SERVING`], [`MAX_SERVING_PER_PEER`].
    fn default() -> Self {
        Self::new(MAX_SERVING, MAX_SERVING_PER_PEER)
    }
}

/// A slot held while a request is served; released on drop.
pub struct Slot<'a> {
    slots: &'a ServeSlots,
    peer: PeerId,
}

impl ServeSlots {
    /// At most `total` requests at once, and `per_peer` for one peer.
    pub fn new(total: usize, per_peer: usize) -> Self {
        Self {
            inner: Mutex::new((0, HashMap::new())),
            total,
            per_peer,
        }
    }

    /// Take a slot for `peer`, or `None` when the node or this peer is at its limit.
    pub fn try_take(&self, peer: PeerId) -> Option<Slot<'_>> {
        let mut g = peerpack_core::sync::lock(&self.inner);
        let per_peer = g.1.get(&peer).copied().unwrap_or(0);
        if g.0 >= self.total || per_peer >= self.per_peer {
            return None;
        }
        g.0 += 1;
        *g.1.entry(peer).or_default() += 1;
        Some(Slot { slots: self, peer })
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut g = peerpack_core::sync::lock(&self.slots.inner);
        g.0 = g.0.saturating_sub(1);
        if let Some(n) = g.1.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                g.1.remove(&self.peer);
            }
        }
    }
}

/// A token bucket per peer: at most `burst` requests at once, refilled at `per_second`.
#[derive(Debug)]
pub struct RequestRate {
    buckets: Mutex<HashMap<PeerId, (f64, Instant)>>,
    burst: f64,
    per_second: f64,
}

/// Peers whose buckets are kept at most; past it, full buckets are forgotten.
const MAX_BUCKETS: usize = 4096;

impl RequestRate {
    /// A bucket of `burst` requests per peer, refilled at `per_second`.
    pub fn new(burst: u32, per_second: u32) -> Self {
        Self {
            buckets: Mutex::new(HashMap::new()),
            burst: f64::from(burst),
            per_second: f64::from(per_second),
        }
    }

    /// Whether `peer` may make a request now (and count it).
    pub fn allow(&self, peer: PeerId) -> bool {
        let now = Instant::now();
        let mut g = peerpack_core::sync::lock(&self.buckets);
        if g.len() >= MAX_BUCKETS {
            let (burst, rate) = (self.burst, self.per_second);
            g.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = g.entry(peer).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_request_rate_allows_a_burst_then_refuses() {
        let rate = RequestRate::new(4, 1);
        let (a, b) = (PeerId::random(), PeerId::random());
        assert!((0..4).all(|_| rate.allow(a)));
        assert!(!rate.allow(a));
        assert!(rate.allow(b), "one peer's bucket is its own");
    }

    use super::*;

    #[tokio::test]
    async fn the_limiter_paces_to_its_rate() {
        let limiter = RateLimiter::new(Some(10 * 1024 * 1024));
        let start = Instant::now();
        for _ in 0..5 {
            limiter.acquire(1024 * 1024).await;
        }
        // 5 MiB at 10 MiB/s: half a second.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(480), "{took:?}");
        limiter.set_rate(None);
        let start = Instant::now();
        limiter.acquire(1 << 30).await;
        assert!(start.elapsed() < Duration::from_millis(50));
    }

    #[test]
    fn slots_are_bounded_per_peer_and_released() {
        let slots = ServeSlots::default();
        let peer = PeerId::random();
        let held: Vec<_> = (0..MAX_SERVING_PER_PEER)
            .map(|_| slots.try_take(peer).unwrap())
            .collect();
        assert!(slots.try_take(peer).is_none());
        assert!(slots.try_take(PeerId::random()).is_some());
        drop(held);
        assert!(slots.try_take(peer).is_some());
    }

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
