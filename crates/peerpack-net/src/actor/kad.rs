//! Kademlia in the event loop: the record and provider commands (get, put, store, replace,
//! provide, find providers), their pending queries and deadlines, inbound writes (records go
//! to the node for validation; provider records are kept under a per-peer quota) and query
//! results.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::kad::store::RecordStore;
use libp2p::kad::{self, QueryId, QueryResult, Record, RecordKey};
use tokio::sync::oneshot;

use super::EventLoop;
use crate::error::DhtError;
use crate::error::Error;
use crate::event::Event;
use crate::handle::Found;

/// Provider records one peer may add in [`PROVIDER_WINDOW`].
pub const MAX_PROVIDER_RECORDS_PER_PEER: u32 = 1024;
/// The window of [`MAX_PROVIDER_RECORDS_PER_PEER`].
pub const PROVIDER_WINDOW: Duration = Duration::from_secs(3600);
/// How long past Kademlia's query timeout a DHT write waits before the loop gives up on it.
/// Kademlia ends every query by its timeout, so this only guards against a lost result.
const QUERY_MARGIN: Duration = Duration::from_secs(30);

/// A DHT read under way: the values found so far, with the peer that served each (`None` for
/// our own copy).
pub(super) struct PendingGet {
    values: Vec<(Option<PeerId>, Vec<u8>)>,
    /// Answer at the first value with this record hash.
    want: Option<[u8; 32]>,
    reply: oneshot::Sender<Vec<Found>>,
    started: Instant,
    /// `dht.get`, from the call to the answer.
    span: tracing::Span,
}

impl PendingGet {
    /// Answer with every distinct value found, each with the peers that served it, and count
    /// the query (`ended`: how it ended when nothing was found).
    fn answer(self, metrics: &crate::metrics::NetMetrics, ended: &'static str) {
        let result = if self.values.is_empty() {
            ended
        } else {
            "found"
        };
        metrics.dht_query(crate::metrics::DhtKind::Get, result, self.started.elapsed());
        self.span.record("result", result);
        self.span.record("values", self.values.len());
        let mut found: Vec<Found> = Vec::new();
        for (peer, value) in self.values {
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
        let _ = self.reply.send(found);
    }
}

/// A DHT write under way: when it started, who waits for it, and its `dht.put` span.
pub(super) type PendingPut = (
    Instant,
    oneshot::Sender<Result<usize, Error>>,
    tracing::Span,
);

/// A provider lookup under way: the providers found so far.
pub(super) struct PendingProviders {
    providers: HashSet<PeerId>,
    /// Answer once this many are found (0: at the query's end).
    enough: usize,
    reply: oneshot::Sender<Vec<PeerId>>,
    started: Instant,
    /// `dht.providers`, from the call to the answer.
    span: tracing::Span,
}

impl PendingProviders {
    fn answer(self, metrics: &crate::metrics::NetMetrics, ended: &'static str) {
        let result = if self.providers.is_empty() {
            ended
        } else {
            "found"
        };
        metrics.dht_query(
            crate::metrics::DhtKind::Providers,
            result,
            self.started.elapsed(),
        );
        self.span.record("result", result);
        self.span.record("providers", self.providers.len());
        let _ = self.reply.send(self.providers.into_iter().collect());
    }
}

/// The wait before publishing again a provider record whose publishing query failed (a
/// timeout in a busy network), doubled after each failure up to 64 times.
pub(crate) const PROVIDE_RETRY: Duration = Duration::from_secs(5);
/// Failed publishing queries of one record before it is left to the republish round.
const PROVIDE_TRIES: u32 = 8;

impl EventLoop {
    // ---- commands ----

    pub(super) fn get_record(
        &mut self,
        key: Vec<u8>,
        timeout: Duration,
        want: Option<[u8; 32]>,
        reply: oneshot::Sender<Vec<Found>>,
    ) {
        let id_key = key.clone();
        let key = RecordKey::new(&key);
        let mut values = Vec::new();
        if let Some(local) = self.swarm.behaviour_mut().kad.store_mut().get(&key) {
            values.push((None, local.value.clone()));
        }
        let started = Instant::now();
        let span = |query: Option<QueryId>| {
            tracing::info_span!(
                "dht.get",
                key = %String::from_utf8_lossy(&id_key),
                query = ?query,
                hashed = want.is_some(),
                result = tracing::field::Empty,
                values = tracing::field::Empty,
                contacted = tracing::field::Empty,
            )
        };
        // The value wanted is here already: no query.
        if want.is_some_and(|w| values.iter().any(|(_, v)| wanted(v, w))) {
            let span = span(None);
            span.record("contacted", 0);
            PendingGet {
                values,
                want,
                reply,
                started,
                span,
            }
            .answer(&self.metrics, "found");
            return;
        }
        let id = self.swarm.behaviour_mut().kad.get_record(key);
        self.pending_gets.insert(
            id,
            PendingGet {
                values,
                want,
                reply,
                started,
                span: span(Some(id)),
            },
            started + timeout,
        );
    }

