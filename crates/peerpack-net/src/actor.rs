//! The event loop that alone owns the Swarm: its state, and the one `select!` over commands,
//! swarm events and a tick.
//!
//! Commands carry `oneshot` replies. Pending work is keyed by the id libp2p returns
//! (`kad::QueryId`, `OutboundRequestId`) and every entry has a deadline in a `Pending`
//! table, swept by the tick, so every caller is answered. Every Kademlia, Gossipsub, Identify,
//! ping, sync, blob and connection event is handled, including queries this node never issued
//! (automatic bootstrap, republishing). Nothing here blocks or touches the disk: what needs the
//! store (validating announcements and inbound records, answering sync) goes out as an
//! [`Event`] and comes back as a [`Command`].
//!
//! Each protocol family's commands and events are handled in its own module, as `impl
//! EventLoop` blocks: `kad` (records and providers), `gossip` (announcements), `reqresp`
//! (sync and blob requests) and `connection` (dialing, connections, Identify, ping, status).
//! The [`NetHandle`], [`Command`] and [`Event`] are defined in the crate's `handle` and
//! `event` modules and re-exported here under their old paths.

mod connection;
mod gossip;
mod kad;
mod reqresp;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::gossipsub::{IdentTopic, MessageAcceptance};
use libp2p::kad::QueryId;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm};
use tokio::sync::{mpsc, oneshot};

pub use self::kad::{MAX_PROVIDER_RECORDS_PER_PEER, PROVIDER_WINDOW};
pub use crate::event::Event;
pub use crate::handle::{COMMAND_CAPACITY, Command, EVENT_CAPACITY, Found, NetHandle};

use crate::behaviour::{Behaviour, BehaviourEvent};
use crate::blob::BlobResponse;
use crate::error::Error;
use crate::pending::Pending;
use crate::policy::AddressPolicy;
use crate::protocol::Topic;
use crate::sync::SyncResponse;

/// How often deadlines are checked and pending announcements retried.
const TICK: Duration = Duration::from_millis(100);

/// A caller waiting for a connection, and its deadline.
type PendingConnect = (oneshot::Sender<Result<PeerId, Error>>, Instant);

/// The event loop.
pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<crate::handle::Envelope>,
    events: mpsc::Sender<Event>,
    policy: AddressPolicy,
    refused_dials: Arc<AtomicU64>,
    /// Addresses the operator asked to dial (shared with the transport filter).
    operator: crate::transport::OperatorAddrs,
    /// Kademlia's query timeout: DHT writes are given up a margin after it.
    query_timeout: Duration,
    started: Instant,
    topics: [(Topic, IdentTopic); 3],
    connections: HashMap<PeerId, Vec<Multiaddr>>,
    /// When each open connection opened, for the `net.connection.closed` span.
    opened: HashMap<libp2p::swarm::ConnectionId, std::time::Instant>,
    /// When each connected peer was last of use (connected, a request or answer, a gossip
    /// message), for trimming (`connection.rs`, `trim`).
    last_used: HashMap<PeerId, Instant>,
    /// The listen addresses each connected peer advertised through Identify (those the
    /// policy allows), while it is connected: they fill in a provider record that came with
    /// none when the routing table does not know the provider.
    advertised: HashMap<PeerId, Vec<Multiaddr>>,
    /// Peers the operator dialled by address: never removed from the routing table.
    operator_peers: std::collections::HashSet<PeerId>,
    /// Routing-table peers whose dials failed at every address it holds, with when that first
    /// happened (`forget_if_unreachable`); cleared when they connect.
    unreachable: HashMap<PeerId, Instant>,
    /// Peers kept connected before the least used are let go.
    max_peers: usize,
    /// A peer used this recently is not let go.
    trim_grace: Duration,
    /// When connections were last trimmed.
    last_trim: Instant,
    pending_gets: Pending<QueryId, kad::PendingGet>,
    pending_puts: Pending<QueryId, kad::PendingPut>,
    pending_providers: Pending<QueryId, kad::PendingProviders>,
    pending_sync: reqresp::PendingRequests<SyncResponse>,
    pending_chunks: reqresp::PendingRequests<BlobResponse>,
    /// Announcements waiting for a subscribed peer, by a counter.
    pending_announces: Pending<u64, gossip::PendingAnnounce>,
    next_announce: u64,
    /// Callers waiting for a connection to a peer, each with its deadline.
    pending_connects: HashMap<PeerId, Vec<PendingConnect>>,
    dropped_events: u64,
    /// Provider records of ours whose publishing query failed: when each is published again,
    /// and how many tries failed so far (`kad.rs`, `retry_provides`).
    provide_retries: HashMap<libp2p::kad::RecordKey, (Instant, u32)>,
    /// Provider records accepted from each peer in the current window, and when it began.
    provider_quota: HashMap<PeerId, (u32, Instant)>,
    refused_provider_records: u64,
    /// Provider records the store refused because it was full.
    full_provider_records: u64,
    /// peerpack's own instruments.
    pub(crate) metrics: crate::metrics::NetMetrics,
    /// libp2p's (libp2p-metrics).
    p2p_metrics: libp2p::metrics::Metrics,
}

