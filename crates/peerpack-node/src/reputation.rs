//! Per-peer records and the reputation score.
//!
//! The score is in [0, 1]. It weighs what a peer actually did:
//! - 0.5: success rate, over everything it sent us (valid records, verified archive pieces)
//!   against everything that went wrong (invalid messages, failed or refused requests, data
//!   that failed verification);
//! - 0.25: response time, the moving average of its piece response times when it has served
//!   us, otherwise its ping latency;
//! - 0.15: whether it is connected now;
//! - 0.10: how recently it was seen.
//!
//! On top of that, each invalid message costs 0.1 and each piece of invalid archive data 0.25,
//! together at most 0.8: a peer that forwards forged data or serves bad bytes loses standing
//! at once, and one that does it twice is no longer asked. Peers start at the score of an
//! unknown but connected peer.

use std::collections::{HashMap, HashSet};

use peerpack_net::p2p::{Multiaddr, PeerId};
use peerpack_store::PeerRow;
use peerpack_store::db::now;

/// Penalty per invalid message.
const INVALID_PENALTY: f64 = 0.1;
/// Penalty per piece of invalid archive data.
const BAD_DATA_PENALTY: f64 = 0.25;
/// Cap on the penalties together.
const MAX_PENALTY: f64 = 0.8;
/// Weight of the newest sample in the response-time moving average.
const RESPONSE_EWMA: f64 = 0.2;

/// The score of a peer row.
pub fn score(row: &PeerRow, connected: bool, now: i64) -> f64 {
    let good = (row.valid_records.max(0) + row.downloads_ok.max(0)) as f64;
    let bad = (row.invalid_messages.max(0) + row.downloads_failed.max(0) + row.invalid_data.max(0))
        as f64;
    let success = (good + 1.0) / (good + bad + 1.0);
    let response = match (row.response_ms, row.ping_ms) {
        // A 1 MiB piece in 50 ms scores 0.9; in 500 ms, 0.5.
        (Some(ms), _) => 1.0 / (1.0 + ms.max(0.0) / 500.0),
        (None, Some(ms)) => 1.0 / (1.0 + ms.max(0.0) / 100.0),
        (None, None) => 0.5,
    };
    let availability = if connected { 1.0 } else { 0.3 };
    let age_days = (now - row.last_seen).max(0) as f64 / 86_400.0;
    let recency = (-age_days).exp();
    let penalty = (row.invalid_messages.max(0) as f64 * INVALID_PENALTY
        + row.invalid_data.max(0) as f64 * BAD_DATA_PENALTY)
        .min(MAX_PENALTY);
    (0.5 * success + 0.25 * response + 0.15 * availability + 0.10 * recency - penalty)
        .clamp(0.0, 1.0)
}

/// One peer as the node sees it.
#[derive(Debug, Clone)]
pub struct Peer {
    /// What is stored.
    pub row: PeerRow,
    /// Whether a connection is open now.
    pub connected: bool,
}

impl Peer {
    /// The current score.
    pub fn score(&self) -> f64 {
        score(&self.row, self.connected, now())
    }
}

/// The peer book as a part of the node: the book behind its lock, and the network handle
/// that carries out the blocks the book decides.
pub struct Peers {
    book: std::sync::Mutex<PeerBook>,
    net: peerpack_net::NetHandle,
}

impl Peers {
    /// The book, acting through `net`.
    pub fn new(book: PeerBook, net: peerpack_net::NetHandle) -> Self {
        Self {
            book: std::sync::Mutex::new(book),
            net,
        }
    }

    /// Run `f` on the peer book. A peer that `f` pushed over the blocking threshold is
    /// disconnected and blocked (see [`BLOCK_BELOW`]).
    pub fn with<T>(&self, f: impl FnOnce(&mut PeerBook) -> T) -> T {
        let (out, to_block) = {
            let mut book = peerpack_core::sync::lock(&self.book);
            let out = f(&mut book);
            (out, book.take_to_block())
        };
        for peer in to_block {
            if self
                .net
                .try_send(peerpack_net::Command::Block { peer })
                .is_err()
            {
                // The periodic task blocks every blocked peer again.
                tracing::debug!(%peer, "block queued for the next round");
            }
        }
        out
    }

