//! Peers and the node itself: what `GET /v1/peers`, `/v1/peers/{id}`, `/v1/blocks` and
//! `/v1/status` answer, and what `POST /v1/bootstrap` and `DELETE /v1/blocks/{id}` take and
//! answer.

use serde::{Deserialize, Serialize};

/// A peer as `peers` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PeerView {
    /// Peer id.
    pub peer_id: String,
    /// Whether connected now.
    pub connected: bool,
    /// Known addresses.
    pub addresses: Vec<String>,
    /// Identify agent.
    pub agent: String,
    /// Identify protocol version.
    pub protocol_version: String,
    /// First seen, Unix seconds.
    pub first_seen: i64,
    /// Last seen, Unix seconds.
    pub last_seen: i64,
    /// Seconds since last seen.
    pub last_seen_ago_s: i64,
    /// Latest ping, ms.
    pub latency_ms: Option<f64>,
    /// Connections opened.
    pub connections: i64,
    /// Valid records received.
    pub valid_records: i64,
    /// Invalid messages received.
    pub invalid_messages: i64,
    /// Archive pieces it delivered that verified.
    pub downloads_ok: i64,
    /// Requests to it that failed, timed out or were refused.
    pub downloads_failed: i64,
    /// Verified archive bytes received from it.
    pub bytes_served: i64,
    /// Moving average of its piece response time, ms.
    pub response_ms: Option<f64>,
    /// Pieces or outlines from it that failed verification.
    pub invalid_data: i64,
    /// Reputation score in [0, 1].
    pub score: f64,
    /// Blocked until then (Unix seconds) for misbehaving; 0 when not blocked.
    #[serde(default)]
    pub blocked_until: i64,
}

/// Node status.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusView {
    /// Peer id.
    pub peer_id: String,
    /// Listen addresses.
    pub listen_addrs: Vec<String>,
    /// API URL.
    pub api: String,
    /// Publisher key.
    pub publisher: String,
    /// Connected peers.
    pub connected_peers: usize,
    /// Known peers.
    pub known_peers: usize,
    /// Package versions known.
    pub catalogue_size: u64,
    /// Package names known.
    pub packages: u64,
    /// Kademlia routing table entries.
    pub routing_table_size: usize,
    /// Address policy.
    pub policy: String,
    /// Dials refused by the address policy.
    pub refused_dials: u64,
    /// Inbound provider records refused because their peer was over its quota.
    #[serde(default)]
    pub refused_provider_records: u64,
    /// Seconds since start.
    pub uptime_s: u64,
    /// Archives in the blob store.
    pub archives: u64,
    /// Bytes served to peers since start.
    pub bytes_uploaded: u64,
    /// Verified bytes downloaded from peers since start.
    pub bytes_downloaded: u64,
    /// Downloads finished since start.
    pub downloads_ok: u64,
    /// Downloads that failed since start.
    pub downloads_failed: u64,
    /// Downloads under way: content id, total bytes, bytes done.
    pub downloading: Vec<(String, u64, u64)>,
    /// The bootstrap peers from the command line and the config file, and whether each is
    /// reached.
    #[serde(default)]
    pub bootstrap: Vec<BootstrapView>,
    /// The record cache's hit and miss counters.
    pub record_cache: CacheStats,
    /// Upload limit in bytes per second, if any.
    pub upload_limit: Option<u64>,
    /// Archive bytes per second served to peers, over about the last 10 seconds.
    #[serde(default)]
    pub upload_rate: f64,
    /// Verified archive bytes per second downloaded, over about the last 10 seconds.
    #[serde(default)]
    pub download_rate: f64,
    /// DHT queries this node made since start, by kind.
    #[serde(default)]
    pub dht_queries: Vec<DhtQueryStats>,
    /// Gossip messages validated since start.
    #[serde(default)]
    pub gossip: GossipStats,
    /// Records and requests from other peers refused since start, by rule.
    #[serde(default)]
    pub refusals: Vec<RefusalCount>,
    /// Peers blocked now for misbehaving.
    #[serde(default)]
    pub blocked_peers: usize,
    /// What this node keeps in the DHT for others, and its republishing.
    #[serde(default)]
    pub dht: DhtView,
}

/// What a node keeps in the DHT for other peers, and how it keeps its own part fresh.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DhtView {
    /// Provider records of other peers held (in `peerpack.db`).
    pub provider_records: u64,
    /// Most kept (`dht.max_provider_records`); past it new ones are refused.
    pub max_provider_records: u64,
    /// Archives this node announces itself as a provider of.
    pub provided: u64,
    /// The last round that put this node's own records back into the DHT, if any since start.
    pub records_round: Option<RoundView>,
    /// The last round that announced this node's archives again, if any since start.
    pub archives_round: Option<RoundView>,
    /// Seconds to the next round of records (`dht.republish_interval`).
    pub next_records_in_s: Option<u64>,
    /// Seconds to the next round of archives (`dht.reprovide_interval`).
    pub next_archives_in_s: Option<u64>,
    /// A round is due but waits for the node's first peer.
    pub waiting_for_peer: bool,
}

/// One finished republishing round.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoundView {
    /// Seconds since it ended.
    pub ago_s: u64,
    /// How long it took, ms.
    pub took_ms: u64,
    /// Records put, or archives announced.
    pub done: u64,
    /// Of those, how many failed: records that no peer stored, archives whose announcement
    /// could not start (an announcement that reached no peer is retried by the network
    /// layer, with a warning in the log, and not counted here).
    pub failed: u64,
}

