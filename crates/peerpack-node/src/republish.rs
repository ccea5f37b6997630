//! Keeping this node's part of the DHT fresh: its own records are put again and its archives
//! announced again, on the node's schedule (Kademlia's own periodic jobs are off; they would
//! walk the whole store from the network event loop).
//!
//! A round runs only once the node has a peer: announcements made with no peer reach no one,
//! so after a restart the first round waits for the first connection, then the rounds follow
//! every [`Intervals::records`] and [`Intervals::providers`]. A node that starts with nothing
//! of its own starts with a whole interval: what it publishes is announced as it publishes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use peerpack_net::protocol;

use crate::context::Context;

/// How often records are republished and archives re-announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intervals {
    /// Own package and index records.
    pub records: Duration,
    /// Own archives (provider records; they live 48 hours at other peers).
    pub providers: Duration,
}

/// Default [`Intervals::records`]: 6 hours.
pub const DEFAULT_RECORDS: Duration = Duration::from_secs(6 * 3600);
/// Default [`Intervals::providers`]: 12 hours.
pub const DEFAULT_PROVIDERS: Duration = Duration::from_secs(12 * 3600);
/// DHT writes of one round in flight at once.
const IN_FLIGHT: usize = 16;
/// How often the task checks for a first peer.
const PEER_POLL: Duration = Duration::from_millis(500);

impl Default for Intervals {
    fn default() -> Self {
        Self {
            records: DEFAULT_RECORDS,
            providers: DEFAULT_PROVIDERS,
        }
    }
}

/// One finished round.
#[derive(Debug, Clone, Copy)]
pub struct Round {
    /// When it ended.
    pub ended: Instant,
    /// How long it took.
    pub took: Duration,
    /// Records put, or archives announced.
    pub done: u64,
    /// Of those, how many failed: records stored by no peer, announcements that could not
    /// start.
    pub failed: u64,
}

/// What the task did and will do, for `status`.
#[derive(Debug, Default)]
pub struct Schedule(Mutex<ScheduleInner>);

#[derive(Debug, Default, Clone, Copy)]
struct ScheduleInner {
    records: Option<Round>,
    archives: Option<Round>,
    next_records: Option<Instant>,
    next_archives: Option<Instant>,
    waiting_for_peer: bool,
}

/// A snapshot of a [`Schedule`].
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    /// The last round of records.
    pub records: Option<Round>,
    /// The last round of archives.
    pub archives: Option<Round>,
    /// When the next round of records is due.
    pub next_records: Option<Instant>,
    /// When the next round of archives is due.
    pub next_archives: Option<Instant>,
    /// A round is due but waits for a first peer.
    pub waiting_for_peer: bool,
}

impl Schedule {
    fn update(&self, f: impl FnOnce(&mut ScheduleInner)) {
        f(&mut peerpack_core::sync::lock(&self.0));
    }

    /// What the task did last and will do next.
    pub fn snapshot(&self) -> Snapshot {
        let s = *peerpack_core::sync::lock(&self.0);
        Snapshot {
            records: s.records,
            archives: s.archives,
            next_records: s.next_records,
            next_archives: s.next_archives,
            waiting_for_peer: s.waiting_for_peer,
        }
    }
}

async fn has_peer(inner: &Context) -> bool {
    inner.net.peers().await.is_ok_and(|p| !p.is_empty())
}

/// Wait until the node has a peer, or it stops (then `false`).
async fn wait_for_peer(inner: &Context) -> bool {
    loop {
        if has_peer(inner).await {
            return true;
        }
        tokio::select! {
            () = inner.supervisor.cancelled() => return false,
            () = tokio::time::sleep(PEER_POLL) => {}
        }
    }
}