    /// Block every peer whose block still runs, and lift the blocks that ran out.
    pub async fn enforce_blocks(&self) {
        let (blocked, expired) = self.with(|b| (b.blocked(), b.expire_blocks()));
        for (peer, _) in blocked {
            let _ = self.net.block(peer).await;
        }
        for peer in expired {
            tracing::info_span!("reputation.unblock", %peer, reason = "expired")
                .in_scope(|| tracing::info!(%peer, "block ran out"));
            let _ = self.net.unblock(peer).await;
        }
    }
}

/// Every peer the node knows, with the rows changed since the last flush.
#[derive(Debug, Default)]
pub struct PeerBook {
    peers: HashMap<PeerId, Peer>,
    dirty: HashSet<PeerId>,
    /// Record hashes already credited to each peer (bounded), so that a record sent again,
    /// however often, earns nothing more.
    credited: HashMap<PeerId, Credited>,
    /// Peers that just crossed the blocking threshold, for the node to block.
    to_block: Vec<PeerId>,
}

/// A peer scoring below this, with at least [`BLOCK_EVIDENCE`] pieces of bad data or invalid
/// messages, is disconnected and blocked.
pub const BLOCK_BELOW: f64 = 0.15;
/// See [`BLOCK_BELOW`].
pub const BLOCK_EVIDENCE: i64 = 5;
/// How long a misbehaving peer stays blocked, seconds.
pub const BLOCK_FOR: i64 = 3600;

/// The record hashes credited to one peer, and their order (oldest first) for forgetting.
type Credited = (HashSet<[u8; 32]>, std::collections::VecDeque<[u8; 32]>);

/// Record hashes remembered per peer for [`PeerBook::credit`].
const CREDIT_MEMORY: usize = 4096;

impl PeerBook {
    /// A book loaded from stored rows (all disconnected).
    pub fn from_rows(rows: Vec<PeerRow>) -> Self {
        let peers = rows
            .into_iter()
            .filter_map(|row| {
                let id = row.peer_id.parse::<PeerId>().ok()?;
                Some((
                    id,
                    Peer {
                        row,
                        connected: false,
                    },
                ))
            })
            .collect();
        Self {
            peers,
            dirty: HashSet::new(),
            credited: HashMap::new(),
            to_block: Vec::new(),
        }
    }

    fn entry(&mut self, peer: PeerId) -> &mut Peer {
        self.dirty.insert(peer);
        let t = now();
        self.peers.entry(peer).or_insert_with(|| Peer {
            row: PeerRow {
                peer_id: peer.to_string(),
                first_seen: t,
                last_seen: t,
                ..PeerRow::default()
            },
            connected: false,
        })
    }

    /// A connection opened.
    pub fn connected(&mut self, peer: PeerId, address: &Multiaddr, first: bool) {
        let p = self.entry(peer);
        p.connected = true;
        p.row.last_seen = now();
        if first {
            p.row.connections += 1;
        }
        // A connection's remote address is a placeholder until Identify reports the peer's
        // listen addresses (an inbound connection comes from an ephemeral port).
        if p.row.addresses.is_empty() {
            p.row.addresses.push(address.to_string());
        }
    }

    /// The last connection closed.
    pub fn disconnected(&mut self, peer: PeerId) {
        let p = self.entry(peer);
        p.connected = false;
        p.row.last_seen = now();
    }

    /// Identify arrived.
    pub fn identified(
        &mut self,
        peer: PeerId,
        agent: String,
        protocol_version: String,
        addresses: &[Multiaddr],
    ) {
        let p = self.entry(peer);
        p.row.agent = agent;
        p.row.protocol_version = protocol_version;
        if !addresses.is_empty() {
            p.row.addresses = addresses.iter().map(ToString::to_string).collect();
        }
        p.row.last_seen = now();
    }

