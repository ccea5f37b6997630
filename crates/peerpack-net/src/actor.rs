//! The event loop that alone owns the Swarm, and the [`NetHandle`] everyone else uses.
//!
//! Commands carry `oneshot` replies. Pending work is keyed by the id libp2p returns
//! (`kad::QueryId`, `OutboundRequestId`) and every entry has a deadline, checked by a tick.
//! Every Kademlia, Gossipsub, Identify, ping, sync and connection event is handled, including
//! queries this node never issued (automatic bootstrap, republishing). Nothing here blocks or
//! touches the disk: what needs the store (validating announcements and inbound records,
//! answering sync) goes out as an [`Event`] and comes back as a [`Command`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageId, PublishError};
use libp2p::kad::store::RecordStore;
use libp2p::kad::{self, QueryId, QueryResult, Record, RecordKey};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId, Swarm, identify, ping};
use tokio::sync::{mpsc, oneshot};

use crate::behaviour::{Behaviour, BehaviourEvent};
use crate::blob::{BlobRequest, BlobResponse};
use crate::error::{DhtError, RequestError};
use crate::policy::AddressPolicy;
use crate::protocol::{KAD_PROTOCOL, Topic};
use crate::sync::{SyncRequest, SyncResponse};
use crate::{Error, PeerInfo, Status};

/// Bound of the command channel.
pub const COMMAND_CAPACITY: usize = 1024;
/// Bound of the event channel to the node.
pub const EVENT_CAPACITY: usize = 4096;
/// How often deadlines are checked and pending announcements retried.
const TICK: Duration = Duration::from_millis(100);
/// How long an announcement waits for a subscribed peer before giving up.
const ANNOUNCE_PATIENCE: Duration = Duration::from_secs(5);

/// What the network tells the node.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A gossip announcement to validate; answer with [`Command::ReportValidation`].
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
    /// A peer asked us to store a DHT record; validate, then [`Command::StoreRecord`].
    InboundRecord {
        /// The peer that sent it.
        source: PeerId,
        /// The record.
        record: Record,
    },
    /// A peer sent a sync request; answer with [`Command::SyncRespond`].
    SyncRequested {
        /// The peer.
        peer: PeerId,
        /// Its request.
        request: SyncRequest,
        /// Where the answer goes.
        channel: ResponseChannel<SyncResponse>,
    },
    /// A peer asked for a range of an archive; answer with [`Command::BlobRespond`].
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

