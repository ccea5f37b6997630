//! What the event loop tells the node: the [`Event`] enum.
//!
//! Everything that needs the node's store (validating gossip and inbound DHT records,
//! answering sync and blob requests) arrives as an event; the node answers with a
//! [`Command`](crate::Command).

use std::time::Duration;

use libp2p::gossipsub::MessageId;
use libp2p::kad::Record;
use libp2p::request_response::ResponseChannel;
use libp2p::{Multiaddr, PeerId};

use crate::blob::{BlobRequest, BlobResponse};
use crate::protocol::Topic;
use crate::sync::{SyncRequest, SyncResponse};

/// What the network tells the node.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A gossip announcement to validate; answer with [`Command::ReportValidation`](crate::Command::ReportValidation).
    Announcement {
        /// The topic it came on.
        topic: Topic,
        /// The peer that forwarded it to us.
        source: PeerId,
        /// Its gossip id.
        message_id: MessageId,
        /// The encoded package record.
        data: Vec<u8>,
        /// The peer that published it first (gossip messages are signed by their author).
        origin: Option<PeerId>,
    },
    /// A peer asked us to store a DHT record; validate, then [`Command::StoreRecord`](crate::Command::StoreRecord).
    InboundRecord {
        /// The peer that sent it.
        source: PeerId,
        /// The record.
        record: Record,
    },
    /// A peer sent a sync request; answer with [`Command::SyncRespond`](crate::Command::SyncRespond).
    SyncRequested {
        /// The peer.
        peer: PeerId,
        /// Its request.
        request: SyncRequest,
        /// Where the answer goes.
        channel: ResponseChannel<SyncResponse>,
    },
    /// A peer asked for a range of an archive; answer with [`Command::BlobRespond`](crate::Command::BlobRespond).
    BlobRequested {
        /// The peer.
        peer: PeerId,
        /// Its request.
        request: BlobRequest,
        /// Where the answer goes.
        channel: ResponseChannel<BlobResponse>,
    },
    /// A connection to a peer opened.
    Connected {
        /// The peer.
        peer: PeerId,
        /// The remote address of the connection.
        address: Multiaddr,
        /// Whether it is the peer's first connection.
        first: bool,
    },
    /// The last connection to a peer closed.
    Disconnected {
        /// The peer.
        peer: PeerId,
    },
    /// Identify told us about a peer.
    Identified {
        /// The peer.
        peer: PeerId,
        /// Agent version.
        agent: String,
        /// Protocol version.
        protocol_version: String,
        /// Listen addresses it advertised that our policy allows.
        addresses: Vec<Multiaddr>,
        /// Whether it speaks peerpack's Kademlia protocol.
        peerpack: bool,
    },
    /// A ping round trip.
    Ping {
        /// The peer.
        peer: PeerId,
        /// Round-trip time.
        rtt: Duration,
    },
    /// A peer announced with ADD_PROVIDER that it holds an archive, and the record was kept.
    ProviderAdded {
        /// The peer.
        peer: PeerId,
        /// The archive's content id.
        content_id: peerpack_core::ContentId,
    },
}
