//! peerpack's network layer: the libp2p node as an actor.
//!
//! One task ([`actor::EventLoop`]) owns the Swarm; everyone else holds a cheap, cloneable
//! [`NetHandle`] and sends commands with `oneshot` replies. What needs the store (validating
//! gossip, DHT writes and sync) goes out to the node as [`Event`]s. This crate depends only on
//! `peerpack-core`: it knows records and content ids, not SQL.
//!
//! # Layout
//! - [`protocol`]: protocol identifiers and DHT key formats every peer agrees on.
//! - [`policy`]: which addresses a node may dial ([`AddressPolicy`]).
//! - [`transport`]: the transport wrapper that enforces the policy on every dial.
//! - [`behaviour`]: Kademlia, Gossipsub, Identify, ping, sync and connection limits.
//! - [`sync`]: the catalogue sync messages.
//! - [`blob`]: the blob exchange messages (ranged chunks of archives).
//! - `handle`: [`NetHandle`], the [`Command`]s it sends and [`Found`].
//! - `event`: the [`Event`]s the node receives.
//! - [`actor`]: the event loop, with one module per protocol family (Kademlia, Gossipsub,
//!   request-response, connections); `pending` holds its table of pending requests.
//! - `error`: [`Error`] and its typed causes.

pub mod actor;
pub mod behaviour;
pub mod blob;
mod error;
mod event;
mod handle;
mod pending;
pub mod policy;
pub mod protocol;
pub mod sync;
pub mod transport;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use futures::StreamExt;
use libp2p::core::upgrade::Version;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Transport, identity, noise, tcp, yamux};
use tokio::sync::mpsc;

pub use error::{DhtError, Error, ListenError, RequestError, SetupError};
pub use event::Event;
pub use handle::{Command, Found, NetHandle};
pub use libp2p::gossipsub::{MessageAcceptance, MessageId};
pub use libp2p::request_response::ResponseChannel;
pub use libp2p::{self as p2p};
pub use policy::AddressPolicy;

/// How long opening a connection (TCP, Noise and Yamux) may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// The peer id an address ends with (`.../p2p/<peer id>`), if its last component is one.
pub fn peer_id_of(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Some(peer),
        _ => None,
    }
}

/// Network configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The node's identity.
    pub keypair: identity::Keypair,
    /// Addresses to listen on (tests use `/ip4/127.0.0.1/tcp/0`).
    pub listen: Vec<Multiaddr>,
    /// Address policy; `None` derives it from `listen` ([`AddressPolicy::default_for`]).
    pub policy: Option<AddressPolicy>,
    /// Addresses to advertise besides the listen addresses (e.g. a public address behind NAT).
    pub external_addrs: Vec<Multiaddr>,
    /// Agent version announced through Identify.
    pub agent_version: String,
    /// Kademlia query timeout.
    pub query_timeout: Duration,
    /// Idle connections are closed after this long.
    pub idle_timeout: Duration,
    /// Most established connections.
    pub max_connections: u32,
}

impl Config {
    /// Defaults for `keypair` listening on `listen`.
    pub fn new(keypair: identity::Keypair, listen: Vec<Multiaddr>) -> Self {
        Self {
            keypair,
            listen,
            policy: None,
            external_addrs: Vec::new(),
            agent_version: format!("peerpack/{}", env!("CARGO_PKG_VERSION")),
            query_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
            max_connections: 512,
        }
    }
}

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
    /// The address policy.
    pub policy: AddressPolicy,
    /// Time since start.
    pub uptime: Duration,
}

/// A connected peer.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// Its id.
    pub peer_id: PeerId,
    /// Remote addresses of its open connections.
    pub addresses: Vec<Multiaddr>,
}

/// What [`spawn`] returns.
pub struct Spawned {
    /// Handle to the event loop.
    pub handle: NetHandle,
    /// Events for the node.
    pub events: mpsc::Receiver<Event>,
    /// Addresses the node listens on, each ending in `/p2p/<id>`.
    pub listen_addrs: Vec<Multiaddr>,
    /// The policy in force.
    pub policy: AddressPolicy,
}

/// Build the swarm, start listening, wait until every listener has an address, and spawn the
/// event loop on the current tokio runtime.
pub async fn spawn(config: Config) -> Result<Spawned, Error> {
    let policy = config
        .policy
        .unwrap_or_else(|| AddressPolicy::default_for(&config.listen));
    let refused = Arc::new(AtomicU64::new(0));
    let settings = behaviour::Settings {
        query_timeout: config.query_timeout,
        max_connections: config.max_connections,
        agent_version: config.agent_version.clone(),
    };
    let refused_for_transport = refused.clone();
    let operator = transport::OperatorAddrs::default();
    let operator_for_transport = operator.clone();
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_other_transport(move |key| {
            let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                transport::Filtered::new(
                    tcp,
                    policy,
                    refused_for_transport,
                    operator_for_transport,
                )
                .upgrade(Version::V1)
                .authenticate(noise::Config::new(key)?)
                .multiplex(yamux::Config::default())
                .timeout(CONNECT_TIMEOUT),
            )
        })
        .map_err(|e| Error::Setup(SetupError::Transport(Arc::new(e))))?
        .with_behaviour(|key| {
            behaviour::Behaviour::new(key, &settings)
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.into() })
        })
        .map_err(|e| Error::Setup(SetupError::Behaviour(Arc::new(e))))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
        .build();

    for addr in &config.listen {
        swarm.listen_on(addr.clone()).map_err(|e| Error::Listen {
            addr: addr.clone(),
            reason: ListenError::Transport(Arc::new(e)),
        })?;
    }
    for addr in &config.external_addrs {
        swarm.add_external_address(addr.clone());
    }
    let peer_id = *swarm.local_peer_id();
    let mut listen_addrs = Vec::new();
    let wait = async {
        while listen_addrs.len() < config.listen.len() {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => {
                    listen_addrs.push(address.with_p2p(peer_id).unwrap_or_else(|a| a));
                }
                SwarmEvent::ListenerClosed {
                    addresses, reason, ..
                } => {
                    return Err(Error::Listen {
                        addr: addresses.first().cloned().unwrap_or_else(Multiaddr::empty),
                        reason: ListenError::Closed(reason.err().map(Arc::new)),
                    });
                }
                SwarmEvent::ListenerError { error, .. } => {
                    return Err(Error::Listen {
                        addr: Multiaddr::empty(),
                        reason: ListenError::Listener(Arc::new(error)),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .map_err(|_| Error::Setup(SetupError::NoListenAddress))??;

    let (cmd_tx, cmd_rx) = mpsc::channel(handle::COMMAND_CAPACITY);
    let (ev_tx, ev_rx) = mpsc::channel(handle::EVENT_CAPACITY);
    let event_loop = actor::EventLoop::new(
        swarm,
        cmd_rx,
        ev_tx,
        policy,
        refused,
        operator,
        config.query_timeout,
    );
    tokio::spawn(event_loop.run());
    Ok(Spawned {
        handle: NetHandle::new(cmd_tx, peer_id),
        events: ev_rx,
        listen_addrs,
        policy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_id_of_reads_only_the_last_component() {
        let peer = PeerId::random();
        let bare: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        assert_eq!(peer_id_of(&bare), None);
        let full = bare.clone().with(Protocol::P2p(peer));
        assert_eq!(peer_id_of(&full), Some(peer));
        // A peer id followed by anything else is not the address's peer id.
        let relayed = full.with(Protocol::P2pCircuit);
        assert_eq!(peer_id_of(&relayed), None);
        assert_eq!(peer_id_of(&Multiaddr::empty()), None);
    }
}
