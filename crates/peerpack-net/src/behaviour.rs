//! The libp2p behaviour: Kademlia, Gossipsub, Identify, ping, catalogue sync and connection
//! limits, with the settings that matter on loopback and in small networks.

// The NetworkBehaviour derive generates a `BehaviourEvent` enum without docs.
#![allow(missing_docs)]

use std::time::Duration;

use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    StreamProtocol, allow_block_list, connection_limits, gossipsub, identify, identity, kad, ping,
    request_response,
};

use crate::blob::{self, BlobCodec};
use crate::protocol::{
    ANNOUNCE_TOPIC, CURATOR_TOPIC, IDENTIFY_PROTOCOL, INDEX_TOPIC, KAD_PROTOCOL,
};
use crate::sync::{self, SyncRequest, SyncResponse};

/// How long opening a connection (TCP, Noise and Yamux) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest Kademlia message: records are at most 64 KiB, plus framing.
pub const KAD_MAX_PACKET: usize = 128 * 1024;
/// Largest gossip message: one package record.
pub const GOSSIP_MAX_TRANSMIT: usize = 96 * 1024;
/// Largest message on peerpack's topics: a record of at most 64 KiB and a little framing.
pub const GOSSIP_MAX_TOPIC_MESSAGE: usize = 72 * 1024;
/// How long a catalogue sync request may take, once its stream is open.
pub const SYNC_REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a blob request may take, once its stream is open.
pub const BLOB_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The combined behaviour.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Connection limits (first, so it can deny before others allocate state).
    pub limits: connection_limits::Behaviour,
    /// Peers this node refuses to talk to.
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// Kademlia DHT: records and providers.
    pub kad: kad::Behaviour<crate::dht_store::DhtStore>,
    /// Gossipsub: announcements of new packages.
    pub gossipsub: gossipsub::Behaviour,
    /// Identify: peer metadata and listen addresses.
    pub identify: identify::Behaviour,
    /// Ping: liveness and latency (other Kademlia implementations require it).
    pub ping: ping::Behaviour,
    /// Catalogue sync (CBOR, with the size caps of [`sync::codec`]).
    pub sync: request_response::cbor::Behaviour<SyncRequest, SyncResponse>,
    /// Blob exchange.
    pub blob: request_response::Behaviour<BlobCodec>,
}

/// Settings for [`Behaviour::new`].
pub struct Settings {
    /// Kademlia query timeout.
    pub query_timeout: Duration,
    /// Most established connections in total.
    pub max_connections: u32,
    /// Agent version announced through Identify.
    pub agent_version: String,
    /// Durable state behind the Kademlia store.
    pub backing: Box<dyn crate::dht_store::DhtBacking>,
    /// Most provider records from other peers the store keeps.
    pub max_provider_records: u64,
}

/// The gossip message id: BLAKE3 of the message data (so every implementation computes the
/// same id for IHAVE/IWANT, and identical announcements are deduplicated).
pub fn message_id(message: &gossipsub::Message) -> gossipsub::MessageId {
    gossipsub::MessageId::from(blake3::hash(&message.data).as_bytes().to_vec())
}

/// Gossipsub peer scoring. Invalid messages (our validator's `Reject`) are what it punishes:
/// each topic's P4 weight makes one invalid message -20 and two -80, the graylist. Valid
/// first deliveries earn a little, time in the mesh a little more. Mesh delivery deficits
/// (P3, P3b) do not count: a quiet catalogue is not misbehaviour. Neither do shared IP
/// addresses (P6): every peer of a test or a NAT shares one, and IPs prove nothing.
fn score_params() -> gossipsub::PeerScoreParams {
    let mut params = gossipsub::PeerScoreParams {
        ip_colocation_factor_weight: 0.0,
        ..Default::default()
    };
    for topic in [ANNOUNCE_TOPIC, CURATOR_TOPIC, INDEX_TOPIC] {
        params.topics.insert(
            gossipsub::IdentTopic::new(topic).hash(),
            gossipsub::TopicScoreParams {
                topic_weight: 1.0,
                time_in_mesh_weight: 0.01,
                time_in_mesh_quantum: Duration::from_secs(1),
                time_in_mesh_cap: 3600.0,
                first_message_deliveries_weight: 1.0,
                first_message_deliveries_decay: 0.5,
                first_message_deliveries_cap: 100.0,
                mesh_message_deliveries_weight: 0.0,
                mesh_failure_penalty_weight: 0.0,
                invalid_message_deliveries_weight: -20.0,
                // Decays by 1% a second: the penalty of one forgery halves in about a minute.
                invalid_message_deliveries_decay: 0.99,
                ..Default::default()
            },
        );
    }
    params
}

/// Below -10 a peer gets no gossip from us, below -50 none of our publishes, below -80 we
/// ignore it altogether.
fn score_thresholds() -> gossipsub::PeerScoreThresholds {
    gossipsub::PeerScoreThresholds {
        gossip_threshold: -10.0,
        publish_threshold: -50.0,
        graylist_threshold: -80.0,
        accept_px_threshold: 10.0,
        opportunistic_graft_threshold: 5.0,
    }
}

