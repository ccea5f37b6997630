//! The catalogue sync protocol (`/peerpack/sync/1.0.0`, request-response with CBOR).
//!
//! A node that connects to a peer asks for a [`SyncRequest::Summary`]: the number of records
//! the peer holds and the XOR of their record hashes. If that differs from its own, it pages
//! through the peer's catalogue in (name, version) order with [`SyncRequest::Page`] and
//! validates every record as if it had arrived by gossip. Gossip only carries what is new;
//! sync is how a node that joins late, or was offline, learns the whole catalogue.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// Protocol id of catalogue sync.
pub const PROTOCOL: &str = "/peerpack/sync/1.0.0";
/// Most records a page may hold; a larger `limit` is clamped.
pub const MAX_PAGE: u32 = 256;

/// A sync request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// How many records do you hold, and what is their digest?
    Summary,
    /// Records after `after` (a `name/version` cursor; `None` from the start), at most
    /// `limit` of them.
    Page {
        /// Exclusive cursor: `"<name>/<version>"`.
        after: Option<String>,
        /// Most records wanted.
        limit: u32,
    },
}

/// A sync response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// Answer to [`SyncRequest::Summary`].
    Summary {
        /// Number of package records held.
        count: u64,
        /// XOR of the BLAKE3 hashes of every record held (32 bytes).
        digest: ByteBuf,
    },
    /// Answer to [`SyncRequest::Page`].
    Page {
        /// Encoded package records, in (name, version) order.
        records: Vec<ByteBuf>,
        /// Cursor for the next page; `None` when this was the last.
        next: Option<String>,
    },
    /// The request could not be served.
    Error(String),
}