    pub(super) fn put_record(
        &mut self,
        key: Vec<u8>,
        value: Vec<u8>,
        reply: oneshot::Sender<Result<usize, Error>>,
    ) {
        let key_bytes = key.clone();
        let record = Record::new(key, value);
        match self
            .swarm
            .behaviour_mut()
            .kad
            .put_record(record, kad::Quorum::One)
        {
            Ok(id) => {
                let started = Instant::now();
                let deadline = started + self.query_timeout + QUERY_MARGIN;
                let span = tracing::info_span!(
                    "dht.put",
                    key = %String::from_utf8_lossy(&key_bytes),
                    query = ?id,
                    result = tracing::field::Empty,
                    stored_at = tracing::field::Empty,
                );
                self.pending_puts
                    .insert(id, (started, reply, span), deadline);
            }
            Err(e) => {
                self.metrics.dht_query(
                    crate::metrics::DhtKind::Put,
                    "refused",
                    std::time::Duration::ZERO,
                );
                let _ = reply.send(Err(Error::Dht(DhtError::Store(e))));
            }
        }
    }

    pub(super) fn store_record(&mut self, key: Vec<u8>, value: Vec<u8>) {
        let record = Record::new(key, value);
        if let Err(e) = self.swarm.behaviour_mut().kad.store_mut().put(record) {
            tracing::warn!(error = %e, "could not store a DHT record locally");
        }
    }

    pub(super) fn replace_records(
        &mut self,
        exact: Vec<Vec<u8>>,
        prefixes: Vec<Vec<u8>>,
        records: Vec<(Vec<u8>, Vec<u8>)>,
    ) {
        // The catalogue changed these records: drop the cached copies (later reads go to the
        // backing, which reads the catalogue), then hold the new ones.
        self.swarm
            .behaviour_mut()
            .kad
            .store_mut()
            .forget(&exact, &prefixes);
        for (key, value) in records {
            self.store_record(key, value);
        }
    }

    pub(super) fn start_providing(&mut self, key: Vec<u8>) -> Result<(), Error> {
        self.swarm
            .behaviour_mut()
            .kad
            .start_providing(RecordKey::new(&key))
            .map(|_| ())
            .map_err(|e| Error::Dht(DhtError::Store(e)))
    }

    /// Publish again the provider records whose retry is due (see [`PROVIDE_RETRY`]).
    pub(super) fn retry_provides(&mut self, now: Instant) {
        let due: Vec<RecordKey> = self
            .provide_retries
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            // Not due again until this query answers.
            if let Some(r) = self.provide_retries.get_mut(&key) {
                r.0 = now + Duration::from_secs(24 * 3600);
            }
            if let Err(e) = self.swarm.behaviour_mut().kad.start_providing(key.clone()) {
                tracing::warn!(content_id = %hex_key(key.as_ref()), error = %e, "provider record not stored");
                self.provide_retries.remove(&key);
            }
        }
    }

    pub(super) fn stop_providing(&mut self, key: Vec<u8>) {
        self.provide_retries.remove(&RecordKey::new(&key));
        self.swarm
            .behaviour_mut()
            .kad
            .stop_providing(&RecordKey::new(&key));
    }

    pub(super) fn get_providers(
        &mut self,
        key: Vec<u8>,
        timeout: Duration,
        enough: usize,
        reply: oneshot::Sender<Vec<PeerId>>,
    ) {
        let provider_key = key.clone();
        let id = self
            .swarm
            .behaviour_mut()
            .kad
            .get_providers(RecordKey::new(&key));
        self.pending_providers.insert(
            id,
            PendingProviders {
                providers: HashSet::new(),
                enough,
                reply,
                started: Instant::now(),
                span: tracing::info_span!(
                    "dht.providers",
                    content_id = %hex_key(&provider_key),
                    query = ?id,
                    result = tracing::field::Empty,
                    providers = tracing::field::Empty,
                    contacted = tracing::field::Empty,
                    enough,
                ),
            },
            Instant::now() + timeout,
        );
    }

