//! Connections in the event loop: dialing (with the checks on the address), blocking, the
//! swarm's connection and listener events, Identify (which feeds peers' addresses to
//! Kademlia), ping, and the node's status and peer list.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId, identify, ping};

use super::EventLoop;
use crate::behaviour::BehaviourEvent;
use crate::error::Error;
use crate::event::Event;
use crate::policy::{peer_id_of, without_peer_id};
use crate::protocol::KAD_PROTOCOL;
use crate::status::{PeerInfo, Status};

/// Listen addresses of a peer taken from Identify, in all: into the routing table, however
/// many messages it sends, and into `advertised`.
const MAX_ADVERTISED: usize = 8;

/// How long a routing-table peer must have been unreachable before it leaves.
const UNREACHABLE_FOR: Duration = Duration::from_secs(60);

/// Peers tracked as unreachable before the oldest are forgotten.
const MAX_UNREACHABLE: usize = 4096;

/// How often connections are trimmed.
pub(super) const TRIM_EVERY: Duration = Duration::from_secs(5);

impl EventLoop {
    // ---- commands ----

    pub(super) fn dial(&mut self, addr: Multiaddr) -> Result<PeerId, Error> {
        self.dial_as(addr, true)
    }

    /// Dial `addr`: as the operator's choice (`operator`: it joins the operator's addresses
    /// and the routing table), or as an address a peer once advertised (held to the learned
    /// rules of the policy, and added nowhere).
    fn dial_as(&mut self, addr: Multiaddr, operator: bool) -> Result<PeerId, Error> {
        let Some(peer) = peer_id_of(&addr) else {
            return Err(Error::MissingPeerId(addr));
        };
        let allowed = if operator {
            self.policy.allows(&addr)
        } else {
            self.policy.allows_learned(&addr)
        };
        if !allowed {
            return Err(Error::AddressNotAllowed {
                addr,
                policy: self.policy,
            });
        }
        if peer == *self.swarm.local_peer_id() {
            return Err(Error::DialSelf(addr));
        }
        let mut transport_addr = addr.clone();
        transport_addr.pop();
        if operator {
            // The operator asked for this address: it may be anywhere in the policy's range.
            if let Ok(mut set) = self.operator.lock() {
                set.insert(transport_addr.clone());
            }
            self.operator_peers.insert(peer);
            self.swarm
                .behaviour_mut()
                .kad
                .add_address(&peer, transport_addr.clone());
        }
        // Already connected (or dialling): nothing to do, and not an error for the caller.
        if self.swarm.is_connected(&peer) {
            return Ok(peer);
        }
        self.swarm
            .dial(
                DialOpts::peer_id(peer)
                    .addresses(vec![transport_addr])
                    .build(),
            )
            .map_err(|e| Error::Dial(e.into()))?;
        Ok(peer)
    }

