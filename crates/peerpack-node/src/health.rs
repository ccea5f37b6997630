//! Staying connected: the bootstrap peers are dialled until they answer, with backoff, and
//! while the node has no peer at all it redials the peers it knew, best first. `status`
//! shows each bootstrap peer's state.
//!
//! A bootstrap peer that answered once is dialled again only while the node has fewer than
//! [`FEW_PEERS`] peers. A busy bootstrap peer trims the connections it does not need (every
//! node of a network may name the same one), and redialling it each time would make each
//! trimmed node come straight back: a churn of handshakes, identifies and catalogue syncs
//! that kept two cores busy in a network of a hundred idle nodes.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use peerpack_api::BootstrapView;
use peerpack_core::sync::lock;
use peerpack_net::p2p::{Multiaddr, PeerId};

use crate::context::Context;

/// How long one dial may take before it counts as failed.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// The first wait after a failed dial; it doubles with each failure.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two dials of one address.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Below this many connected peers, bootstrap peers already reached are dialled again.
pub const FEW_PEERS: usize = 4;
/// Known peers redialled at once while the node has no peer.
const REDIAL_AT_ONCE: usize = 8;

/// The wait after `failures` failed dials in a row.
fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

/// One address the node keeps dialling until it answers.
#[derive(Debug, Clone)]
struct Target {
    addr: Multiaddr,
    peer: PeerId,
    /// Failed dials since the last success.
    failures: u32,
    last_error: Option<String>,
    next_try: Instant,
    dialling: bool,
    /// It answered once: dialled again only while the node has few peers.
    reached: bool,
}

/// The bootstrap peers, and the backoff of known peers being redialled.
#[derive(Debug, Default)]
pub struct Health {
    bootstrap: Mutex<Vec<Target>>,
    /// Known peers: failures in a row and when to try next.
    redial: Mutex<HashMap<PeerId, (u32, Instant)>>,
}

impl Health {
    /// Keep dialling `addrs` (each with `/p2p/<id>`) until each answers.
    pub fn new(addrs: &[Multiaddr]) -> Self {
        let now = Instant::now();
        let bootstrap = addrs
            .iter()
            .filter_map(|a| {
                Some(Target {
                    peer: peerpack_net::peer_id_of(a)?,
                    addr: a.clone(),
                    failures: 0,
                    last_error: None,
                    next_try: now,
                    dialling: false,
                    reached: false,
                })
            })
            .collect();
        Self {
            bootstrap: Mutex::new(bootstrap),
            redial: Mutex::default(),
        }
    }
}

impl Context {
    /// Each bootstrap peer's state, for `status`.
    pub fn bootstrap_views(&self) -> Vec<BootstrapView> {
        let now = Instant::now();
        let few = self.few_peers();
        lock(&self.health.bootstrap)
            .iter()
            .map(|t| {
                let connected = self.is_connected(&t.peer);
                let due = !connected && !t.dialling && (!t.reached || few);
                BootstrapView {
                    address: t.addr.to_string(),
                    connected,
                    failures: t.failures,
                    last_error: t.last_error.clone(),
                    retry_in_s: due.then(|| t.next_try.saturating_duration_since(now).as_secs()),
                }
            })
            .collect()
    }

    /// Whether fewer than [`FEW_PEERS`] peers are connected.
    fn few_peers(&self) -> bool {
        self.peers
            .with(|b| b.all().filter(|(_, p)| p.connected).count() < FEW_PEERS)
    }

    fn is_connected(&self, peer: &PeerId) -> bool {
        self.peers
            .with(|b| b.get(peer).is_some_and(|p| p.connected))
    }
}

/// The health task: every second, dial the bootstrap peers that are due, and, while no peer
/// is connected, the known peers that are due.
pub async fn task(inner: Arc<Context>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            () = inner.supervisor.cancelled() => break,
            _ = tick.tick() => {
                dial_bootstrap(&inner);
                redial_known(&inner);
            }
        }
    }
}

