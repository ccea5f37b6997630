//! The [`NetHandle`] everyone but the event loop holds, the [`Command`]s it sends, what a DHT
//! read returns ([`Found`]), and the bounds of the channels between the loop and the node.

use std::time::Duration;

use libp2p::gossipsub::{MessageAcceptance, MessageId};
use libp2p::request_response::ResponseChannel;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

use crate::blob::{BlobRequest, BlobResponse};
use crate::error::Error;
use crate::protocol::Topic;
use crate::status::{PeerInfo, Status};
use crate::sync::{SyncRequest, SyncResponse};

/// Bound of the command channel.
pub const COMMAND_CAPACITY: usize = 1024;
/// Bound of the event channel to the node.
pub const EVENT_CAPACITY: usize = 4096;

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
    /// Dial an address (with `/p2p/<id>`) and answer once connected, failed, or `timeout`.
    Connect {
        /// The address.
        addr: Multiaddr,
        /// A peer advertised it (a redial), rather than the operator naming it: it must pass
        /// the policy's rules for learned addresses, and is added to nothing.
        learned: bool,
        /// Deadline.
        timeout: Duration,
        /// The peer once connected, or why not.
        reply: oneshot::Sender<Result<PeerId, Error>>,
    },
    /// Collect every value the DHT holds under `key`, until the query ends or `timeout`.
    GetRecord {
        /// The key.
        key: Vec<u8>,
        /// Deadline.
        timeout: Duration,
        /// Stop at the first value whose record hash (BLAKE3 of its bytes) is this one: a
        /// value the caller can recognise by itself, as a version record its owner's index
        /// names. `None`: gather every value until the query ends.
        want: Option<[u8; 32]>,
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
    /// Store a validated record locally (from [`Event::InboundRecord`](crate::Event::InboundRecord), sync or startup).
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
        /// Answer once this many providers are found; 0: at the query's end.
        enough: usize,
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
    /// The verdict on an [`Event::Announcement`](crate::Event::Announcement).
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
    /// Answer a [`Event::SyncRequested`](crate::Event::SyncRequested).
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
    /// Answer a [`Event::BlobRequested`](crate::Event::BlobRequested).
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
    /// The routing table: each peer with the addresses the table holds for it.
    RoutingTable {
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

/// A command with the span of the code that sent it: the event loop handles it inside that
/// span, and the work it starts (a DHT query, a request to a peer) gets a span of its own
/// under it, which ends with the answer.
#[derive(Debug)]
pub struct Envelope {
    /// The sender's span.
    pub span: tracing::Span,
    /// The command.
    pub cmd: Command,
}

/// A cheap, cloneable handle to the event loop.
#[derive(Debug, Clone)]
pub struct NetHandle {
    tx: mpsc::Sender<Envelope>,
    local_peer_id: PeerId,
}

impl NetHandle {
    pub(crate) fn new(tx: mpsc::Sender<Envelope>, local_peer_id: PeerId) -> Self {
        Self { tx, local_peer_id }
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Send a command without waiting for an answer.
    pub async fn send(&self, cmd: Command) -> Result<(), Error> {
        self.tx
            .send(Envelope {
                span: tracing::Span::current(),
                cmd,
            })
            .await
            .map_err(|_| Error::Stopped)
    }

    /// Send a command from a thread that is not running async code (e.g. inside
    /// `spawn_blocking`, while holding the store's lock, so that DHT store updates are queued
    /// in the order the database committed them). Never call it from async code.
    pub fn send_blocking(&self, cmd: Command) -> Result<(), Error> {
        self.tx
            .blocking_send(Envelope {
                span: tracing::Span::current(),
                cmd,
            })
            .map_err(|_| Error::Stopped)
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(make(reply)).await?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Dial `addr` (with `/p2p/<id>`) and wait for the connection, at most `timeout`.
    pub async fn connect(&self, addr: Multiaddr, timeout: Duration) -> Result<PeerId, Error> {
        self.ask(|reply| Command::Connect {
            addr,
            learned: false,
            timeout,
            reply,
        })
        .await?
    }

    /// Redial a peer at an address it once advertised (held to the policy's rules for learned
    /// addresses), and wait for the connection, at most `timeout`.
    pub async fn reconnect(&self, addr: Multiaddr, timeout: Duration) -> Result<PeerId, Error> {
        self.ask(|reply| Command::Connect {
            addr,
            learned: true,
            timeout,
            reply,
        })
        .await?
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
            want: None,
            reply,
        })
        .await
    }

    /// The value stored under `key` whose record hash is `hash`, if the DHT has it. The query
    /// ends at the first such value, not when every peer near the key has answered: a value
    /// known by its hash needs no other to be judged against.
    pub async fn get_record_hashed(
        &self,
        key: Vec<u8>,
        hash: [u8; 32],
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>, Error> {
        let found = self
            .ask(|reply| Command::GetRecord {
                key,
                timeout,
                want: Some(hash),
                reply,
            })
            .await?;
        Ok(found
            .into_iter()
            .map(|f| f.value)
            .find(|v| peerpack_core::RecordHash::of(v).0 == hash))
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

    /// Providers of `key`: every one the Kademlia query finds, until it ends (it waits for the
    /// closest peers to answer) or `timeout`.
    pub async fn get_providers(
        &self,
        key: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<PeerId>, Error> {
        self.get_providers_until(key, timeout, 0).await
    }

    /// Providers of `key`, answered as soon as `enough` are found (this node's own store
    /// answers first), else as [`get_providers`](Self::get_providers). A caller that ends early
    /// may have missed providers: when those it got fail, it should ask again with `enough` 0.
    pub async fn get_providers_until(
        &self,
        key: Vec<u8>,
        timeout: Duration,
        enough: usize,
    ) -> Result<Vec<PeerId>, Error> {
        self.ask(|reply| Command::GetProviders {
            key,
            timeout,
            enough,
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
        self.tx
            .try_send(Envelope {
                span: tracing::Span::current(),
                cmd,
            })
            .map_err(|_| Error::Stopped)
    }

    /// Stop the event loop.
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.send(Command::Shutdown).await
    }

    /// Connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, Error> {
        self.ask(|reply| Command::Peers { reply }).await
    }

    /// The Kademlia routing table: each peer in it, connected or not, with the addresses the
    /// table holds for it.
    pub async fn routing_table(&self) -> Result<Vec<PeerInfo>, Error> {
        self.ask(|reply| Command::RoutingTable { reply }).await
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