    /// A ping round trip.
    pub fn ping(&mut self, peer: PeerId, rtt_ms: f64) {
        let p = self.entry(peer);
        p.row.ping_ms = Some(rtt_ms);
        p.row.last_seen = now();
    }

    /// Change `peer`'s row by `f`, in a `reputation` span with the event and the score before
    /// and after: at info for a penalty, at debug for a credit (there is one per piece
    /// delivered).
    fn change(
        &mut self,
        peer: PeerId,
        event: &'static str,
        penalty: bool,
        f: impl FnOnce(&mut PeerRow),
    ) {
        // A peer new to the book starts as `entry` makes it (not connected), so that the
        // score before is the one this event changes.
        self.entry(peer);
        let before = self.score_of_peer(&peer);
        f(&mut self.entry(peer).row);
        let after = self.score_of_peer(&peer);
        let _span = if penalty {
            tracing::info_span!("reputation", %peer, event, before, after).entered()
        } else {
            tracing::debug_span!("reputation", %peer, event, before, after).entered()
        };
    }

    /// The peer sent `n` valid records.
    pub fn valid(&mut self, peer: PeerId, n: i64) {
        self.change(peer, "valid_records", false, |r| r.valid_records += n);
    }

    /// Credit `peer` once for each record hash it has not been credited for yet (the last
    /// few thousand are remembered). Returns how many were credited.
    pub fn credit(&mut self, peer: PeerId, hashes: impl IntoIterator<Item = [u8; 32]>) -> i64 {
        let (seen, order) = self.credited.entry(peer).or_default();
        let mut n = 0;
        for h in hashes {
            if seen.insert(h) {
                order.push_back(h);
                if order.len() > CREDIT_MEMORY
                    && let Some(old) = order.pop_front()
                {
                    seen.remove(&old);
                }
                n += 1;
            }
        }
        if n > 0 {
            self.valid(peer, n);
        }
        n
    }

    /// The peer sent invalid data.
    pub fn invalid(&mut self, peer: PeerId) {
        self.change(peer, "invalid_message", true, |r| r.invalid_messages += 1);
        self.check_block(peer);
    }

    /// Block `peer` if it now scores below [`BLOCK_BELOW`] on enough evidence.
    fn check_block(&mut self, peer: PeerId) {
        let t = now();
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let evidence = p.row.invalid_messages + p.row.invalid_data;
        let score = p.score();
        if p.row.blocked_until <= t && evidence >= BLOCK_EVIDENCE && score < BLOCK_BELOW {
            p.row.blocked_until = t + BLOCK_FOR;
            let _span = tracing::info_span!(
                "reputation.block",
                %peer,
                score,
                evidence,
                until = p.row.blocked_until,
            )
            .entered();
            tracing::warn!(%peer, score, evidence, "blocking a peer that keeps sending invalid data");
            self.dirty.insert(peer);
            self.to_block.push(peer);
        }
    }

    /// Peers that crossed the blocking threshold since the last call.
    pub fn take_to_block(&mut self) -> Vec<PeerId> {
        std::mem::take(&mut self.to_block)
    }

    /// Peers blocked now, with when their block ends (Unix seconds).
    pub fn blocked(&self) -> Vec<(PeerId, i64)> {
        let t = now();
        self.peers
            .iter()
            .filter(|(_, p)| p.row.blocked_until > t)
            .map(|(id, p)| (*id, p.row.blocked_until))
            .collect()
    }