    /// Dial `addr` (as the operator's, or as a learned address) and answer once a connection
    /// to its peer is open, it failed, or `timeout` passed.
    pub(super) fn connect(
        &mut self,
        addr: Multiaddr,
        learned: bool,
        timeout: std::time::Duration,
        reply: tokio::sync::oneshot::Sender<Result<PeerId, Error>>,
    ) {
        let peer = match self.dial_as(addr.clone(), !learned) {
            Ok(p) => p,
            // A dial to the peer is under way already (Kademlia's, another caller's): wait
            // for its outcome like any other.
            Err(Error::Dial(e))
                if matches!(*e, libp2p::swarm::DialError::DialPeerConditionFalse(_)) =>
            {
                match peer_id_of(&addr) {
                    Some(p) => p,
                    None => {
                        let _ = reply.send(Err(Error::Dial(e)));
                        return;
                    }
                }
            }
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        if self.swarm.is_connected(&peer) {
            let _ = reply.send(Ok(peer));
            return;
        }
        self.pending_connects
            .entry(peer)
            .or_default()
            .push((reply, std::time::Instant::now() + timeout));
    }

    /// Answer the callers whose connection did not come in time.
    pub(super) fn expire_connects(&mut self, now: std::time::Instant) {
        for (peer, waiting) in self.pending_connects.iter_mut() {
            for (reply, _) in waiting.extract_if(.., |(_, deadline)| *deadline <= now) {
                let _ = reply.send(Err(Error::Connect {
                    peer: *peer,
                    reason: "no connection before the deadline".into(),
                }));
            }
        }
        self.pending_connects.retain(|_, w| !w.is_empty());
    }

    fn answer_connects(&mut self, peer: PeerId, result: Result<(), String>) {
        for (reply, _) in self.pending_connects.remove(&peer).unwrap_or_default() {
            let _ = reply.send(match &result {
                Ok(()) => Ok(peer),
                Err(reason) => Err(Error::Connect {
                    peer,
                    reason: reason.clone(),
                }),
            });
        }
    }

    pub(super) fn block(&mut self, peer: PeerId) {
        self.swarm.behaviour_mut().blocked.block_peer(peer);
        self.swarm.behaviour_mut().kad.remove_peer(&peer);
    }

    /// Peers in the Kademlia routing table.
    pub(super) fn routing_table_size(&mut self) -> usize {
        self.swarm
            .behaviour_mut()
            .kad
            .kbuckets()
            .map(|b| b.num_entries())
            .sum()
    }

    /// Every peer in the routing table, with the addresses the table holds for it.
    pub(super) fn routing_table(&mut self) -> Vec<PeerInfo> {
        let mut table = Vec::new();
        for bucket in self.swarm.behaviour_mut().kad.kbuckets() {
            for entry in bucket.iter() {
                table.push(PeerInfo {
                    peer_id: *entry.node.key.preimage(),
                    addresses: entry.node.value.iter().cloned().collect(),
                });
            }
        }
        table
    }

    pub(super) fn status(&mut self) -> Status {
        let routing_table_size = self.routing_table_size();
        let store = self.swarm.behaviour_mut().kad.store_mut().stats();
        Status {
            peer_id: *self.swarm.local_peer_id(),
            listen_addrs: self.swarm.listeners().cloned().collect(),
            connected_peers: self.connections.len(),
            routing_table_size,
            refused_dials: self.refused_dials.load(Ordering::Relaxed),
            dropped_events: self.dropped_events,
            refused_provider_records: self.refused_provider_records,
            full_provider_records: self.full_provider_records,
            provider_records: store.provider_records,
            max_provider_records: store.max_provider_records,
            provided_keys: store.provided,
            policy: self.policy,
            uptime: self.started.elapsed(),
        }
    }

    pub(super) fn peers(&self) -> Vec<PeerInfo> {
        self.connections
            .iter()
            .map(|(peer, addrs)| PeerInfo {
                peer_id: *peer,
                addresses: addrs.clone(),
            })
            .collect()
    }

    // ---- trimming ----

    /// Note that `peer` is of use now.
    pub(super) fn touch(&mut self, peer: PeerId) {
        if self.connections.contains_key(&peer) {
            self.last_used.insert(peer, Instant::now());
        }
    }

    /// Past [`Config::max_peers`](crate::Config::max_peers) connected peers, disconnect the
    /// least recently used down to two thirds of it. Never let go: peers a request or a connect
    /// is waiting on, peers at an address the operator asked for, and peers used within the
    /// grace period (`Config::trim_grace`). Peers in a gossip mesh (announcements travel
    /// through them) go last, and only as far as `max_peers`; gossipsub then grafts others.
    /// Returns the peers let go.
    pub(super) fn trim(&mut self, now: Instant) -> Vec<PeerId> {
        let connected = self.connections.len();
        if connected <= self.max_peers {
            return Vec::new();
        }
        let keep_at = (self.max_peers * 2 / 3).max(1);
        let mesh: HashSet<PeerId> = self
            .swarm
            .behaviour()
            .gossipsub
            .all_mesh_peers()
            .copied()
            .collect();
        let mut protected: HashSet<PeerId> = HashSet::new();
        protected.extend(self.pending_sync.values().map(|(p, _, _)| *p));
        protected.extend(self.pending_chunks.values().map(|(p, _, _)| *p));
        protected.extend(self.pending_connects.keys().copied());
        let operator = peerpack_core::sync::lock(&self.operator).clone();
        let mut candidates: Vec<(Instant, PeerId)> = self
            .connections
            .iter()
            .filter(|(peer, addrs)| {
                !protected.contains(peer)
                    && !addrs.iter().any(|a| operator.contains(&without_peer_id(a)))
            })
            .map(|(peer, _)| {
                let used = self.last_used.get(peer).copied().unwrap_or(self.started);
                (used, *peer)
            })
            .filter(|(used, _)| now.duration_since(*used) >= self.trim_grace)
            .collect();
        // Least recently used first; mesh peers after every other.
        candidates.sort_by_key(|(used, peer)| (mesh.contains(peer), *used));
        let mut gone = Vec::new();
        for (_, peer) in candidates {
            let left = connected - gone.len();
            let in_mesh = mesh.contains(&peer);
            if left <= keep_at || (in_mesh && left <= self.max_peers) {
                break;
            }
            gone.push(peer);
        }
        if !gone.is_empty() {
            let _span = tracing::info_span!(
                "net.trim",
                connected,
                max_peers = self.max_peers,
                disconnected = gone.len(),
                protected = protected.len(),
                mesh = mesh.len(),
            )
            .entered();
            tracing::debug!(
                connected,
                disconnecting = gone.len(),
                "too many peers connected"
            );
            for peer in &gone {
                let _ = self.swarm.disconnect_peer_id(*peer);
            }
            self.metrics.trimmed(gone.len() as u64);
        }
        gone
    }

    // ---- events ----

    /// The swarm's own events: connections opening and closing, listeners.
    pub(super) fn on_swarm(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                established_in,
                ..
            } => {
                let address = endpoint.get_remote_address().clone();
                let _span = tracing::info_span!(
                    "net.connection.opened",
                    peer = %peer_id,
                    %address,
                    direction = if endpoint.is_dialer() { "outbound" } else { "inbound" },
                    connections = num_established.get(),
                    handshake_ms = established_in.as_secs_f64() * 1e3,
                )
                .entered();
                tracing::debug!(peer = %peer_id, %address, "connection opened");
                self.opened.insert(connection_id, std::time::Instant::now());
                self.last_used.insert(peer_id, Instant::now());
                self.unreachable.remove(&peer_id);
                self.metrics.connection("opened");
                self.answer_connects(peer_id, Ok(()));
                self.connections
                    .entry(peer_id)
                    .or_default()
                    .push(address.clone());
                self.emit(Event::Connected {
                    peer: peer_id,
                    address,
                    first: num_established.get() == 1,
                });
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                cause,
            } => {
                let lifetime = self.opened.remove(&connection_id).map(|t| t.elapsed());
                let _span = tracing::info_span!(
                    "net.connection.closed",
                    peer = %peer_id,
                    address = %endpoint.get_remote_address(),
                    connections = num_established,
                    lifetime_s = lifetime.map(|d| d.as_secs_f64()),
                    cause = cause.as_ref().map(tracing::field::display),
                )
                .entered();
                tracing::debug!(peer = %peer_id, ?cause, "connection closed");
                self.metrics.connection("closed");
                if num_established == 0 {
                    self.connections.remove(&peer_id);
                    self.last_used.remove(&peer_id);
                    self.advertised.remove(&peer_id);
                    self.emit(Event::Disconnected { peer: peer_id });
                } else if let Some(addrs) = self.connections.get_mut(&peer_id) {
                    addrs.retain(|a| a != endpoint.get_remote_address());
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(?peer_id, %error, "outgoing connection failed");
                if let Some(peer) = peer_id
                    && !self.swarm.is_connected(&peer)
                {
                    self.answer_connects(peer, Err(error.to_string()));
                    self.forget_if_unreachable(&peer, &error);
                }
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                tracing::debug!(%error, "incoming connection failed");
            }
            SwarmEvent::NewListenAddr { address, .. } => tracing::info!(%address, "listening"),
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                tracing::info!(%address, "listen address expired")
            }
            SwarmEvent::ListenerError { error, .. } => tracing::warn!(%error, "listener error"),
            SwarmEvent::ListenerClosed {
                addresses, reason, ..
            } => {
                tracing::warn!(?addresses, ?reason, "listener closed");
            }
            other => tracing::trace!(?other, "swarm event"),
        }
    }

    pub(super) fn on_identify(&mut self, event: identify::Event) {
        match event {
            identify::Event::Received { peer_id, info, .. } => {
                let peerpack = info.protocols.iter().any(|p| p.as_ref() == KAD_PROTOCOL);
                let addresses: Vec<Multiaddr> = info
                    .listen_addrs
                    .into_iter()
                    .filter(|a| self.policy.allows_learned(a))
                    .collect();
                // What a connected peer listens on fills its provider records that arrive
                // without addresses (`on_add_provider`).
                if peerpack && self.connections.contains_key(&peer_id) {
                    let mut listed: Vec<Multiaddr> = addresses
                        .iter()
                        .take(MAX_ADVERTISED)
                        .map(without_peer_id)
                        .collect();
                    listed.sort();
                    listed.dedup();
                    self.advertised.insert(peer_id, listed);
                }
                // A peer new to a full bucket is left out: adding it would make Kademlia dial
                // the bucket's oldest disconnected entry to see whether it is alive, and with
                // connections trimmed, every inbound connection would open another; at 200
                // nodes that chain kept 100 handshakes a second going in a network at rest.
                // At most MAX_ADVERTISED addresses per peer in all, however many Identify
                // messages (pushes, the periodic one) it sends with new ones.
                if peerpack {
                    let entry = self.routing_entry(&peer_id);
                    if entry.has_room() {
                        let room = MAX_ADVERTISED.saturating_sub(entry.addresses.len());
                        for addr in addresses.iter().take(room) {
                            self.swarm
                                .behaviour_mut()
                                .kad
                                .add_address(&peer_id, without_peer_id(addr));
                        }
                    }
                }
                self.emit(Event::Identified {
                    peer: peer_id,
                    agent: info.agent_version,
                    protocol_version: info.protocol_version,
                    addresses,
                    peerpack,
                });
            }
            identify::Event::Error { peer_id, error, .. } => {
                tracing::debug!(%peer_id, %error, "identify failed");
            }
            identify::Event::Sent { .. } | identify::Event::Pushed { .. } => {}
        }
    }

    /// A routing-table peer that cannot be reached makes room for one that can (Kademlia keeps
    /// its last address otherwise, and with `BucketInserts::Manual` a full bucket takes
    /// no newcomer): it leaves when a dial failed at every address the routing table holds for
    /// it, twice, [`UNREACHABLE_FOR`] apart, and only from a full bucket. So a moment of
    /// overload, or this node's own network going down for a while, does not empty the table.
    /// A dial to addresses someone else named for the peer (a hostile answer can name any)
    /// says nothing of it; nor do dials this node refused itself (outside the policy). Peers
    /// the operator dialled never leave.
    fn forget_if_unreachable(&mut self, peer: &PeerId, error: &libp2p::swarm::DialError) {
        use libp2p::TransportError;
        use libp2p::swarm::DialError;
        let failed: Vec<Multiaddr> = match error {
            DialError::Transport(errors) => errors
                .iter()
                .filter(|(_, e)| matches!(e, TransportError::Other(_)))
                .map(|(a, _)| without_peer_id(a))
                .collect(),
            DialError::WrongPeerId { address, .. } => vec![without_peer_id(address)],
            _ => return,
        };
        if failed.is_empty() || self.operator_peers.contains(peer) {
            return;
        }
        // Kademlia has already dropped the failed addresses but the last.
        let entry = self.routing_entry(peer);
        let all_failed = entry
            .addresses
            .iter()
            .all(|a| failed.contains(&without_peer_id(a)));
        if entry.addresses.is_empty() || !all_failed {
            return;
        }
        let now = Instant::now();
        let first = self.unreachable.entry(*peer).or_insert(now);
        // A first failure long ago, with no dial since, starts the count again.
        if now.duration_since(*first) > UNREACHABLE_FOR * 10 {
            *first = now;
        }
        if now.duration_since(*first) < UNREACHABLE_FOR {
            return;
        }
        if entry.full {
            tracing::debug!(%peer, "left the routing table: unreachable at every address it had");
            self.swarm.behaviour_mut().kad.remove_peer(peer);
            self.unreachable.remove(peer);
        }
        if self.unreachable.len() > MAX_UNREACHABLE {
            self.unreachable
                .retain(|_, t| now.duration_since(*t) < UNREACHABLE_FOR * 10);
        }
    }

    /// Where `peer` stands in Kademlia's routing table, from the one bucket that can hold it.
    pub(super) fn routing_entry(&mut self, peer: &PeerId) -> RoutingEntry {
        let Some(bucket) = self.swarm.behaviour_mut().kad.kbucket(*peer) else {
            // This node's own id: no bucket holds it.
            return RoutingEntry {
                present: false,
                full: true,
                addresses: Vec::new(),
            };
        };
        let full = bucket.num_entries() >= libp2p::kad::K_VALUE.get();
        match bucket.iter().find(|e| e.node.key.preimage() == peer) {
            Some(e) => RoutingEntry {
                present: true,
                full,
                addresses: e.node.value.iter().cloned().collect(),
            },
            None => RoutingEntry {
                present: false,
                full,
                addresses: Vec::new(),
            },
        }
    }

    pub(super) fn on_ping(&mut self, event: ping::Event) {
        match event.result {
            Ok(rtt) => self.emit(Event::Ping {
                peer: event.peer,
                rtt,
            }),
            Err(e) => tracing::debug!(peer = %event.peer, error = %e, "ping failed"),
        }
    }
}

/// A peer's place in the routing table ([`EventLoop::routing_entry`]).
pub(super) struct RoutingEntry {
    /// The peer is in the table.
    pub(super) present: bool,
    /// The peer's bucket holds K entries (also true for this node's own id, which no bucket
    /// holds).
    pub(super) full: bool,
    /// The addresses the table holds for the peer; empty when it is not in it.
    pub(super) addresses: Vec<Multiaddr>,
}

impl RoutingEntry {
    /// The table would take the peer without evicting anyone: it is in it already, or its
    /// bucket has room.
    pub(super) fn has_room(&self) -> bool {
        self.present || !self.full
    }
}
