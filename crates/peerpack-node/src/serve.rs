//! Serving archives to peers over the blob exchange protocol.
//!
//! Every request takes a serving slot (bounded overall and per peer; over the limit the answer
//! is `Refused("busy")`), and every range is paced by the node's upload limit.

use peerpack_core::ContentId;
use peerpack_net::blob::{BlobRequest, BlobResponse, MAX_CHUNK};
use peerpack_net::p2p::PeerId;
use peerpack_net::{NetHandle, ResponseChannel};
use serde_bytes::ByteBuf;

use crate::catalogue::Catalogue;
use crate::transfer::Transfers;

/// What a busy node answers.
pub const BUSY: &str = "busy: too many requests in progress; try again shortly";
/// What a node answers when its own store fails it.
const UNREADABLE: &str = "this peer cannot read that archive now";

/// Answer one blob request from `peer`.
#[tracing::instrument(name = "blob.serve", skip_all, fields(%peer, request = request.kind(), offset = request.offset(), result))]
pub async fn blob(
    catalogue: &Catalogue,
    transfers: &Transfers,
    net: &NetHandle,
    peer: PeerId,
    request: BlobRequest,
    channel: ResponseChannel<BlobResponse>,
) {
    let response = match transfers.serving.try_take(peer) {
        Some(_slot) => {
            let response = answer(catalogue, request).await;
            if let BlobResponse::Chunk { data, .. } = &response {
                transfers.upload.acquire(data.len() as u64).await;
                transfers.counters.bytes_uploaded(data.len() as u64);
            }
            response
        }
        None => BlobResponse::Refused(BUSY.into()),
    };
    let span = tracing::Span::current();
    match &response {
        BlobResponse::Refused(reason) if reason == UNREADABLE => {
            span.record("result", "error");
        }
        BlobResponse::Refused(reason) => {
            let why = if reason == BUSY { "busy" } else { "malformed" };
            span.record("result", why);
            if let Some(m) = catalogue.metrics() {
                m.request_refused("blob", why, peer, reason);
            }
        }
        BlobResponse::NotFound => {
            span.record("result", "not_found");
        }
        BlobResponse::Chunk { .. } | BlobResponse::Outline { .. } => {
            span.record("result", "ok");
        }
    }
    let _ = net.blob_respond(channel, response).await;
}

fn content_id(bytes: &[u8]) -> Option<ContentId> {
    <[u8; 32]>::try_from(bytes).ok().map(ContentId::from_bytes)
}

async fn answer(catalogue: &Catalogue, request: BlobRequest) -> BlobResponse {
    let Some(id) = content_id(request.content_id()) else {
        return BlobResponse::Refused("a content id is 32 bytes".into());
    };
    match request {
        BlobRequest::Outline { .. } => outline(catalogue, id).await,
        BlobRequest::Range { offset, length, .. } => range(catalogue, id, offset, length).await,
    }
}

async fn outline(catalogue: &Catalogue, id: ContentId) -> BlobResponse {
    let result = catalogue
        .with_store(move |s| match s.blobs.outline(&id) {
            Ok(o) => {
                // A download is starting: this archive is in use.
                let _ = s.db.touch_blob(&id, o.size());
                Ok(Some(o))
            }
            Err(peerpack_store::blobs::Error::NotFound(_)) => Ok(None),
            Err(e) => Err(peerpack_store::Error::from(e).into()),
        })
        .await;
    match result {
        Ok(Some(o)) => BlobResponse::Outline {
            total_size: o.size(),
            values: ByteBuf::from(o.to_bytes()),
        },
        Ok(None) => BlobResponse::NotFound,
        Err(e) => {
            tracing::warn!(error = %e, "could not outline a blob for a peer");
            BlobResponse::Refused(UNREADABLE.into())
        }
    }
}

async fn range(catalogue: &Catalogue, id: ContentId, offset: u64, length: u32) -> BlobResponse {
    if length == 0 || length > MAX_CHUNK {
        return BlobResponse::Refused(format!("a request asks for 1 to {MAX_CHUNK} bytes"));
    }
    // Reads do not need the store lock: blob files are immutable once in place.
    let blobs = catalogue.blobs.clone();
    let result =
        crate::telemetry::blocking("blob.read", move || blobs.read_range(&id, offset, length))
            .await;
    match result {
        Ok(Err(peerpack_store::blobs::Error::NotFound(_))) => BlobResponse::NotFound,
        Ok(Ok((_, total))) if offset >= total => BlobResponse::Refused(format!(
            "offset {offset} is past the end of the {total}-byte archive"
        )),
        Ok(Ok((data, total))) => BlobResponse::Chunk {
            offset,
            total_size: total,
            data: ByteBuf::from(data),
        },
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "could not read a blob for a peer");
            BlobResponse::Refused(UNREADABLE.into())
        }
        Err(e) => {
            tracing::warn!(error = %e, "blob read task failed");
            BlobResponse::Refused(UNREADABLE.into())
        }
    }
}