/// Put every record this node's publisher key owns (each version and the index, and its curator
/// list) back into the DHT. Answers how many were put, and how many of those failed.
pub async fn records_round(inner: &Arc<Context>) -> (u64, u64) {
    let owner = inner.publisher.public();
    let found = inner
        .catalogue
        .with_store(move |s| {
            let mut out = Vec::new();
            for name in s.db.names_of(&owner)? {
                for r in s.db.versions(&name)? {
                    out.push((protocol::record_key(&name, r.version()), r.encode()));
                }
                if let Some(idx) = s.db.index_record(&name)? {
                    out.push((protocol::index_key(&name), idx.encode()));
                }
            }
            // And the list this node signs as a curator, if it keeps one.
            if let Some(list) = s.db.curator_list(&owner)? {
                out.push((protocol::curator_key(&owner), list.encode()));
            }
            Ok(out)
        })
        .await;
    let records = match found {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the records to republish");
            return (0, 0);
        }
    };
    let n = records.len() as u64;
    let net = inner.net.clone();
    let failed = futures::stream::iter(records)
        .map(|(key, value)| {
            let net = net.clone();
            async move {
                match net.put_record(key, value).await {
                    Ok(0) => {
                        tracing::debug!("a republished record was stored by no peer");
                        1
                    }
                    Ok(_) => 0,
                    Err(e) => {
                        tracing::debug!(error = %e, "republishing a record failed");
                        1
                    }
                }
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .fold(0u64, |acc, f| async move { acc + f })
        .await;
    (n, failed)
}

/// Announce again every archive this node holds. Answers how many, and how many announcements
/// could not be started. An announcement that starts but reaches no peer is published again
/// by the network event loop on its own (`kad.rs`, with a warning), so it is not counted.
pub async fn providers_round(inner: &Arc<Context>) -> (u64, u64) {
    let ids = match inner
        .catalogue
        .with_store(|s| Ok(s.blobs.list().map_err(peerpack_store::Error::from)?))
        .await
    {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the archives to announce");
            return (0, 0);
        }
    };
    let n = ids.len() as u64;
    let mut failed = 0;
    for id in ids {
        if let Err(e) = inner.net.start_providing(protocol::provider_key(&id)).await {
            tracing::debug!(error = %e, "announcing an archive failed");
            failed += 1;
        }
    }
    (n, failed)
}

/// Run a round (answering what it did and what failed), and time it.
async fn timed(round: impl std::future::Future<Output = (u64, u64)>) -> Round {
    let started = Instant::now();
    let (done, failed) = round.await;
    let ended = Instant::now();
    Round {
        ended,
        took: ended - started,
        done,
        failed,
    }
}

/// The republishing task: see the module documentation.
pub async fn task(inner: Arc<Context>, every: Intervals) {
    // What the node held before this start is announced as soon as it has a peer; what it
    // publishes or fetches from now on was just announced, so a node that starts empty waits
    // a whole interval.
    let owner = inner.publisher.public();
    let held = inner
        .catalogue
        .with_store(move |s| {
            Ok((
                !s.db.names_of(&owner)?.is_empty() || s.db.curator_list(&owner)?.is_some(),
                !s.blobs
                    .list()
                    .map_err(peerpack_store::Error::from)?
                    .is_empty(),
            ))
        })
        .await
        .unwrap_or((true, true));
    let start = Instant::now();
    let mut next_records = if held.0 { start } else { start + every.records };
    let mut next_providers = if held.1 {
        start
    } else {
        start + every.providers
    };
    let schedule = &inner.republish;
    loop {
        schedule.update(|s| {
            s.next_records = Some(next_records);
            s.next_archives = Some(next_providers);
            s.waiting_for_peer = false;
        });
        let next = next_records.min(next_providers);
        tokio::select! {
            () = inner.supervisor.cancelled() => return,
            () = tokio::time::sleep_until(next.into()) => {}
        }
        if !has_peer(&inner).await {
            schedule.update(|s| s.waiting_for_peer = true);
            if !wait_for_peer(&inner).await {
                return;
            }
        }
        let now = Instant::now();
        if next_providers <= now {
            let round = timed(providers_round(&inner)).await;
            tracing::info!(
                archives = round.done,
                failed = round.failed,
                "announced this node's archives"
            );
            schedule.update(|s| s.archives = Some(round));
            next_providers = round.ended + every.providers;
        }
        if next_records <= now {
            let round = timed(records_round(&inner)).await;
            tracing::info!(
                records = round.done,
                failed = round.failed,
                "republished this node's records"
            );
            schedule.update(|s| s.records = Some(round));
            next_records = round.ended + every.records;
        }
    }
}