    /// End the blocks that ran out; returns those peers.
    pub fn expire_blocks(&mut self) -> Vec<PeerId> {
        let t = now();
        let expired: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.row.blocked_until != 0 && p.row.blocked_until <= t)
            .map(|(id, _)| *id)
            .collect();
        for id in &expired {
            self.entry(*id).row.blocked_until = 0;
        }
        expired
    }

    /// Lift `peer`'s block and forgive what it was blocked for (its invalid messages and
    /// invalid data), as the user asked. Returns whether it was blocked.
    pub fn unblock(&mut self, peer: PeerId) -> bool {
        let t = now();
        let Some(p) = self.peers.get_mut(&peer) else {
            return false;
        };
        let was = p.row.blocked_until > t;
        let _span = tracing::info_span!("reputation.unblock", %peer, reason = "operator", was_blocked = was).entered();
        p.row.blocked_until = 0;
        p.row.invalid_messages = 0;
        p.row.invalid_data = 0;
        self.dirty.insert(peer);
        was
    }

    /// The peer delivered `bytes` of an archive that verified, in `ms` milliseconds.
    pub fn delivered(&mut self, peer: PeerId, bytes: u64, ms: f64) {
        self.change(peer, "delivered", false, |r| {
            r.downloads_ok += 1;
            r.bytes_served = r.bytes_served.saturating_add(bytes as i64);
            r.response_ms = Some(match r.response_ms {
                Some(avg) => avg + RESPONSE_EWMA * (ms - avg),
                None => ms,
            });
            r.last_seen = now();
        });
    }

    /// A request to the peer failed, timed out or was refused.
    pub fn request_failed(&mut self, peer: PeerId) {
        self.change(peer, "request_failed", true, |r| r.downloads_failed += 1);
    }

    /// The peer served archive data (a piece or an outline) that failed verification.
    pub fn bad_data(&mut self, peer: PeerId) {
        self.change(peer, "invalid_data", true, |r| r.invalid_data += 1);
        self.check_block(peer);
    }

    /// The current score of `peer` (unknown peers: as a new connected peer).
    pub fn score_of_peer(&self, peer: &PeerId) -> f64 {
        match self.peers.get(peer) {
            Some(p) => p.score(),
            None => score(
                &PeerRow {
                    last_seen: now(),
                    ..PeerRow::default()
                },
                true,
                now(),
            ),
        }
    }

    /// One peer.
    pub fn get(&self, peer: &PeerId) -> Option<&Peer> {
        self.peers.get(peer)
    }

    /// Every peer.
    pub fn all(&self) -> impl Iterator<Item = (&PeerId, &Peer)> {
        self.peers.iter()
    }

    /// The score of a peer given by its text id; unknown peers count as neutral (0.5).
    pub fn score_of(&self, peer: &str) -> f64 {
        peer.parse::<PeerId>()
            .ok()
            .and_then(|p| self.peers.get(&p))
            .map_or(0.5, Peer::score)
    }

    /// Rows changed since the last call.
    pub fn take_dirty(&mut self) -> Vec<PeerRow> {
        let dirty = std::mem::take(&mut self.dirty);
        dirty
            .iter()
            .filter_map(|p| self.peers.get(p).map(|peer| peer.row.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_data_costs_reputation() {
        let t = now();
        let clean = PeerRow {
            last_seen: t,
            ping_ms: Some(1.0),
            valid_records: 5,
            ..PeerRow::default()
        };
        let dirty = PeerRow {
            invalid_messages: 1,
            ..clean.clone()
        };
        let good = score(&clean, true, t);
        let bad = score(&dirty, true, t);
        assert!(good > 0.95, "{good}");
        assert!(bad < good - 0.1, "{bad} vs {good}");
        let served_bad = score(
            &PeerRow {
                invalid_data: 1,
                downloads_ok: 10,
                ..clean.clone()
            },
            true,
            t,
        );
        assert!(served_bad < good - 0.25, "{served_bad} vs {good}");
        let twice = score(
            &PeerRow {
                invalid_data: 2,
                ..clean.clone()
            },
            true,
            t,
        );
        assert!(
            twice < crate::config::DEFAULT_MIN_PROVIDER_SCORE + 0.3,
            "{twice}"
        );
        let worse = score(
            &PeerRow {
                invalid_messages: 10,
                ..clean
            },
            true,
            t,
        );
        assert!(worse < 0.5, "{worse}");
    }
}