impl Behaviour {
    /// Build the behaviour for `key`.
    pub fn new(key: &identity::Keypair, s: Settings) -> Result<Self, String> {
        let peer_id = key.public().to_peer_id();

        let mut kad_config = kad::Config::new(StreamProtocol::new(KAD_PROTOCOL));
        kad_config
            .set_query_timeout(s.query_timeout)
            .set_max_packet_size(KAD_MAX_PACKET)
            .set_record_filtering(kad::StoreInserts::FilterBoth)
            // Kademlia's periodic jobs walk the whole store from the event loop; the node
            // republishes its own records and re-announces its archives on its own schedule
            // instead (`peerpack_node::republish`), once it has peers.
            .set_provider_publication_interval(None)
            .set_publication_interval(None)
            .set_replication_interval(None)
            // Records this node holds are the catalogue it accepted: they do not expire.
            .set_record_ttl(None)
            // The event loop decides who enters the routing table (Identify, the operator's
            // dials), and only where a bucket has room: on its own Kademlia would take every
            // peer it connects to, and for one new to a full bucket dial the bucket's oldest
            // disconnected entry to see whether it is alive. With connections trimmed, those
            // dials never end: at 200 nodes in a network at rest they opened 100 connections
            // a second. An entry leaves when dials to every address it holds failed twice, 60 s to
            // 10 minutes apart, and only from a full bucket (`forget_if_unreachable`).
            .set_kbucket_inserts(kad::BucketInserts::Manual);
        let store = crate::dht_store::DhtStore::new(peer_id, s.backing, s.max_provider_records);
        let mut kad = kad::Behaviour::with_config(peer_id, store, kad_config);
        // On loopback no external address is ever confirmed, so the automatic switch to server
        // mode never happens; without it peers never store our records.
        kad.set_mode(Some(kad::Mode::Server));

        let gossip_config = gossipsub::ConfigBuilder::default()
            .validation_mode(gossipsub::ValidationMode::Strict)
            .validate_messages()
            .message_id_fn(message_id)
            .max_transmit_size(GOSSIP_MAX_TRANSMIT)
            // On our topics a message larger than a record can be (64 KiB plus framing) is
            // invalid: gossipsub counts it against its sender's score.
            .max_transmit_size_for_topic(
                GOSSIP_MAX_TOPIC_MESSAGE,
                gossipsub::IdentTopic::new(ANNOUNCE_TOPIC).hash(),
            )
            .max_transmit_size_for_topic(
                GOSSIP_MAX_TOPIC_MESSAGE,
                gossipsub::IdentTopic::new(CURATOR_TOPIC).hash(),
            )
            .max_transmit_size_for_topic(
                GOSSIP_MAX_TOPIC_MESSAGE,
                gossipsub::IdentTopic::new(INDEX_TOPIC).hash(),
            )
            .heartbeat_interval(Duration::from_secs(1))
            .build()
            .map_err(|e| format!("gossipsub config: {e}"))?;
        let mut gossipsub = gossipsub::Behaviour::new(
            gossipsub::MessageAuthenticity::Signed(key.clone()),
            gossip_config,
        )?;
        gossipsub
            .with_peer_score(score_params(), score_thresholds())
            .map_err(|e| format!("gossipsub scoring: {e}"))?;
        gossipsub
            .subscribe(&gossipsub::IdentTopic::new(ANNOUNCE_TOPIC))
            .map_err(|e| format!("gossipsub subscribe: {e}"))?;
        gossipsub
            .subscribe(&gossipsub::IdentTopic::new(CURATOR_TOPIC))
            .map_err(|e| format!("gossipsub subscribe: {e}"))?;
        gossipsub
            .subscribe(&gossipsub::IdentTopic::new(INDEX_TOPIC))
            .map_err(|e| format!("gossipsub subscribe: {e}"))?;

        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL.to_owned(), key.public())
                .with_agent_version(s.agent_version.clone())
                // Identify again every 5 minutes (libp2p's default): peers' addresses rarely
                // change, and each round costs every connection an exchange.
                .with_interval(Duration::from_secs(300))
                // No address cache: the addresses peers advertise reach the swarm only
                // through Kademlia, after the policy's filter for learned addresses.
                .with_cache_size(0),
        );

        let sync = request_response::Behaviour::with_codec(
            sync::codec(),
            [(
                StreamProtocol::new(sync::PROTOCOL),
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default().with_request_timeout(SYNC_REQUEST_TIMEOUT),
        );

        let blob = request_response::Behaviour::with_codec(
            BlobCodec,
            [(
                StreamProtocol::new(blob::PROTOCOL),
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default()
                .with_request_timeout(BLOB_REQUEST_TIMEOUT)
                .with_max_concurrent_streams(64),
        );

        let limits = connection_limits::Behaviour::new(
            connection_limits::ConnectionLimits::default()
                .with_max_established(Some(s.max_connections))
                .with_max_established_per_peer(Some(4)),
        );

        Ok(Self {
            limits,
            blocked: allow_block_list::Behaviour::default(),
            kad,
            gossipsub,
            identify,
            ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(15))),
            sync,
            blob,
        })
    }
}
