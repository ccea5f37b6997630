//! The node's context: the parts of a running node, wired together and shared by its tasks
//! and API handlers. It owns no logic of its own; the services (ingest, sync, serve,
//! download, install, gc, queries, names, publish) each take it and use the parts they need.
//!
//! - [`Catalogue`]: the store, the search index, the record cache, the names in dispute and
//!   the unsafe archives.
//! - [`Transfers`]: upload pacing, serving slots, syncs and downloads under way, counters.
//! - [`Peers`]: the peer book and the blocks it decides.
//! - the network handle, this node's identity and settings, and the [`Supervisor`] that owns
//!   spawned work.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use peerpack_core::PublisherKey;
use peerpack_net::p2p::{Multiaddr, PeerId};
use peerpack_net::{AddressPolicy, NetHandle};

use crate::catalogue::Catalogue;
use crate::reputation::Peers;
use crate::supervisor::Supervisor;
use crate::transfer::Transfers;

/// The parts of a running node, shared by its tasks and API handlers.
pub struct Context {
    /// The store and what is kept in memory beside it.
    pub(crate) catalogue: Catalogue,
    /// Serving, syncing and downloading.
    pub(crate) transfers: Transfers,
    /// The peer book.
    pub(crate) peers: Peers,
    /// The network event loop.
    pub(crate) net: NetHandle,
    /// The key this node publishes (and curates) with.
    pub(crate) publisher: PublisherKey,
    pub(crate) peer_id: PeerId,
    pub(crate) listen_addrs: Vec<Multiaddr>,
    pub(crate) policy: AddressPolicy,
    pub(crate) started: Instant,
    pub(crate) api_url: String,
    /// The token that mutating API calls must carry (`DATA_DIR/api-token`).
    pub(crate) api_token: String,
    /// Whether catalogues are pulled from peers.
    pub(crate) catalogue_sync: bool,
    /// Bytes of unprotected archives kept before garbage collection removes them.
    pub(crate) cache_quota: u64,
    /// How installs place files from the unpacked cache (`install.link`).
    pub(crate) install_link: peerpack_store::unpacked::LinkMode,
    /// Curators whose lists decide name owners, highest priority first.
    pub(crate) curators: Vec<peerpack_core::PublicKey>,
    /// Whether the curators' lists were asked for since start.
    pub(crate) curators_fetched: AtomicBool,
    /// Spawned work, cancelled and awaited on shutdown.
    pub(crate) supervisor: Supervisor,
    /// The bootstrap peers and the redialling of known peers.
    pub(crate) health: crate::health::Health,
    /// Writes of the DHT store's provider records (pruned of expired ones periodically).
    pub(crate) dht_writer: peerpack_store::dht::DhtWriter,
    /// What the republishing task did last and will do next.
    pub(crate) republish: crate::republish::Schedule,
    /// The node's metrics provider (`/metrics`, OTLP).
    pub(crate) telemetry: std::sync::Arc<crate::telemetry::Telemetry>,
    /// The node's own instruments.
    pub(crate) metrics: crate::telemetry::NodeMetrics,
    /// What the web page keeps in memory.
    pub(crate) web: crate::web::WebState,
}

impl Context {
    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The handle to this node's network event loop, for in-process callers.
    pub fn net(&self) -> &NetHandle {
        &self.net
    }

    /// The token mutating API calls must carry.
    pub fn api_token(&self) -> &str {
        &self.api_token
    }

    /// This node's listen addresses (with `/p2p/<id>`).
    pub fn listen_addrs(&self) -> &[Multiaddr] {
        &self.listen_addrs
    }

    /// Change the upload limit (bytes per second, `None`: unlimited) while running.
    pub fn set_upload_limit(&self, rate: Option<u64>) {
        self.transfers.upload.set_rate(rate);
    }

    /// The publisher key's public half.
    pub fn publisher(&self) -> peerpack_core::PublicKey {
        self.publisher.public()
    }
}
