//! The blob exchange protocol (`/peerpack/blob/1.0.0`, request-response with CBOR).
//!
//! A request names a content id and a byte range; the answer carries that range of the archive
//! (at most [`MAX_CHUNK`] bytes) and the archive's total size, or says why not. Downloaders
//! ask several providers for different ranges at once and verify the whole archive against
//! its content id before it becomes visible.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// Protocol id of blob exchange.
pub const PROTOCOL: &str = "/peerpack/blob/1.0.0";
/// Largest range one request may ask for (1 MiB); larger requests are refused.
pub const MAX_CHUNK: u32 = 1024 * 1024;

/// Ask for `length` bytes of the archive `content_id` starting at `offset`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRequest {
    /// The content id's 32 raw bytes.
    pub content_id: ByteBuf,
    /// First byte wanted.
    pub offset: u64,
    /// Number of bytes wanted (1 to [`MAX_CHUNK`]).
    pub length: u32,
}

/// The answer to a [`BlobRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlobResponse {
    /// The bytes from `offset`; shorter than asked only at the end of the archive.
    Chunk {
        /// Echo of the request's offset.
        offset: u64,
        /// Size of the whole archive.
        total_size: u64,
        /// The bytes.
        data: ByteBuf,
    },
    /// This peer does not hold the archive.
    NotFound,
    /// The request is invalid (range past the end, too long, malformed id) or the peer is
    /// busy; the text says which.
    Refused(String),
}
