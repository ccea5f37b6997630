//! Serving archive ranges to peers over the blob exchange protocol.

use std::sync::Arc;

use peerpack_core::ContentId;
use peerpack_net::ResponseChannel;
use peerpack_net::blob::{BlobRequest, BlobResponse, MAX_CHUNK};
use peerpack_net::p2p::PeerId;
use serde_bytes::ByteBuf;

use crate::node::Inner;

/// Answer one blob request from `peer`.
pub async fn blob(
    inner: &Arc<Inner>,
    peer: PeerId,
    request: BlobRequest,
    channel: ResponseChannel<BlobResponse>,
) {
    let response = answer(inner, request).await;
    if let BlobResponse::Refused(reason) = &response {
        tracing::debug!(%peer, %reason, "refused a blob request");
    }
    let _ = inner.net.blob_respond(channel, response).await;
}

async fn answer(inner: &Arc<Inner>, request: BlobRequest) -> BlobResponse {
    let Ok(bytes) = <[u8; 32]>::try_from(request.content_id.as_slice()) else {
        return BlobResponse::Refused("a content id is 32 bytes".into());
    };
    if request.length == 0 || request.length > MAX_CHUNK {
        return BlobResponse::Refused(format!("a request asks for 1 to {MAX_CHUNK} bytes"));
    }
    let id = ContentId::from_bytes(bytes);
    let result = inner
        .with_store(
            move |s| match s.blobs.read_range(&id, request.offset, request.length) {
                Ok(r) => Ok(Some(r)),
                Err(peerpack_store::blobs::Error::NotFound(_)) => Ok(None),
                Err(e) => Err(crate::Error::Internal(e.to_string())),
            },
        )
        .await;
    match result {
        Ok(None) => BlobResponse::NotFound,
        Ok(Some((_, total))) if request.offset >= total => BlobResponse::Refused(format!(
            "offset {} is past the end of the {total}-byte archive",
            request.offset
        )),
        Ok(Some((data, total))) => BlobResponse::Chunk {
            offset: request.offset,
            total_size: total,
            data: ByteBuf::from(data),
        },
        Err(e) => {
            tracing::warn!(error = %e, "could not read a blob for a peer");
            BlobResponse::Refused("this peer cannot read that archive now".into())
        }
    }
}
