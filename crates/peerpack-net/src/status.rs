//! What the network reports about itself: [`Status`] and the connected peers ([`PeerInfo`]).

use std::time::Duration;

use libp2p::{Multiaddr, PeerId};

use crate::policy::AddressPolicy;

/// A snapshot of the network state.
#[derive(Debug, Clone)]
pub struct Status {
    /// This node's peer id.
    pub peer_id: PeerId,
    /// Addresses it listens on.
    pub listen_addrs: Vec<Multiaddr>,
    /// Peers with at least one connection.
    pub connected_peers: usize,
    /// Entries in the Kademlia routing table.
    pub routing_table_size: usize,
    /// Dials refused by the address policy.
    pub refused_dials: u64,
    /// Events dropped because the node was not keeping up.
    pub dropped_events: u64,
    /// Inbound provider records refused because their peer was over its quota.
    pub refused_provider_records: u64,
    /// Inbound provider records refused because the store was full: it held its most in all
    /// ([`Config::max_provider_records`](crate::Config::max_provider_records)) or for the key.
    pub full_provider_records: u64,
    /// Provider records from other peers held.
    pub provider_records: u64,
    /// Most provider records from other peers kept.
    pub max_provider_records: u64,
    /// Archives this node provides.
    pub provided_keys: u64,
    /// The address policy.
    pub policy: AddressPolicy,
    /// Time since start.
    pub uptime: Duration,
}

/// A peer and its addresses: a connected peer ([`crate::NetHandle::peers`]) with the remote
/// addresses of its open connections, or a routing-table peer
/// ([`crate::NetHandle::routing_table`]) with the addresses the table holds for it.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// Its id.
    pub peer_id: PeerId,
    /// Its addresses, as the method that answered says.
    pub addresses: Vec<Multiaddr>,
}