/// DHT queries of one kind since the node started (`peerpack.dht.queries` and
/// `peerpack.dht.query.duration`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DhtQueryStats {
    /// `get`, `put` or `providers`.
    pub kind: String,
    /// Queries by result (`found`, `not_found`, `timeout`, `stored`, `quorum_failed`,
    /// `refused`).
    pub results: std::collections::BTreeMap<String, u64>,
    /// Median time to an answer, ms, estimated from the histogram's buckets.
    pub p50_ms: Option<f64>,
    /// 99th percentile of the time to an answer, ms, estimated from the histogram's buckets.
    pub p99_ms: Option<f64>,
}

/// Gossip messages validated since start (`peerpack.gossip.messages`), by result.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GossipStats {
    /// Valid: forwarded.
    pub accepted: u64,
    /// Bad bytes: dropped, and the sender penalised.
    pub rejected: u64,
    /// Valid but not taken (stale, a conflict, another key's claim): dropped.
    pub ignored: u64,
}

/// How often one hardening rule refused something since start.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefusalCount {
    /// `record` (from `peerpack.records.refused`), `request` (`peerpack.requests.refused`),
    /// `dial` (`peerpack.dials.refused`) or `provider_record`
    /// (`peerpack.dht.provider_records`).
    pub what: String,
    /// How it came: for a record `gossip`, `sync`, `dht` or `lookup`; for a request its
    /// protocol, `sync` or `blob`; empty otherwise.
    pub via: String,
    /// Why: `invalid`, `conflict`, `stale`, `claim`, `untrusted`, `rate`, `busy`,
    /// `malformed`, `policy`, `quota`.
    pub reason: String,
    /// How many.
    pub count: u64,
}

/// Result of dialling one bootstrap address.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Dialled {
    /// The address.
    pub address: String,
    /// The peer it names.
    pub peer_id: String,
    /// A connection to the peer is open.
    #[serde(default)]
    pub connected: bool,
    /// Why not, when not.
    #[serde(default)]
    pub error: Option<String>,
}

/// A bootstrap peer the node keeps dialling until it answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BootstrapView {
    /// The address, with `/p2p/<peer id>`.
    pub address: String,
    /// Connected now.
    pub connected: bool,
    /// Failed dials since the last success.
    pub failures: u32,
    /// The last dial's error.
    pub last_error: Option<String>,
    /// Seconds to the next dial, when not connected and not dialling now.
    pub retry_in_s: Option<u64>,
}

/// Hit and miss counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CacheStats {
    /// Lookups answered from memory.
    pub hits: u64,
    /// Lookups that went to the database.
    pub misses: u64,
    /// Names held now.
    pub entries: u64,
}

/// The query of `GET /v1/peers`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct PeersQuery {
    /// Leave out peers that score below this (0 to 1).
    #[cfg_attr(feature = "openapi", param(minimum = 0, maximum = 1))]
    pub min_reputation: Option<f64>,
}

/// The body of `POST /v1/bootstrap`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// The schema keeps the name the OpenAPI document has always used.
#[cfg_attr(feature = "openapi", schema(as = BootstrapBody))]
pub struct BootstrapRequest {
    /// Addresses to dial, each ending in `/p2p/<peer id>` and inside the node's address policy.
    pub addrs: Vec<String>,
}

/// The answer of `DELETE /v1/blocks/{peer_id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Unblocked {
    /// The peer.
    pub peer_id: String,
    /// Whether it was blocked.
    pub was_blocked: bool,
}

/// The query of `GET /v1/dht/providers/{content_id}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct DhtProvidersQuery {
    /// End the lookup at the first provider found, as an install of a small archive does,
    /// instead of running the whole query.
    #[serde(default)]
    pub first: bool,
}

/// The answer of `GET /v1/dht/providers/{content_id}`: who the DHT says holds an archive.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DhtProviders {
    /// The archive asked for, `blake3:<hex>`.
    pub content_id: String,
    /// The peers found providing it, in the order found. This node is among them when it
    /// provides the archive itself.
    pub providers: Vec<String>,
    /// Whether the lookup ended at the first provider found (`?first=true`).
    pub first: bool,
    /// Time the lookup took, ms.
    pub took_ms: f64,
}

/// The answer of `GET /v1/dht/names/{name}`: the index records the DHT holds for a name,
/// read afresh, one claim per publisher key. Nothing is stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DhtName {
    /// The name asked for.
    pub name: String,
    /// One entry per key with a valid signed index record of the name, highest `seq` first.
    pub claims: Vec<DhtClaim>,
    /// Values found that were not a valid index record of this name (bad signature, other
    /// name, malformed).
    pub invalid: usize,
    /// Time the lookup took, ms.
    pub took_ms: f64,
}

/// One key's index record of a name, as the DHT returned it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DhtClaim {
    /// The publisher key, `ed25519:<hex>`.
    pub publisher: String,
    /// The highest index `seq` found for that key.
    pub seq: u64,
    /// The versions that record names, highest first.
    pub versions: Vec<String>,
    /// The peers that returned one of that key's records.
    pub peers: Vec<String>,
}

/// The answer of `POST /v1/ui/link`: a one-time sign-in link to the node's web page for its
/// operator (`peerpack ui`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UiLink {
    /// The link: `http://HOST:PORT/ui/login?code=CODE`. Following it once opens a session
    /// whose cookie lets that browser install and pin from the page.
    pub url: String,
    /// Seconds the link stays good if not followed.
    pub expires_in_s: u64,
}