    /// Answer the DHT operations past their deadline. Reads and provider lookups end at the
    /// caller's timeout with what they found; a write still unanswered fails.
    pub(super) fn expire_dht(&mut self, now: Instant) {
        for (id, p) in self.pending_gets.expire(now) {
            self.finish_query(id);
            p.answer(&self.metrics, "timeout");
        }
        for (id, p) in self.pending_providers.expire(now) {
            self.finish_query(id);
            p.answer(&self.metrics, "timeout");
        }
        for (id, (started, reply, span)) in self.pending_puts.expire(now) {
            span.record("result", "timeout");
            tracing::debug!(?id, "DHT write unanswered at its deadline");
            self.metrics
                .dht_query(crate::metrics::DhtKind::Put, "timeout", started.elapsed());
            let _ = reply.send(Err(Error::Dht(DhtError::Timeout)));
        }
    }

    fn finish_query(&mut self, id: QueryId) {
        if let Some(mut q) = self.swarm.behaviour_mut().kad.query_mut(&id) {
            q.finish();
        }
    }

    fn finish_get(&mut self, id: QueryId) {
        self.finish_query(id);
        if let Some(p) = self.pending_gets.remove(&id) {
            p.answer(&self.metrics, "not_found");
        }
    }

    fn finish_providers(&mut self, id: QueryId) {
        self.finish_query(id);
        if let Some(p) = self.pending_providers.remove(&id) {
            p.answer(&self.metrics, "not_found");
        }
    }

    // ---- events ----

    pub(super) fn on_kad(&mut self, event: kad::Event) {
        match event {
            kad::Event::InboundRequest { request } => self.on_kad_inbound(request),
            kad::Event::OutboundQueryProgressed {
                id,
                result,
                step,
                stats,
            } => {
                // Peers asked so far, at every step: a get may end before the last.
                let contacted = stats.num_requests();
                if let Some(p) = self.pending_gets.get_mut(&id) {
                    p.span.record("contacted", contacted);
                } else if let Some(p) = self.pending_providers.get_mut(&id) {
                    p.span.record("contacted", contacted);
                }
                self.on_kad_query(id, result, step.last)
            }
            kad::Event::RoutingUpdated {
                peer, is_new_peer, ..
            } => {
                tracing::debug!(%peer, is_new_peer, "routing table updated");
            }
            kad::Event::UnroutablePeer { peer } => tracing::debug!(%peer, "unroutable peer"),
            // A peer this node dialled that speaks Kademlia (its address is the one dialled,
            // so the policy allowed it): taken in where its bucket has room, as Identify's
            // addresses are (`connection.rs`).
            kad::Event::RoutablePeer { peer, address } => {
                tracing::debug!(%peer, %address, "routable peer");
                if self.policy.allows_learned(&address) && self.routing_entry(&peer).has_room() {
                    self.swarm.behaviour_mut().kad.add_address(&peer, address);
                }
            }
            kad::Event::PendingRoutablePeer { peer, address } => {
                tracing::debug!(%peer, %address, "routable peer, pending");
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
                record: Some(record),
            } => self.on_add_provider(record),
            other => tracing::trace!(?other, "kademlia inbound request"),
        }
    }

