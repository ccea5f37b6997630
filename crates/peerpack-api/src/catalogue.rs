//! Search and package information: what `GET /v1/search` and `GET /v1/packages/{name}` answer,
//! and what `POST /v1/publish` takes and answers.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One search result.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchHit {
    /// Package name.
    pub name: String,
    /// Latest version.
    pub version: String,
    /// Description.
    pub description: String,
    /// Content id of the latest version.
    pub content_id: String,
    /// Relevance (BM25).
    pub score: f32,
    /// Several keys claim the name and this node has chosen none: nothing installs under it.
    #[serde(default)]
    pub contested: bool,
    /// The name has an owner here, and other keys claim it too (`info` shows them).
    #[serde(default)]
    pub disputed: bool,
    /// Peers that hold the latest version's archive and can serve it now: this node if it
    /// holds it, and the known providers connected now. 0: nobody online has it, so an
    /// install would have to wait for a provider.
    #[serde(default)]
    pub providers_online: u64,
}

/// A search request.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct Search {
    /// Free text.
    #[serde(default)]
    pub q: String,
    /// Category filter.
    pub category: Option<String>,
    /// Tag filters, comma-separated.
    pub tags: Option<String>,
    /// Most results (default 20).
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 1000))]
    pub limit: Option<usize>,
    /// Leave out packages whose known providers all score below this.
    #[cfg_attr(feature = "openapi", param(minimum = 0, maximum = 1))]
    pub min_reputation: Option<f64>,
}

/// One version in [`Info`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionInfo {
    /// Version.
    pub version: String,
    /// Content id.
    pub content_id: String,
    /// Archive size in bytes.
    pub archive_size: u64,
    /// Unix seconds.
    pub published_at: u64,
    /// Record sequence number.
    pub seq: u64,
    /// Hash of the signed record.
    pub record_hash: String,
    /// Description.
    pub description: String,
    /// License.
    pub license: String,
    /// Authors.
    pub authors: Vec<String>,
    /// Categories.
    pub categories: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Home page.
    pub homepage: Option<String>,
    /// Repository.
    pub repository: Option<String>,
    /// Dependencies.
    pub dependencies: BTreeMap<String, String>,
    /// Peers known to hold the archive.
    pub providers: Vec<String>,
    /// Why the archive was flagged unsafe (it matched its content id, but the extractor
    /// refused it); such a version is never installed here.
    #[serde(default)]
    pub unsafe_reason: Option<String>,
    /// Yanked by its owner, with the reason (possibly empty): installs skip it unless a lock
    /// file names it.
    #[serde(default)]
    pub yanked: Option<String>,
    /// Deprecated by its owner, with the owner's message.
    #[serde(default)]
    pub deprecated: Option<String>,
}

/// Everything known about a package.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Info {
    /// Package name.
    pub name: String,
    /// `owned`, or `contested` when several keys claim it and this node has chosen none.
    pub status: String,
    /// The key that owns the name here (none while contested).
    pub owner: Option<String>,
    /// Why it owns it: `trusted` (pinned), `curator`, or `first-seen`.
    pub owner_source: Option<String>,
    /// The curator that vouches for the owner, when `owner_source` is `curator`.
    pub curator: Option<String>,
    /// Claims by other keys: disputed claims, or every claimant of a contested name.
    pub claims: Vec<ClaimView>,
    /// Unsafe archives this node found signed by the owner's key.
    #[serde(default)]
    pub owner_unsafe_archives: u64,
    /// Sequence number of the newest index record known.
    pub index_seq: Option<u64>,
    /// Where the answer came from: `local`, or `dht` when the node had to ask the network.
    pub source: String,
    /// Versions, highest first.
    pub versions: Vec<VersionInfo>,
}

/// A claim as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClaimView {
    /// The claiming key.
    pub publisher: String,
    /// The highest index record sequence number seen from it (0 if none).
    pub seq: u64,
    /// Versions it claims.
    pub versions: Vec<String>,
    /// Peers that served it.
    pub peers: Vec<String>,
    /// First seen, Unix seconds.
    pub first_seen: i64,
    /// Last seen, Unix seconds.
    pub last_seen: i64,
}

/// The body of `POST /v1/publish`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// The schema keeps the name the OpenAPI document has always used.
#[cfg_attr(feature = "openapi", schema(as = PublishBody))]
pub struct PublishRequest {
    /// The package directory, absolute: the node does not share the caller's working
    /// directory.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub path: PathBuf,
    /// Publish even files that look like secrets (private keys, credential files); without
    /// it such a package is refused with the list of those files.
    #[serde(default)]
    pub allow_secrets: bool,
    /// Publish even when the dependencies cannot be resolved on this node; without it such a
    /// package is refused (`bad_request`) with the resolver's reason.
    #[serde(default)]
    pub allow_unresolved: bool,
    /// Answer only once this many other peers provide the archive (a mirror, or peers that
    /// installed it), so that a short-lived publisher can exit. 0: do not wait.
    #[serde(default)]
    pub wait_replicas: u32,
    /// How long to wait for them, in seconds (default 300); then the answer is
    /// `unavailable`, and the package stays published.
    #[serde(default)]
    pub wait_timeout_s: Option<u64>,
    /// Answer only once the package record, the index record and the provider record are
    /// written to the DHT, with `dht_peers` set. Without it (and without `wait_replicas`) the
    /// answer comes as soon as the package is stored and announced, and the DHT writes go on
    /// in the background.
    #[serde(default)]
    pub wait_dht: bool,
}

/// What a publish did.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Published {
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Content id of the archive.
    pub content_id: String,
    /// Archive size in bytes.
    pub archive_size: u64,
    /// Whether this exact version was already published (a re-announce).
    pub republished: bool,
    /// Remote peers that stored the package record in the DHT; null when the DHT writes went
    /// on in the background (without `wait_dht` or `wait_replicas`).
    #[serde(default)]
    pub dht_peers: Option<usize>,
    /// Peers subscribed to announcements when it went out.
    pub announced_to: usize,
    /// Other peers providing the archive when the answer was sent (only with
    /// `wait_replicas`).
    #[serde(default)]
    pub replicas: Option<usize>,
}

/// The body of `POST /v1/yank`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct YankRequest {
    /// `NAME@VERSION`: one exact version.
    #[cfg_attr(feature = "openapi", schema(example = "rust-cli@1.2.0"))]
    pub package: String,
    /// Why, shown to those who look (at most 512 characters).
    #[serde(default)]
    pub reason: Option<String>,
    /// Take the yank back.
    #[serde(default)]
    pub undo: bool,
}

/// The body of `POST /v1/deprecate`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeprecateRequest {
    /// `NAME` (every version) or `NAME@REQ` (the versions that match).
    #[cfg_attr(feature = "openapi", schema(example = "rust-cli@<1.2"))]
    pub package: String,
    /// The message for those who install it (at most 512 characters); none takes the
    /// deprecation back.
    #[serde(default)]
    pub message: Option<String>,
}

/// What a yank or a deprecation changed: the owner's new signed index.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Amended {
    /// Package name.
    pub name: String,
    /// The versions whose state changed.
    pub versions: Vec<String>,
    /// The new index record's sequence number.
    pub index_seq: u64,
    /// Peers subscribed to announcements when it went out.
    pub announced_to: usize,
}
