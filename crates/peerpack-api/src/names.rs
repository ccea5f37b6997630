//! Owners and curators: what `/v1/trust` and `/v1/curate` take and answer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One pinned owner.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrustView {
    /// Package name.
    pub name: String,
    /// The pinned key.
    pub owner: String,
    /// When it was pinned, Unix seconds.
    pub trusted_at: i64,
    /// Whether the catalogue holds any of the key's versions of the name.
    pub versions_known: usize,
}

/// This node's own curator list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CuratorView {
    /// The curator key (this node's publisher key).
    pub curator: String,
    /// The list's sequence number (0: never published).
    pub seq: u64,
    /// Name to owner key.
    pub entries: BTreeMap<String, String>,
    /// Whether this node itself trusts the list (its key is among its `[trust] curators`).
    pub trusted_here: bool,
    /// Remote peers that stored it in the DHT on the last change.
    pub dht_peers: usize,
}

/// The body of `POST /v1/trust`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// The schema keeps the name the OpenAPI document has always used.
#[cfg_attr(feature = "openapi", schema(as = TrustBody))]
pub struct TrustRequest {
    /// The package name.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9][a-z0-9-]{0,63}$"))]
    pub name: String,
    /// The publisher key to pin as its owner, `ed25519:<64 hex digits>`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^ed25519:[0-9a-fA-F]{64}$"))]
    pub owner: String,
}

/// The answer of `DELETE /v1/trust/{name}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Untrusted {
    /// The package name.
    pub name: String,
    /// Whether there was a pin.
    pub removed: bool,
}

/// One owner a curator vouches for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CurateEntry {
    /// The package name.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9][a-z0-9-]{0,63}$"))]
    pub name: String,
    /// Its owner's key, `ed25519:<64 hex digits>`.
    #[cfg_attr(feature = "openapi", schema(pattern = "^ed25519:[0-9a-fA-F]{64}$"))]
    pub owner: String,
}

/// The body of `POST /v1/curate`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// The schema keeps the name the OpenAPI document has always used.
#[cfg_attr(feature = "openapi", schema(as = CurateBody))]
pub struct CurateRequest {
    /// Owners to vouch for.
    #[serde(default)]
    pub add: Vec<CurateEntry>,
    /// Names to drop from the list.
    #[serde(default)]
    pub remove: Vec<String>,
}