    fn on_add_provider(&mut self, mut record: kad::ProviderRecord) {
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
            self.metrics.provider_record("refused", "quota");
            tracing::debug!(provider = %record.provider, "provider record over the peer's quota");
            return;
        }
        quota.0 += 1;
        if self.provider_quota.len() > 65_536 {
            self.provider_quota
                .retain(|_, (_, start)| now.duration_since(*start) < PROVIDER_WINDOW);
        }
        // Kademlia announces only confirmed external addresses, often none (behind NAT, on
        // loopback): keep the addresses the routing table knows for the provider, so that the
        // record still leads to it after this node restarts and no longer knows it.
        if record.addresses.is_empty() {
            record.addresses = self.routing_entry(&record.provider).addresses;
        }
        // Nor may the routing table know it (a full bucket takes no newcomer): then the
        // addresses it advertised through Identify on the connection that brought the record.
        if record.addresses.is_empty()
            && let Some(addrs) = self.advertised.get(&record.provider)
        {
            record.addresses = addrs.clone();
        }
        record.addresses.retain(|a| self.policy.allows_learned(a));
        let announced = <[u8; 32]>::try_from(&record.key.as_ref()[2..])
            .ok()
            .map(|id| (record.provider, peerpack_core::ContentId::from_bytes(id)));
        match self
            .swarm
            .behaviour_mut()
            .kad
            .store_mut()
            .add_provider(record)
        {
            Ok(()) => {
                self.metrics.provider_record("kept", "");
                // Only a record kept tells the node of a provider: one refused leaves no
                // trace in its database either.
                if let Some((peer, content_id)) = announced {
                    self.emit(Event::ProviderAdded { peer, content_id });
                }
            }
            Err(e) => {
                self.full_provider_records += 1;
                self.metrics.provider_record("refused", "full");
                tracing::debug!(error = %e, "provider record refused: the store is full");
            }
        }
    }

    fn on_kad_query(&mut self, id: QueryId, result: QueryResult, last: bool) {
        match result {
            QueryResult::GetRecord(Ok(kad::GetRecordOk::FoundRecord(found))) => {
                let mut done = last;
                if let Some(p) = self.pending_gets.get_mut(&id) {
                    done |= p.want.is_some_and(|w| wanted(&found.record.value, w));
                    p.values.push((found.peer, found.record.value));
                }
                if done {
                    self.finish_get(id);
                }
            }
            QueryResult::GetRecord(_) => self.finish_get(id),
            QueryResult::PutRecord(result) => {
                if let Some((started, reply, span)) = self.pending_puts.remove(&id) {
                    let (outcome, result) = match result {
                        Ok(_) => (Ok(1), "stored"),
                        // In networks smaller than the replication factor, or before any peer
                        // is known, the record is still in our own store and served from there.
                        Err(kad::PutRecordError::QuorumFailed { success, .. }) => {
                            (Ok(success.len()), "quorum_failed")
                        }
                        Err(kad::PutRecordError::Timeout { success, .. }) => {
                            (Ok(success.len()), "timeout")
                        }
                    };
                    self.metrics
                        .dht_query(crate::metrics::DhtKind::Put, result, started.elapsed());
                    span.record("result", result);
                    if let Ok(n) = &outcome {
                        span.record("stored_at", *n);
                    }
                    let _ = reply.send(outcome);
                }
            }
            QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                providers,
                ..
            })) => {
                let enough = self.pending_providers.get_mut(&id).is_some_and(|p| {
                    p.providers.extend(providers);
                    p.enough > 0 && p.providers.len() >= p.enough
                });
                if enough {
                    // Ended early: the caller asked for no more.
                    self.finish_query(id);
                    if let Some(p) = self.pending_providers.remove(&id) {
                        p.answer(&self.metrics, "found");
                    }
                } else if last {
                    self.finish_providers(id);
                }
            }
            QueryResult::GetProviders(_) => self.finish_providers(id),
            QueryResult::Bootstrap(r) => tracing::debug!(ok = r.is_ok(), "kademlia bootstrap step"),
            QueryResult::GetClosestPeers(r) => {
                tracing::debug!(ok = r.is_ok(), "closest peers query")
            }
            QueryResult::StartProviding(Ok(ok)) | QueryResult::RepublishProvider(Ok(ok)) => {
                tracing::debug!("provider record published");
                self.provide_retries.remove(&ok.key);
            }
            // Peers that look the archive up may not find this node until it is published:
            // try again soon, and say so where an operator looks.
            QueryResult::StartProviding(Err(e)) | QueryResult::RepublishProvider(Err(e)) => {
                let key = e.key().clone();
                let failed = self.provide_retries.get(&key).map_or(0, |r| r.1) + 1;
                let provided = self
                    .swarm
                    .behaviour_mut()
                    .kad
                    .store_mut()
                    .provided_keys()
                    .any(|k| *k == key);
                if provided && failed <= PROVIDE_TRIES {
                    let wait = PROVIDE_RETRY.saturating_mul(1 << (failed - 1).min(6));
                    tracing::warn!(content_id = %hex_key(key.as_ref()), error = %e, failed, retry_in_s = wait.as_secs(), "provider record not published; trying again");
                    self.provide_retries
                        .insert(key, (Instant::now() + wait, failed));
                } else {
                    tracing::warn!(content_id = %hex_key(key.as_ref()), error = %e, failed, "provider record not published; the next republish round tries again");
                    self.provide_retries.remove(&key);
                }
            }
            QueryResult::RepublishRecord(r) => {
                tracing::debug!(ok = r.is_ok(), "record republished")
            }
        }
    }
}

/// Whether `value` is the one whose record hash is `want`.
fn wanted(value: &[u8], want: [u8; 32]) -> bool {
    peerpack_core::RecordHash::of(value).0 == want
}

/// A provider key (a content id as a multihash) as `blake3:<hex>` for a span.
fn hex_key(key: &[u8]) -> String {
    let digest = key.get(2..).unwrap_or(key);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("blake3:{hex}")
}
