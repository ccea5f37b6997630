//! The blob exchange protocol (`/peerpack/blob/1.0.0`, request-response with CBOR).
//!
//! A downloader first asks one provider for the archive's outline (the BLAKE3 chaining values
//! of its 1 MiB pieces, see `peerpack_core::outline`) and checks that it merges to the content
//! id. It then asks several providers for different pieces at once, and checks each piece
//! against the outline as it arrives. Any range may be asked for; downloaders ask for whole
//! pieces because only those can be checked on arrival.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// Protocol id of blob exchange.
pub const PROTOCOL: &str = "/peerpack/blob/1.0.0";
/// Largest range one request may ask for (1 MiB); larger requests are refused.
pub const MAX_CHUNK: u32 = 1024 * 1024;

/// A request for part of an archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlobRequest {
    /// The archive's size and outline.
    Outline {
        /// The content id's 32 raw bytes.
        content_id: ByteBuf,
    },
    /// `length` bytes of the archive from `offset`.
    Range {
        /// The content id's 32 raw bytes.
        content_id: ByteBuf,
        /// First byte wanted.
        offset: u64,
        /// Number of bytes wanted (1 to [`MAX_CHUNK`]).
        length: u32,
    },
}

impl BlobRequest {
    /// The content id's raw bytes, as sent.
    pub fn content_id(&self) -> &[u8] {
        match self {
            Self::Outline { content_id } | Self::Range { content_id, .. } => content_id,
        }
    }
}

/// The answer to a [`BlobRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlobResponse {
    /// The answer to [`BlobRequest::Outline`].
    Outline {
        /// Size of the whole archive.
        total_size: u64,
        /// The chaining values of its pieces, 32 bytes each.
        values: ByteBuf,
    },
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
