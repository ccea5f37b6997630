//! peerpack's network layer: the libp2p node as an actor.
//!
//! One task (`actor::EventLoop`) owns the Swarm; everyone else holds a cheap, cloneable
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
//! - `start`: [`Config`] and [`spawn`]; `status`: [`Status`] and [`PeerInfo`].

pub mod actor;
pub mod behaviour;
pub mod blob;
pub mod dht_store;
mod error;
mod event;
mod handle;
pub mod metrics;
mod pending;
pub mod policy;
pub mod protocol;
mod start;
mod status;
pub mod sync;
pub mod transport;

pub use dht_store::{DhtBacking, DhtStoreStats, MemoryBacking, StoredProvider};
pub use error::{DhtError, Error, ListenError, RequestError, SetupError};
pub use event::Event;
pub use handle::{Command, Found, NetHandle};
pub use libp2p::gossipsub::{MessageAcceptance, MessageId};
pub use libp2p::request_response::ResponseChannel;
pub use libp2p::{self as p2p};
pub use policy::{AddressPolicy, peer_id_of};
pub use start::{Backing, Config, DEFAULT_MAX_PEERS, Spawned, spawn};
pub use status::{PeerInfo, Status};