/// What the event loop is built with besides the swarm and its channels.
pub(crate) struct Parts {
    pub(crate) policy: AddressPolicy,
    pub(crate) refused_dials: Arc<AtomicU64>,
    pub(crate) operator: crate::transport::OperatorAddrs,
    pub(crate) query_timeout: Duration,
    pub(crate) max_peers: usize,
    pub(crate) trim_grace: Duration,
    pub(crate) metrics: crate::metrics::NetMetrics,
    pub(crate) p2p_metrics: libp2p::metrics::Metrics,
}

impl EventLoop {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<crate::handle::Envelope>,
        events: mpsc::Sender<Event>,
        parts: Parts,
    ) -> Self {
        let Parts {
            policy,
            refused_dials,
            operator,
            query_timeout,
            max_peers,
            trim_grace,
            metrics,
            p2p_metrics,
        } = parts;
        Self {
            swarm,
            commands,
            events,
            policy,
            refused_dials,
            operator,
            query_timeout,
            started: Instant::now(),
            topics: [Topic::Packages, Topic::Curators, Topic::Indexes]
                .map(|t| (t, IdentTopic::new(t.name()))),
            connections: HashMap::new(),
            opened: HashMap::new(),
            last_used: HashMap::new(),
            advertised: HashMap::new(),
            operator_peers: std::collections::HashSet::new(),
            unreachable: HashMap::new(),
            max_peers,
            trim_grace,
            last_trim: Instant::now(),
            pending_gets: Pending::default(),
            pending_puts: Pending::default(),
            pending_providers: Pending::default(),
            pending_sync: Pending::default(),
            pending_chunks: Pending::default(),
            pending_announces: Pending::default(),
            next_announce: 0,
            pending_connects: HashMap::new(),
            dropped_events: 0,
            provide_retries: HashMap::new(),
            provider_quota: HashMap::new(),
            refused_provider_records: 0,
            full_provider_records: 0,
            metrics,
            p2p_metrics,
        }
    }

    /// Run until every handle is dropped.
    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                env = self.commands.recv() => match env {
                    Some(crate::handle::Envelope { cmd: Command::Shutdown, .. }) | None => break,
                    Some(crate::handle::Envelope { span, cmd }) => {
                        let _entered = span.enter();
                        self.handle_command(cmd);
                    }
                },
                event = self.swarm.select_next_some() => self.handle_event(event),
                _ = tick.tick() => self.on_tick(),
            }
        }
        tracing::info!("network event loop stopped");
    }

    /// Send an event to the node, dropping it (and counting) when the node is not keeping up.
    fn emit(&mut self, event: Event) {
        if let Err(e) = self.events.try_send(event) {
            self.dropped_events += 1;
            let event = match e {
                mpsc::error::TrySendError::Full(ev) | mpsc::error::TrySendError::Closed(ev) => ev,
            };
            tracing::warn!(?event, "node is not keeping up; dropped a network event");
            // Gossipsub waits for a verdict on every message; do not leave it hanging.
            if let Event::Announcement {
                source, message_id, ..
            } = event
            {
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(
                        &message_id,
                        &source,
                        MessageAcceptance::Ignore,
                    );
            }
        }
    }

    /// Route a command to its protocol family.
    fn handle_command(&mut self, cmd: Command) {
        match cmd {
            // Connections and state (connection.rs).
            Command::Dial { addr, reply } => {
                let _ = reply.send(self.dial(addr));
            }
            Command::Connect {
                addr,
                learned,
                timeout,
                reply,
            } => self.connect(addr, learned, timeout, reply),
            Command::Disconnect { peer } => {
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            Command::Block { peer } => self.block(peer),
            Command::Unblock { peer } => {
                self.swarm.behaviour_mut().blocked.unblock_peer(peer);
            }
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::Peers { reply } => {
                let _ = reply.send(self.peers());
            }
            Command::RoutingTable { reply } => {
                let _ = reply.send(self.routing_table());
            }
            Command::Shutdown => {}
            // Records and providers (kad.rs).
            Command::GetRecord {
                key,
                timeout,
                want,
                reply,
            } => self.get_record(key, timeout, want, reply),
            Command::PutRecord { key, value, reply } => self.put_record(key, value, reply),
            Command::StoreRecord { key, value } => self.store_record(key, value),
            Command::ReplaceRecords {
                exact,
                prefixes,
                records,
            } => self.replace_records(exact, prefixes, records),
            Command::StartProviding { key, reply } => {
                let _ = reply.send(self.start_providing(key));
            }
            Command::StopProviding { key } => self.stop_providing(key),
            Command::GetProviders {
                key,
                timeout,
                enough,
                reply,
            } => self.get_providers(key, timeout, enough, reply),
            // Announcements (gossip.rs).
            Command::Announce { topic, data, reply } => self.start_announce(topic, data, reply),
            Command::ReportValidation {
                message_id,
                source,
                acceptance,
            } => {
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &source, acceptance);
            }
            Command::GossipScore { peer, reply } => {
                let _ = reply.send(self.swarm.behaviour().gossipsub.peer_score(&peer));
            }
            // Sync and blob requests (reqresp.rs).
            Command::Sync {
                peer,
                request,
                reply,
            } => self.send_sync(peer, request, reply),
            Command::SyncRespond { channel, response } => self.sync_respond(channel, response),
            Command::FetchChunk {
                peer,
                request,
                reply,
            } => self.fetch_chunk(peer, request, reply),
            Command::BlobRespond { channel, response } => self.blob_respond(channel, response),
        }
    }

    /// Route a swarm event to its protocol family.
    fn handle_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        use libp2p::metrics::Recorder;
        match &event {
            SwarmEvent::Behaviour(BehaviourEvent::Kad(e)) => self.p2p_metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => self.p2p_metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => self.p2p_metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => self.p2p_metrics.record(e),
            SwarmEvent::Behaviour(_) => {}
            other => self.p2p_metrics.record(other),
        }
        // A peer that sent a request, an answer or a gossip message is of use now.
        match &event {
            SwarmEvent::Behaviour(BehaviourEvent::Sync(
                libp2p::request_response::Event::Message { peer, .. },
            ))
            | SwarmEvent::Behaviour(BehaviourEvent::Blob(
                libp2p::request_response::Event::Message { peer, .. },
            ))
            | SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(
                libp2p::gossipsub::Event::Message {
                    propagation_source: peer,
                    ..
                },
            )) => self.touch(*peer),
            _ => {}
        }
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Kad(e)) => self.on_kad(e),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => self.on_gossipsub(e),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => self.on_identify(e),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => self.on_ping(e),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(e)) => self.on_sync(e),
            SwarmEvent::Behaviour(BehaviourEvent::Blob(e)) => self.on_blob(e),
            SwarmEvent::Behaviour(BehaviourEvent::Limits(v)) => match v {},
            SwarmEvent::Behaviour(BehaviourEvent::Blocked(v)) => match v {},
            other => self.on_swarm(other),
        }
    }

    /// Answer everything past its deadline, and retry announcements.
    fn on_tick(&mut self) {
        self.publish_gauges();
        let now = Instant::now();
        self.expire_dht(now);
        self.expire_requests(now);
        self.expire_announces(now);
        self.retry_announces();
        self.retry_provides(now);
        self.expire_connects(now);
        if now.duration_since(self.last_trim) >= connection::TRIM_EVERY {
            self.last_trim = now;
            self.trim(now);
        }
    }
}

impl EventLoop {
    /// Publish the loop's state for the gauges (read when metrics are collected).
    fn publish_gauges(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        let routing = self.routing_table_size();
        let g = &self.metrics.gauges;
        g.connected_peers
            .store(self.connections.len() as u64, Relaxed);
        g.routing_table.store(routing as u64, Relaxed);
        g.pending_dht.store(
            (self.pending_gets.len() + self.pending_puts.len() + self.pending_providers.len())
                as u64,
            Relaxed,
        );
        g.pending_requests.store(
            (self.pending_sync.len() + self.pending_chunks.len()) as u64,
            Relaxed,
        );
        g.pending_announces
            .store(self.pending_announces.len() as u64, Relaxed);
        g.pending_connects.store(
            self.pending_connects.values().map(Vec::len).sum::<usize>() as u64,
            Relaxed,
        );
        g.dropped_events.store(self.dropped_events, Relaxed);
        g.command_depth.store(self.commands.len() as u64, Relaxed);
        g.event_depth.store(
            (self.events.max_capacity() - self.events.capacity()) as u64,
            Relaxed,
        );
    }
}