/// Requests to the event loop.
#[derive(Debug)]
#[non_exhaustive]
pub enum Command {
    /// Dial an address (which must carry `/p2p/<id>`), adding it to the routing table.
    Dial {
        /// The address.
        addr: Multiaddr,
        /// Answered once the dial is under way (or refused).
        reply: oneshot::Sender<Result<PeerId, Error>>,
    },
    /// Collect every value the DHT holds under `key`, until the query ends or `timeout`.
    GetRecord {
        /// The key.
        key: Vec<u8>,
        /// Deadline.
        timeout: Duration,
        /// Every distinct value found (unvalidated), our own copy included, each with the
        /// peers that served it (none for our own copy).
        reply: oneshot::Sender<Vec<Found>>,
    },
    /// Put a record in our store and on the closest peers.
    PutRecord {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
        /// Number of remote peers that stored it.
        reply: oneshot::Sender<Result<usize, Error>>,
    },
    /// Store a validated record locally (from [`Event::InboundRecord`], sync or startup).
    StoreRecord {
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Drop every record in our local DHT store whose key is one of `exact` or starts with one
    /// of `prefixes`, then hold `records`: what a node serves for names whose owner changed.
    /// One pass over the store, however many names.
    ReplaceRecords {
        /// Keys to drop.
        exact: Vec<Vec<u8>>,
        /// Keys with one of these prefixes are dropped.
        prefixes: Vec<Vec<u8>>,
        /// The records to hold instead.
        records: Vec<(Vec<u8>, Vec<u8>)>,
    },
    /// Announce that we provide `key` (a content id's 32 bytes).
    StartProviding {
        /// The key.
        key: Vec<u8>,
        /// Answered once the provider record is in the local store and queued for peers.
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// Stop providing `key` (the archive was removed).
    StopProviding {
        /// The key.
        key: Vec<u8>,
    },
    /// Find providers of `key`.
    GetProviders {
        /// The key.
        key: Vec<u8>,
        /// Deadline.
        timeout: Duration,
        /// The providers found.
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    /// Publish an announcement on a gossip topic, retrying while nobody is subscribed.
    Announce {
        /// The topic.
        topic: Topic,
        /// The encoded record.
        data: Vec<u8>,
        /// The number of peers subscribed when it went out.
        reply: oneshot::Sender<Result<usize, Error>>,
    },
    /// The verdict on an [`Event::Announcement`].
    ReportValidation {
        /// Its id.
        message_id: MessageId,
        /// The peer that forwarded it.
        source: PeerId,
        /// Accept (forward), Reject (drop, penalise) or Ignore (drop).
        acceptance: MessageAcceptance,
    },
    /// Send a sync request.
    Sync {
        /// The peer.
        peer: PeerId,
        /// The request.
        request: SyncRequest,
        /// Its answer.
        reply: oneshot::Sender<Result<SyncResponse, Error>>,
    },
    /// Answer a [`Event::SyncRequested`].
    SyncRespond {
        /// The channel from the event.
        channel: ResponseChannel<SyncResponse>,
        /// The answer.
        response: SyncResponse,
    },
    /// Ask `peer` for a range of an archive.
    FetchChunk {
        /// The peer.
        peer: PeerId,
        /// The request.
        request: BlobRequest,
        /// Its answer.
        reply: oneshot::Sender<Result<BlobResponse, Error>>,
    },
    /// Answer a [`Event::BlobRequested`].
    BlobRespond {
        /// The channel from the event.
        channel: ResponseChannel<BlobResponse>,
        /// The answer.
        response: BlobResponse,
    },
    /// Close every connection to a peer.
    Disconnect {
        /// The peer.
        peer: PeerId,
    },
    /// Current state.
    Status {
        /// The answer.
        reply: oneshot::Sender<Status>,
    },
    /// Connected peers.
    Peers {
        /// The answer.
        reply: oneshot::Sender<Vec<PeerInfo>>,
    },
    /// Refuse every connection with `peer` (closing open ones) until unblocked.
    Block {
        /// The peer.
        peer: PeerId,
    },
    /// Accept connections with `peer` again.
    Unblock {
        /// The peer.
        peer: PeerId,
    },
    /// Gossipsub's score of `peer` (`None` when it has none).
    GossipScore {
        /// The peer.
        peer: PeerId,
        /// The answer.
        reply: oneshot::Sender<Option<f64>>,
    },
    /// Stop the event loop, closing every connection and listener.
    Shutdown,
}

/// A cheap, cloneable handle to the event loop.
#[derive(Debug, Clone)]
pub struct NetHandle {
    tx: mpsc::Sender<Command>,
    local_peer_id: PeerId,
}

impl NetHandle {
    pub(crate) fn new(tx: mpsc::Sender<Command>, local_peer_id: PeerId) -> Self {
        Self { tx, local_peer_id }
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Send a command without waiting for an answer.
    pub async fn send(&self, cmd: Command) -> Result<(), Error> {
        self.tx.send(cmd).await.map_err(|_| Error::Stopped)
    }

    /// Send a command from a thread that is not running async code (e.g. inside
    /// `spawn_blocking`, while holding the store's lock, so that DHT store updates are queued
    /// in the order the database committed them). Never call it from async code.
    pub fn send_blocking(&self, cmd: Command) -> Result<(), Error> {
        self.tx.blocking_send(cmd).map_err(|_| Error::Stopped)
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(make(reply)).await?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Dial `addr` (with `/p2p/<id>`).
    pub async fn dial(&self, addr: Multiaddr) -> Result<PeerId, Error> {
        self.ask(|reply| Command::Dial { addr, reply }).await?
    }

    /// Every value stored under `key` in the DHT (unvalidated).
    pub async fn get_record(&self, key: Vec<u8>, timeout: Duration) -> Result<Vec<Vec<u8>>, Error> {
        Ok(self
            .get_record_from(key, timeout)
            .await?
            .into_iter()
            .map(|f| f.value)
            .collect())
    }

    /// Every distinct value stored under `key` in the DHT (unvalidated), with the peers that
    /// served each.
    pub async fn get_record_from(
        &self,
        key: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<Found>, Error> {
        self.ask(|reply| Command::GetRecord {
            key,
            timeout,
            reply,
        })
        .await
    }

    /// Put a record in the DHT; returns how many remote peers stored it.
    pub async fn put_record(&self, key: Vec<u8>, value: Vec<u8>) -> Result<usize, Error> {
        self.ask(|reply| Command::PutRecord { key, value, reply })
            .await?
    }

    /// Store a validated record locally.
    pub async fn store_record(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), Error> {
        self.send(Command::StoreRecord { key, value }).await
    }

    /// Provide `key`.
    pub async fn start_providing(&self, key: Vec<u8>) -> Result<(), Error> {
        self.ask(|reply| Command::StartProviding { key, reply })
            .await?
    }

    /// Stop providing `key`.
    pub async fn stop_providing(&self, key: Vec<u8>) -> Result<(), Error> {
        self.send(Command::StopProviding { key }).await
    }

    /// Providers of `key`.
    pub async fn get_providers(
        &self,
        key: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<PeerId>, Error> {
        self.ask(|reply| Command::GetProviders {
            key,
            timeout,
            reply,
        })
        .await
    }

    /// Gossip an announcement; returns the number of subscribed peers it went to.
    pub async fn announce(&self, data: Vec<u8>) -> Result<usize, Error> {
        self.announce_on(Topic::Packages, data).await
    }

    /// Gossip `data` on `topic`; returns the number of subscribed peers it went to.
    pub async fn announce_on(&self, topic: Topic, data: Vec<u8>) -> Result<usize, Error> {
        self.ask(|reply| Command::Announce { topic, data, reply })
            .await?
    }

    /// Report the verdict on an announcement.
    pub async fn report(
        &self,
        message_id: MessageId,
        source: PeerId,
        acceptance: MessageAcceptance,
    ) -> Result<(), Error> {
        self.send(Command::ReportValidation {
            message_id,
            source,
            acceptance,
        })
        .await
    }

    /// Send a sync request to `peer`.
    pub async fn sync(&self, peer: PeerId, request: SyncRequest) -> Result<SyncResponse, Error> {
        self.ask(|reply| Command::Sync {
            peer,
            request,
            reply,
        })
        .await?
    }

    /// Answer a sync request.
    pub async fn sync_respond(
        &self,
        channel: ResponseChannel<SyncResponse>,
        response: SyncResponse,
    ) -> Result<(), Error> {
        self.send(Command::SyncRespond { channel, response }).await
    }

    /// Ask `peer` for a range of an archive.
    pub async fn fetch_chunk(
        &self,
        peer: PeerId,
        request: BlobRequest,
    ) -> Result<BlobResponse, Error> {
        self.ask(|reply| Command::FetchChunk {
            peer,
            request,
            reply,
        })
        .await?
    }

    /// Answer a blob request.
    pub async fn blob_respond(
        &self,
        channel: ResponseChannel<BlobResponse>,
        response: BlobResponse,
    ) -> Result<(), Error> {
        self.send(Command::BlobRespond { channel, response }).await
    }

    /// Close connections to `peer`.
    pub async fn disconnect(&self, peer: PeerId) -> Result<(), Error> {
        self.send(Command::Disconnect { peer }).await
    }

    /// Current state.
    pub async fn status(&self) -> Result<Status, Error> {
        self.ask(|reply| Command::Status { reply }).await
    }

    /// Refuse all connections with `peer`.
    pub async fn block(&self, peer: PeerId) -> Result<(), Error> {
        self.send(Command::Block { peer }).await
    }

    /// Gossipsub's score of `peer`.
    pub async fn gossip_score(&self, peer: PeerId) -> Result<Option<f64>, Error> {
        self.ask(|reply| Command::GossipScore { peer, reply }).await
    }

    /// Accept connections with `peer` again.
    pub async fn unblock(&self, peer: PeerId) -> Result<(), Error> {
        self.send(Command::Unblock { peer }).await
    }

    /// Queue a command without waiting (from code that holds a lock); fails when the queue is
    /// full or the loop has stopped.
    pub fn try_send(&self, cmd: Command) -> Result<(), Error> {
        self.tx.try_send(cmd).map_err(|_| Error::Stopped)
    }

    /// Stop the event loop.
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.send(Command::Shutdown).await
    }

    /// Connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, Error> {
        self.ask(|reply| Command::Peers { reply }).await
    }
}

/// One value a DHT read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The value (unvalidated).
    pub value: Vec<u8>,
    /// The remote peers that served it; empty when only our own store had it.
    pub peers: Vec<PeerId>,
}

struct PendingGet {
    values: Vec<(Option<PeerId>, Vec<u8>)>,
    deadline: Instant,
    reply: oneshot::Sender<Vec<Found>>,
}

struct PendingProviders {
    providers: HashSet<PeerId>,
    deadline: Instant,
    reply: oneshot::Sender<Vec<PeerId>>,
}

struct PendingAnnounce {
    topic: Topic,
    data: Vec<u8>,
    deadline: Instant,
    reply: oneshot::Sender<Result<usize, Error>>,
}

/// The event loop.
pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    policy: AddressPolicy,
    refused_dials: Arc<AtomicU64>,
    /// Addresses the operator asked to dial (shared with the transport filter).
    operator: crate::transport::OperatorAddrs,
    started: Instant,
    topics: [(Topic, IdentTopic); 2],
    connections: HashMap<PeerId, Vec<Multiaddr>>,
    pending_gets: HashMap<QueryId, PendingGet>,
    pending_puts: HashMap<QueryId, oneshot::Sender<Result<usize, Error>>>,
    pending_providers: HashMap<QueryId, PendingProviders>,
    pending_sync: HashMap<OutboundRequestId, oneshot::Sender<Result<SyncResponse, Error>>>,
    pending_chunks: HashMap<OutboundRequestId, oneshot::Sender<Result<BlobResponse, Error>>>,
    pending_announces: Vec<PendingAnnounce>,
    dropped_events: u64,
    /// Provider records accepted from each peer in the current window, and when it began.
    provider_quota: HashMap<PeerId, (u32, Instant)>,
    refused_provider_records: u64,
}

/// Provider records one peer may add in [`PROVIDER_WINDOW`].
pub const MAX_PROVIDER_RECORDS_PER_PEER: u32 = 1024;
/// The window of [`MAX_PROVIDER_RECORDS_PER_PEER`].
pub const PROVIDER_WINDOW: Duration = Duration::from_secs(3600);

impl EventLoop {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<Event>,
        policy: AddressPolicy,
        refused_dials: Arc<AtomicU64>,
        operator: crate::transport::OperatorAddrs,
    ) -> Self {
        Self {
            swarm,
            commands,
            events,
            policy,
            refused_dials,
            operator,
            started: Instant::now(),
            topics: [Topic::Packages, Topic::Curators].map(|t| (t, IdentTopic::new(t.name()))),
            connections: HashMap::new(),
            pending_gets: HashMap::new(),
            pending_puts: HashMap::new(),
            pending_providers: HashMap::new(),
            pending_sync: HashMap::new(),
            pending_chunks: HashMap::new(),
            pending_announces: Vec::new(),
            dropped_events: 0,
            provider_quota: HashMap::new(),
            refused_provider_records: 0,
        }
    }

    /// Run until every handle is dropped.
    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Shutdown) | None => break,
                    Some(cmd) => self.handle_command(cmd),
                },
                event = self.swarm.select_next_some() => self.handle_event(event),
                _ = tick.tick() => self.on_tick(),
            }
        }
        tracing::info!("network event loop stopped");
    }

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

    // ---- commands ----

    fn handle_command(&mut self, cmd: Command) {
        match cmd {
            Command::Dial { addr, reply } => {
                let _ = reply.send(self.dial(addr));
            }
            Command::GetRecord {
                key,
                timeout,
                reply,
            } => self.get_record(key, timeout, reply),
            Command::PutRecord { key, value, reply } => self.put_record(key, value, reply),
            Command::StoreRecord { key, value } => self.store_record(key, value),
            Command::ReplaceRecords {
                exact,
                prefixes,
                records,
            } => {
                let exact: HashSet<Vec<u8>> = exact.into_iter().collect();
                let store = self.swarm.behaviour_mut().kad.store_mut();
                let old: Vec<RecordKey> = store
                    .records()
                    .filter(|r| {
                        let k = r.key.as_ref();
                        exact.contains(k) || prefixes.iter().any(|p| k.starts_with(p))
                    })
                    .map(|r| r.key.clone())
                    .collect();
                for key in old {
                    store.remove(&key);
                }
                for (key, value) in records {
                    self.store_record(key, value);
                }
            }
            Command::StartProviding { key, reply } => {
                let result = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .start_providing(RecordKey::new(&key))
                    .map(|_| ())
                    .map_err(|e| Error::Dht(DhtError::Store(e)));
                let _ = reply.send(result);
            }
            Command::StopProviding { key } => {
                self.swarm
                    .behaviour_mut()
                    .kad
                    .stop_providing(&RecordKey::new(&key));
            }
            Command::GetProviders {
                key,
                timeout,
                reply,
            } => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .get_providers(RecordKey::new(&key));
                self.pending_providers.insert(
                    id,
                    PendingProviders {
                        providers: HashSet::new(),
                        deadline: Instant::now() + timeout,
                        reply,
                    },
                );
            }
            Command::Announce { topic, data, reply } => self.announce(PendingAnnounce {
                topic,
                data,
                deadline: Instant::now() + ANNOUNCE_PATIENCE,
                reply,
            }),
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
            Command::Sync {
                peer,
                request,
                reply,
            } => {
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.pending_sync.insert(id, reply);
            }
            Command::SyncRespond { channel, response } => {
                if self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, response)
                    .is_err()
                {
                    tracing::debug!("sync response not sent: the peer went away");
                }
            }
            Command::FetchChunk {
                peer,
                request,
                reply,
            } => {
                let id = self.swarm.behaviour_mut().blob.send_request(&peer, request);
                self.pending_chunks.insert(id, reply);
            }
            Command::BlobRespond { channel, response } => {
                if self
                    .swarm
                    .behaviour_mut()
                    .blob
                    .send_response(channel, response)
                    .is_err()
                {
                    tracing::debug!("blob response not sent: the peer went away");
                }
            }
            Command::Disconnect { peer } => {
                let _ = self.swarm.disconnect_peer_id(peer);
            }
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::Shutdown => {}
            Command::Block { peer } => {
                self.swarm.behaviour_mut().blocked.block_peer(peer);
                self.swarm.behaviour_mut().kad.remove_peer(&peer);
            }
            Command::Unblock { peer } => {
                self.swarm.behaviour_mut().blocked.unblock_peer(peer);
            }
            Command::GossipScore { peer, reply } => {
                let _ = reply.send(self.swarm.behaviour().gossipsub.peer_score(&peer));
            }
            Command::Peers { reply } => {
                let peers = self
                    .connections
                    .iter()
                    .map(|(peer, addrs)| PeerInfo {
                        peer_id: *peer,
                        addresses: addrs.clone(),
                    })
                    .collect();
                let _ = reply.send(peers);
            }
        }
    }

    fn dial(&mut self, addr: Multiaddr) -> Result<PeerId, Error> {
        let Some(peer) = crate::peer_id_of(&addr) else {
            return Err(Error::MissingPeerId(addr));
        };
        if !self.policy.allows(&addr) {
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
        // The operator asked for this address: it may be anywhere in the policy's range.
        if let Ok(mut set) = self.operator.lock() {
            set.insert(transport_addr.clone());
        }
        self.swarm
            .behaviour_mut()
            .kad
            .add_address(&peer, transport_addr.clone());
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

    fn get_record(&mut self, key: Vec<u8>, timeout: Duration, reply: oneshot::Sender<Vec<Found>>) {
        let key = RecordKey::new(&key);
        let mut values = Vec::new();
        if let Some(local) = self.swarm.behaviour_mut().kad.store_mut().get(&key) {
            values.push((None, local.value.clone()));
        }
        let id = self.swarm.behaviour_mut().kad.get_record(key);
        self.pending_gets.insert(
            id,
            PendingGet {
                values,
                deadline: Instant::now() + timeout,
                reply,
            },
        );
    }

    fn put_record(
        &mut self,
        key: Vec<u8>,
        value: Vec<u8>,
        reply: oneshot::Sender<Result<usize, Error>>,
    ) {
        let record = Record::new(key, value);
        match self
            .swarm
            .behaviour_mut()
            .kad
            .put_record(record, kad::Quorum::One)
        {
            Ok(id) => {
                self.pending_puts.insert(id, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(Error::Dht(DhtError::Store(e))));
            }
        }
    }

    fn store_record(&mut self, key: Vec<u8>, value: Vec<u8>) {
        let record = Record::new(key, value);
        if let Err(e) = self.swarm.behaviour_mut().kad.store_mut().put(record) {
            tracing::warn!(error = %e, "could not store a DHT record locally");
        }
    }

    fn ident_topic(&self, topic: Topic) -> IdentTopic {
        self.topics
            .iter()
            .find(|(t, _)| *t == topic)
            .map(|(_, i)| i.clone())
            .unwrap_or_else(|| IdentTopic::new(topic.name()))
    }

    fn announce(&mut self, pending: PendingAnnounce) {
        let topic = self.ident_topic(pending.topic);
        let subscribed = self
            .swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .filter(|(_, topics)| topics.contains(&&topic.hash()))
            .count();
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(topic, pending.data.clone())
        {
            Ok(_) | Err(PublishError::Duplicate) => {
                let _ = pending.reply.send(Ok(subscribed));
            }
            // With no connection at all, established or being dialled, there is nobody to wait
            // for; otherwise subscriptions may still be on their way: retry until the deadline.
            Err(PublishError::NoPeersSubscribedToTopic)
                if self.connections.is_empty()
                    && self
                        .swarm
                        .network_info()
                        .connection_counters()
                        .num_pending()
                        == 0 =>
            {
                let _ = pending.reply.send(Ok(0));
            }
            Err(PublishError::NoPeersSubscribedToTopic) | Err(PublishError::AllQueuesFull(_))
                if Instant::now() < pending.deadline =>
            {
                self.pending_announces.push(pending);
            }
            Err(e) => {
                let _ = pending.reply.send(Err(Error::Gossip(Arc::new(e))));
            }
        }
    }

    fn status(&mut self) -> Status {
        let routing_table_size = self
            .swarm
            .behaviour_mut()
            .kad
            .kbuckets()
            .map(|b| b.num_entries())
            .sum();
        Status {
            peer_id: *self.swarm.local_peer_id(),
            listen_addrs: self.swarm.listeners().cloned().collect(),
            connected_peers: self.connections.len(),
            routing_table_size,
            refused_dials: self.refused_dials.load(Ordering::Relaxed),
            dropped_events: self.dropped_events,
            refused_provider_records: self.refused_provider_records,
            policy: self.policy,
            uptime: self.started.elapsed(),
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        let expired: Vec<QueryId> = self
            .pending_gets
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.finish_get(id);
        }
        let expired: Vec<QueryId> = self
            .pending_providers
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.finish_providers(id);
        }
        for pending in std::mem::take(&mut self.pending_announces) {
            self.announce(pending);
        }
    }

    fn finish_get(&mut self, id: QueryId) {
        if let Some(mut q) = self.swarm.behaviour_mut().kad.query_mut(&id) {
            q.finish();
        }
        if let Some(p) = self.pending_gets.remove(&id) {
            let mut found: Vec<Found> = Vec::new();
            for (peer, value) in p.values {
                let i = match found.iter().position(|f| f.value == value) {
                    Some(i) => i,
                    None => {
                        found.push(Found {
                            value,
                            peers: Vec::new(),
                        });
                        found.len() - 1
                    }
                };
                if let Some(peer) = peer.filter(|p| !found[i].peers.contains(p)) {
                    found[i].peers.push(peer);
                }
            }
            let _ = p.reply.send(found);
        }
    }

    fn finish_providers(&mut self, id: QueryId) {
        if let Some(mut q) = self.swarm.behaviour_mut().kad.query_mut(&id) {
            q.finish();
        }
        if let Some(p) = self.pending_providers.remove(&id) {
            let _ = p.reply.send(p.providers.into_iter().collect());
        }
    }

    // ---- events ----

    fn handle_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Kad(e)) => self.on_kad(e),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => self.on_gossipsub(e),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => self.on_identify(e),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => self.on_ping(e),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(e)) => self.on_sync(e),
            SwarmEvent::Behaviour(BehaviourEvent::Blob(e)) => self.on_blob(e),
            SwarmEvent::Behaviour(BehaviourEvent::Limits(v)) => match v {},
            SwarmEvent::Behaviour(BehaviourEvent::Blocked(v)) => match v {},
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                let address = endpoint.get_remote_address().clone();
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
                endpoint,
                num_established,
                ..
            } => {
                if num_established == 0 {
                    self.connections.remove(&peer_id);
                    self.emit(Event::Disconnected { peer: peer_id });
                } else if let Some(addrs) = self.connections.get_mut(&peer_id) {
                    addrs.retain(|a| a != endpoint.get_remote_address());
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(?peer_id, %error, "outgoing connection failed");
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

    fn on_kad(&mut self, event: kad::Event) {
        match event {
            kad::Event::InboundRequest { request } => self.on_kad_inbound(request),
            kad::Event::OutboundQueryProgressed {
                id, result, step, ..
            } => self.on_kad_query(id, result, step.last),
            kad::Event::RoutingUpdated {
                peer, is_new_peer, ..
            } => {
                tracing::debug!(%peer, is_new_peer, "routing table updated");
            }
            kad::Event::UnroutablePeer { peer } => tracing::debug!(%peer, "unroutable peer"),
            kad::Event::RoutablePeer { peer, address }
            | kad::Event::PendingRoutablePeer { peer, address } => {
                tracing::debug!(%peer, %address, "routable peer");
            }
            kad::Event::ModeChanged { new_mode } => {
                tracing::info!(%new_mode, "kademlia mode changed")
            }
        }
    }

    fn on_kad_inbound(&mut self, request: kad::InboundRequest) {
        match request {
            kad::InboundRequest::PutRecord {
                source,
                record: Some(record),
                ..
            } => self.emit(Event::InboundRecord { source, record }),
            kad::InboundRequest::AddProvider {
                record: Some(mut record),
            } => {
                // Provider keys are content ids as BLAKE3 multihashes; anything else is not
                // ours to keep. Only addresses our policy could dial are kept.
                if !crate::protocol::is_provider_key(record.key.as_ref()) {
                    tracing::debug!(provider = %record.provider, "ignored a provider record with a foreign key");
                    return;
                }
                // Each peer may add a bounded number of provider records per window.
                let now = Instant::now();
                let quota = self
                    .provider_quota
                    .entry(record.provider)
                    .or_insert((0, now));
                if now.duration_since(quota.1) >= PROVIDER_WINDOW {
                    *quota = (0, now);
                }
                if quota.0 >= MAX_PROVIDER_RECORDS_PER_PEER {
                    self.refused_provider_records += 1;
                    tracing::debug!(provider = %record.provider, "provider record over the peer's quota");
                    return;
                }
                quota.0 += 1;
                if self.provider_quota.len() > 65_536 {
                    self.provider_quota
                        .retain(|_, (_, start)| now.duration_since(*start) < PROVIDER_WINDOW);
                }
                record.addresses.retain(|a| self.policy.allows_learned(a));
                let announced = <[u8; 32]>::try_from(&record.key.as_ref()[2..])
                    .ok()
                    .map(|id| (record.provider, peerpack_core::ContentId::from_bytes(id)));
                if let Some((peer, content_id)) = announced {
                    self.emit(Event::ProviderAdded { peer, content_id });
                }
                if let Err(e) = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .store_mut()
                    .add_provider(record)
                {
                    tracing::debug!(error = %e, "could not store a provider record");
                }
            }
            other => tracing::trace!(?other, "kademlia inbound request"),
        }
    }

    fn on_kad_query(&mut self, id: QueryId, result: QueryResult, last: bool) {
        match result {
            QueryResult::GetRecord(Ok(kad::GetRecordOk::FoundRecord(found))) => {
                if let Some(p) = self.pending_gets.get_mut(&id) {
                    p.values.push((found.peer, found.record.value));
                }
                if last {
                    self.finish_get(id);
                }
            }
            QueryResult::GetRecord(_) => self.finish_get(id),
            QueryResult::PutRecord(result) => {
                if let Some(reply) = self.pending_puts.remove(&id) {
                    let outcome = match result {
                        Ok(_) => Ok(1),
                        // In networks smaller than the replication factor, or before any peer
                        // is known, the record is still in our own store and served from there.
                        Err(kad::PutRecordError::QuorumFailed { success, .. })
                        | Err(kad::PutRecordError::Timeout { success, .. }) => Ok(success.len()),
                    };
                    let _ = reply.send(outcome);
                }
            }
            QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                providers,
                ..
            })) => {
                if let Some(p) = self.pending_providers.get_mut(&id) {
                    p.providers.extend(providers);
                }
                if last {
                    self.finish_providers(id);
                }
            }
            QueryResult::GetProviders(_) => self.finish_providers(id),
            QueryResult::Bootstrap(r) => tracing::debug!(ok = r.is_ok(), "kademlia bootstrap step"),
            QueryResult::GetClosestPeers(r) => {
                tracing::debug!(ok = r.is_ok(), "closest peers query")
            }
            QueryResult::StartProviding(r) | QueryResult::RepublishProvider(r) => {
                tracing::debug!(ok = r.is_ok(), "provider record published");
            }
            QueryResult::RepublishRecord(r) => {
                tracing::debug!(ok = r.is_ok(), "record republished")
            }
        }
    }

    fn on_gossipsub(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => match self
                .topics
                .iter()
                .find(|(_, t)| t.hash() == message.topic)
                .map(|(t, _)| *t)
            {
                Some(topic) => self.emit(Event::Announcement {
                    topic,
                    source: propagation_source,
                    message_id,
                    data: message.data,
                    origin: message.source,
                }),
                None => {
                    self.swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            MessageAcceptance::Ignore,
                        );
                }
            },
            gossipsub::Event::Subscribed { peer_id, topic } => {
                tracing::debug!(%peer_id, %topic, "peer subscribed");
                for pending in std::mem::take(&mut self.pending_announces) {
                    self.announce(pending);
                }
            }
            other => tracing::debug!(?other, "gossipsub event"),
        }
    }

    fn on_identify(&mut self, event: identify::Event) {
        match event {
            identify::Event::Received { peer_id, info, .. } => {
                let peerpack = info.protocols.iter().any(|p| p.as_ref() == KAD_PROTOCOL);
                let addresses: Vec<Multiaddr> = info
                    .listen_addrs
                    .into_iter()
                    .filter(|a| self.policy.allows_learned(a))
                    .collect();
                if peerpack {
                    for addr in &addresses {
                        let mut addr = addr.clone();
                        if crate::peer_id_of(&addr).is_some() {
                            addr.pop();
                        }
                        self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
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

    fn on_ping(&mut self, event: ping::Event) {
        match event.result {
            Ok(rtt) => self.emit(Event::Ping {
                peer: event.peer,
                rtt,
            }),
            Err(e) => tracing::debug!(peer = %event.peer, error = %e, "ping failed"),
        }
    }

    fn on_blob(&mut self, event: request_response::Event<BlobRequest, BlobResponse>) {
        if let Some((peer, request, channel)) = route(event, &mut self.pending_chunks, "blob") {
            self.emit(Event::BlobRequested {
                peer,
                request,
                channel,
            });
        }
    }

    fn on_sync(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        if let Some((peer, request, channel)) = route(event, &mut self.pending_sync, "sync") {
            self.emit(Event::SyncRequested {
                peer,
                request,
                channel,
            });
        }
    }
}

/// Route one request-response event: a response or an outbound failure answers the pending
/// caller; an inbound request is returned for the node to answer.
fn route<Req, Resp>(
    event: request_response::Event<Req, Resp>,
    pending: &mut HashMap<OutboundRequestId, oneshot::Sender<Result<Resp, Error>>>,
    protocol: &'static str,
) -> Option<(PeerId, Req, ResponseChannel<Resp>)> {
    match event {
        request_response::Event::Message { peer, message, .. } => match message {
            request_response::Message::Request {
                request, channel, ..
            } => {
                return Some((peer, request, channel));
            }
            request_response::Message::Response {
                request_id,
                response,
            } => {
                if let Some(reply) = pending.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
            }
        },
        request_response::Event::OutboundFailure {
            peer,
            request_id,
            error,
            ..
        } => {
            tracing::debug!(%peer, %error, protocol, "request failed");
            if let Some(reply) = pending.remove(&request_id) {
                let _ = reply.send(Err(Error::Request {
                    protocol,
                    peer,
                    reason: RequestError::Outbound(Arc::new(error)),
                }));
            }
        }
        request_response::Event::InboundFailure { peer, error, .. } => {
            tracing::debug!(%peer, %error, protocol, "inbound request failed");
        }
        request_response::Event::ResponseSent { .. } => {}
    }
    None
}