fn dial_bootstrap(inner: &Arc<Context>) {
    let now = Instant::now();
    let few = inner.few_peers();
    let due: Vec<(usize, Multiaddr)> = {
        let mut targets = lock(&inner.health.bootstrap);
        targets
            .iter_mut()
            .enumerate()
            .filter(|(_, t)| {
                !t.dialling
                    && t.next_try <= now
                    && (!t.reached || few)
                    && !inner.is_connected(&t.peer)
            })
            .map(|(i, t)| {
                t.dialling = true;
                (i, t.addr.clone())
            })
            .collect()
    };
    for (i, addr) in due {
        let inner2 = inner.clone();
        inner.supervisor.spawn(async move {
            let result = inner2.net.connect(addr.clone(), DIAL_TIMEOUT).await;
            let mut targets = lock(&inner2.health.bootstrap);
            let Some(t) = targets.get_mut(i) else {
                return;
            };
            t.dialling = false;
            match result {
                Ok(_) => {
                    if t.failures > 0 {
                        tracing::info!(%addr, failures = t.failures, "reached the bootstrap peer");
                    }
                    t.failures = 0;
                    t.last_error = None;
                    t.reached = true;
                }
                Err(e) => {
                    t.failures += 1;
                    let wait = backoff(t.failures);
                    t.next_try = Instant::now() + wait;
                    t.last_error = Some(e.to_string());
                    tracing::warn!(
                        %addr,
                        error = %e,
                        failures = t.failures,
                        retry_in_s = wait.as_secs(),
                        "cannot reach a bootstrap peer; retrying"
                    );
                }
            }
        });
    }
}

/// While no peer is connected, redial the known peers (not blocked, with an address), best
/// score first, each on its own backoff.
fn redial_known(inner: &Arc<Context>) {
    let now = Instant::now();
    let candidates: Vec<(PeerId, Vec<Multiaddr>)> = inner.peers.with(|b| {
        if b.all().any(|(_, p)| p.connected) {
            return Vec::new();
        }
        let blocked: Vec<PeerId> = b.blocked().into_iter().map(|(p, _)| p).collect();
        let mut known: Vec<(f64, PeerId, Vec<Multiaddr>)> = b
            .all()
            .filter(|(id, _)| !blocked.contains(id))
            .filter_map(|(id, p)| {
                let addrs: Vec<Multiaddr> = p
                    .row
                    .addresses
                    .iter()
                    .filter_map(|a| a.parse::<Multiaddr>().ok())
                    .map(|a| {
                        if peerpack_net::peer_id_of(&a).is_some() {
                            a
                        } else {
                            a.with(peerpack_net::p2p::multiaddr::Protocol::P2p(*id))
                        }
                    })
                    .collect();
                (!addrs.is_empty()).then(|| (p.score(), *id, addrs))
            })
            .collect();
        known.sort_by(|a, b| b.0.total_cmp(&a.0));
        known.into_iter().map(|(_, id, a)| (id, a)).collect()
    });
    if candidates.is_empty() {
        // Connected (or nobody to ask): the next outage starts its backoff afresh.
        lock(&inner.health.redial).clear();
        return;
    }
    let due: Vec<(PeerId, Vec<Multiaddr>)> = {
        let mut redial = lock(&inner.health.redial);
        let due: Vec<(PeerId, Vec<Multiaddr>)> = candidates
            .into_iter()
            .filter(|(id, _)| redial.get(id).is_none_or(|(_, next)| *next <= now))
            .take(REDIAL_AT_ONCE)
            .collect();
        for (id, _) in &due {
            // Marked as tried now; the outcome sets the real next try.
            let e = redial.entry(*id).or_insert((0, now));
            e.1 = now + DIAL_TIMEOUT;
        }
        due
    };
    for (peer, addrs) in due {
        let inner2 = inner.clone();
        inner.supervisor.spawn(async move {
            let mut ok = false;
            for addr in addrs {
                if inner2.net.reconnect(addr, DIAL_TIMEOUT).await.is_ok() {
                    ok = true;
                    break;
                }
            }
            let mut redial = lock(&inner2.health.redial);
            let e = redial.entry(peer).or_insert((0, Instant::now()));
            if ok {
                tracing::info!(%peer, "reconnected to a known peer");
                *e = (0, Instant::now());
            } else {
                e.0 += 1;
                e.1 = Instant::now() + backoff(e.0);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(6), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
